"""Shadow versions with real tiny models: copies answered off the request path, compared,
dropped when the queue is full or the CPU budget spent, followed from the registry."""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from service.cpu_budget import CpuBudget
from service.idle import IdleLoop
from service.journal import Tail
from service.shadow import (
    BURST,
    QUEUE_SIZE,
    STEP_IMAGES,
    Agreement,
    ShadowRunner,
    agreement,
    shadow_journal,
    tally,
)
from tests.conftest import MODEL
from tests.images import dark_images
from tests.tiny_models import register_tiny
from tests.waiting import wait_for

BATCHES = 30


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.stack(dark_images(count, seed)).astype(np.float32) / 255


def compared(service, served: int = 1) -> int:
    rows = service.shadow_summary(MODEL)["comparisons"]
    return sum(row["compared"] for row in rows if row["served_version"] == served)


@contextlib.contextmanager
def looped(registry, service, batch: np.ndarray) -> Iterator[tuple]:
    """A started runner a worker's loop drives, version 2 shadowing production, and a result
    served before the shadow was set (so the core's own runner has no copy of it)."""
    journal = shadow_journal(registry.root, 60)
    loop = IdleLoop()
    loop.drive()
    runner = ShadowRunner(registry, service.data_plane._loader, service.settings, journal, loop)
    result = service.data_plane.predict_array(batch, alias="production")
    registry.set_shadow(MODEL, "production", 2)
    runner.start()
    try:
        wait_for(lambda: runner.serving() == {(MODEL, "production"): 2}, "the shadow")
        yield runner, loop, journal, result
    finally:
        runner.close()


def test_a_shadow_answers_a_copy_and_never_changes_the_answer(service):
    plane = service.data_plane
    batch = images(4)
    before = plane.predict_array(batch, alias="production").probabilities
    change = service.shadows.set(MODEL, "production", 2)
    assert change == {"model": MODEL, "alias": "production", "shadow": 2, "previous": None}
    results = [plane.predict_array(batch, alias="production") for _ in range(BATCHES)]
    assert {r.model.version for r in results} == {1}
    for result in results:  # the served answers are byte for byte the ones without a shadow
        np.testing.assert_array_equal(result.probabilities, before)
    wait_for(lambda: compared(service) == BATCHES * len(batch), "the shadow to catch up")
    (row,) = service.shadow_summary(MODEL)["comparisons"]
    shadow = plane.model(MODEL, 2)[0].model.run(batch).argmax(axis=1)
    served = before.argmax(axis=1)
    assert (row["alias"], row["version"], row["served_version"]) == ("production", 2, 1)
    assert row["agreed"] == BATCHES * int((shadow == served).sum())
    assert service.shadow_summary(MODEL)["shadows"] == {"production": 2}


def test_requests_naming_a_version_are_not_copied(service):
    service.shadows.set(MODEL, "production", 2)
    service.data_plane.predict_array(images(2), version=1)
    service.data_plane.predict_array(images(2), alias="production")
    wait_for(lambda: compared(service) == 2, "the alias's request to be compared")
    assert compared(service) == 2


def test_a_full_queue_drops_batches_and_counts_them(registry, service):
    """No thread runs this runner: its queue fills, and every further batch is dropped at once."""
    journal = shadow_journal(registry.root, 60)
    runner = ShadowRunner(registry, service.data_plane._loader, service.settings, journal)
    registry.set_shadow(MODEL, "production", 2)
    runner.refresh()
    assert runner.serving() == {(MODEL, "production"): 2}
    result = service.data_plane.predict_array(images(1), alias="production")
    for _ in range(QUEUE_SIZE + 5):
        runner.offer(result)
    assert runner.dropped == 5


def test_under_an_event_loop_the_loop_compares_in_its_idle_moments_not_the_thread(
    registry, service
):
    """Once a worker's loop drives the runner, copies wait in the queue across the thread's
    polls of shadows.json; each idle step of the loop compares one, until none is left."""
    with looped(registry, service, images(3)) as (runner, loop, journal, result):
        for _ in range(4):
            runner.offer(result)
        # Two polls after the offers: a thread that compared had time to take them.
        registry.clear_shadow(MODEL, "production", "test")
        wait_for(lambda: runner.serving() == {}, "a poll")
        registry.set_shadow(MODEL, "production", 2)
        wait_for(lambda: runner.serving() == {(MODEL, "production"): 2}, "another poll")
        assert (runner._queue.qsize(), Agreement(journal).matrices()) == (4, {})
        assert [loop.step() for _ in range(5)] == [True] * 4 + [False]
        (matrix,) = Agreement(journal).matrices().values()
        assert agreement(matrix)["compared"] == 12
    assert not loop.step()  # a closed runner leaves the loop


def test_a_large_batch_is_compared_a_few_images_per_step(registry, service):
    """A request arriving while the loop compares waits for one step: a step takes at most
    STEP_IMAGES of a batch, and the steps together compare all of it."""
    with looped(registry, service, images(2 * STEP_IMAGES + 3)) as (runner, loop, journal, result):
        runner.offer(result)
        assert runner._queue.qsize() == 3
        assert [loop.step() for _ in range(4)] == [True, True, True, False]
        (matrix,) = Agreement(journal).matrices().values()
        assert agreement(matrix)["compared"] == 2 * STEP_IMAGES + 3
        _, records = Tail(journal).new_records()
        assert [len(record["c"]) for record in records] == [STEP_IMAGES, STEP_IMAGES, 3]
        assert [c for record in records for c in record["c"]] == result.classes.tolist()


def test_a_shadow_set_in_the_registry_is_followed_and_stopped(registry, service):
    registry.set_shadow(MODEL, "production", 2)
    wait_for(lambda: service.shadows.serving() == {(MODEL, "production"): 2}, "the shadow")
    registry.clear_shadow(MODEL, "production", "test")
    wait_for(lambda: service.shadows.serving() == {}, "the shadow to stop")


def test_a_spent_budget_drops_copies_until_the_serving_has_spent_enough_cpu(registry, service):
    """The bucket refills at FASHION_SHADOW_SHARE of the CPU the process spends, not of the wall
    clock: past it, offers are dropped at once, without queueing, however long the process
    waits; serving real requests refills it after debt ÷ share CPU seconds."""
    journal = shadow_journal(registry.root, 60)
    settings = replace(service.settings, shadow_share=0.5)
    runner = ShadowRunner(registry, service.data_plane._loader, settings, journal)
    registry.set_shadow(MODEL, "production", 2)
    runner.refresh()
    plane, batch = service.data_plane, images(1)
    result = plane.predict_array(batch, alias="production")
    cpu, wall = time.process_time(), time.monotonic()
    # 0.1 s in debt: 0.2 s of the process's CPU at a share of one half.
    runner.budget.charge(BURST + 0.1)
    # Twice what a share of the wall clock took to refill, the process doing next to nothing.
    wait_for(lambda: time.monotonic() > wall + 0.4, "wall-clock time to pass", timeout=2)
    runner.offer(result)
    assert (runner.dropped, runner._queue.qsize()) == (1, 0)

    def serve() -> bool:
        plane.predict_array(batch, alias="production")
        return not runner.budget.spent()

    wait_for(serve, "the serving to refill the budget", timeout=120, interval=0)
    assert time.process_time() - cpu >= 0.2
    runner.offer(result)
    assert (runner.dropped, runner._queue.qsize()) == (1, 1)


def test_copies_queued_before_the_budget_ran_dry_are_dropped_not_compared(registry, service):
    """Copies wait in the queue while the worker is busy; if the budget is spent by the time
    the loop is idle, each step drops one (counted) instead of comparing it on credit."""
    with looped(registry, service, images(2)) as (runner, loop, journal, result):
        for _ in range(3):
            runner.offer(result)
        assert (runner.dropped, runner._queue.qsize()) == (0, 3)
        # 200 s of the process's CPU to refill at the default share.
        runner.budget.charge(BURST + 10)
        assert [loop.step() for _ in range(3)] == [False] * 3
        assert (runner.dropped, runner._queue.qsize()) == (3, 0)
        assert Agreement(journal).matrices() == {}


def test_each_comparison_is_paid_from_the_budget(service):
    service.shadows.set(MODEL, "production", 2)
    service.data_plane.predict_array(images(8), alias="production")
    # The comparison's CPU time is taken from the bucket.
    wait_for(lambda: service.shadows.budget.seconds < BURST, "the comparison to be paid for")
    assert compared(service) == 8


def test_agreement_survives_a_restart_through_the_journal(registry, service):
    service.shadows.set(MODEL, "production", 2)
    service.data_plane.predict_array(images(3), alias="production")
    wait_for(lambda: compared(service) == 3, "the comparison")
    fresh = Agreement(shadow_journal(registry.root, 60))  # another worker, or a restarted one
    (matrix,) = fresh.matrices().values()
    assert agreement(matrix)["compared"] == 3


def test_torn_or_foreign_records_are_skipped():
    records = [
        {"m": MODEL, "a": "production", "v": 2, "sv": 1, "c": [0, 1], "s": [0, 2]},
        {"m": MODEL, "a": "production", "v": 2, "sv": 1, "c": [0], "s": [0, 1]},  # unequal
        {"m": MODEL, "a": "production", "v": 2, "sv": 1, "c": [12], "s": [0]},  # no such class
        {"m": MODEL, "v": 2},
    ]
    (matrix,) = tally(records).values()
    shown = agreement(matrix)
    assert (shown["compared"], shown["agreed"]) == (2, 1)
    assert shown["disagreements"] == {"Trouser": {"Pullover": 1}}


def test_a_failing_shadow_is_counted_every_time_and_logged_once_per_interval(
    registry, service, tmp_path, caplog
):
    """rows=1: a real graph that runs one image (its warm-up passes) but not two, so every copy
    of a two-image batch fails in onnxruntime. The first failure is logged with its traceback;
    the rest only counted until the interval has passed, when one line says how many were not."""
    broken = register_tiny(registry, MODEL, 7, tmp_path, rows=1)
    runner, plane, batch = service.shadows, service.data_plane, images(2)
    # Failures are paid for like comparisons, and the first, logged with its traceback, once
    # cost more than the burst: this test is about counting and logging them, not the budget.
    runner.budget = CpuBudget(1.0, 10.0)
    runner.set(MODEL, "production", broken)
    before = plane.predict_array(batch, alias="production").probabilities

    def lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "fashion_serve.shadow"]

    with caplog.at_level(logging.ERROR, logger="fashion_serve.shadow"):
        for _ in range(4):
            result = plane.predict_array(batch, alias="production")
            np.testing.assert_array_equal(result.probabilities, before)  # the answer unchanged
        wait_for(lambda: runner.failed == 5, "every copy to fail")
        (first,) = lines()  # one line for five failures within a minute
        assert first.getMessage() == f"shadow v{broken} of {MODEL}:production failed"
        assert first.exc_info is not None
        runner.failures.interval = 0  # the minute is over
        plane.predict_array(batch, alias="production")
        wait_for(lambda: len(lines()) == 2, "the next line")
    assert runner.failed == 6
    assert lines()[1].getMessage().endswith("failed (4 more since the last such line, not logged)")
    assert compared(service) == 0  # a failure is not a comparison
