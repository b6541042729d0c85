"""Payload capture over real tiny models and files: off by default, sampled, bounded, pruned."""

import io
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from service.capture import Capture, folder, image, records, segments
from service.core import Core
from service.http import create_app
from service.http.metrics import Metrics
from service.settings import Settings
from tests.conftest import MODEL
from tests.images import dark_images, png

WRITERS = 3  # processes writing one folder at once: gunicorn workers or replicas


def capture_in(root: Path, rate: float = 1.0, max_bytes: int = 64 * 1024) -> Capture:
    return Capture(folder(root), rate, max_bytes, keep_seconds=3600)


def counted(capture: Capture) -> Metrics:
    """The service's metrics, observing this capture."""
    metrics = Metrics(CollectorRegistry())
    capture.observers.append(metrics)
    return metrics


def dropped(metrics: Metrics, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "fashion_capture_dropped_images_total", {"reason": reason}
    )
    return value or 0.0


def captured(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("fashion_capture_images_total", {"model": MODEL})
    return value or 0.0


def folder_bytes(where: Path) -> int:
    return sum(path.stat().st_size for path in segments(where))


@pytest.fixture
def result(service):
    """One real answer for a batch of two dataset-style pictures."""
    return service.data_plane.predict_images([png(image) for image in dark_images(2)])


def test_capture_is_off_by_default_and_writes_nothing(client, settings):
    assert Settings().capture_rate == 0 == settings.capture_rate
    for index in range(5):
        answer = client.post(
            "/predict", data=png(dark_images(1)[0]), content_type="image/png",
            headers={"X-Request-ID": f"off-{index}"},
        )  # fmt: skip
        assert answer.status_code == 200
    assert not folder(settings.model_dir).exists()


@pytest.fixture
def capturing(registry):
    """The app over the tiny registry with every request captured."""
    app = create_app(Settings(model_dir=registry.root, capture_rate=1.0))
    yield app.test_client()
    app.extensions["fashion_serve"].close()


def test_a_captured_request_holds_what_the_model_saw_and_its_answer(registry, capturing):
    pictures = dark_images(3, seed=7)
    files = [(io.BytesIO(png(p)), f"{i}.png") for i, p in enumerate(pictures)]
    answer = capturing.post(
        "/predict", data={"image": files}, headers={"X-Request-ID": "req-captured"}
    )
    assert answer.status_code == 200, answer.text
    metrics = capturing.get("/metrics").get_data(as_text=True)
    assert f'fashion_capture_images_total{{model="{MODEL}"}} 3.0' in metrics
    body = answer.get_json()
    kept = list(records(folder(registry.root)))
    assert [(r["id"], r["i"]) for r in kept] == [("req-captured", i) for i in range(3)]
    for record, picture, predicted in zip(kept, pictures, body["predictions"], strict=True):
        assert np.array_equal(image(record), picture)  # a dataset image passes through exact
        assert (record["m"], record["v"], record["a"]) == (MODEL, 1, "production")
        assert record["c"] == predicted["class_id"]
        assert record["p"] == pytest.approx(list(predicted["probabilities"].values()), abs=1e-5)


def v2_classes(answer: dict) -> list[int]:
    (output,) = answer["outputs"]
    return np.array(output["data"]).reshape(output["shape"]).argmax(axis=1).tolist()


def tfserving_classes(answer: dict) -> list[int]:
    return np.array(answer["predictions"]).argmax(axis=1).tolist()


@pytest.mark.parametrize(
    ("path", "body", "classes"),
    [
        (
            f"/v2/models/{MODEL}/infer",
            lambda p: {"inputs": [{"name": "image", "datatype": "UINT8",
                                   "shape": list(p.shape), "data": p.tolist()}]},
            v2_classes,
        ),
        (
            f"/v1/models/{MODEL}:predict",
            lambda p: {"instances": (p / 255).tolist()},
            tfserving_classes,
        ),
    ],
    ids=["kserve-v2", "tf-serving"],
)  # fmt: skip
def test_the_tensor_protocols_are_captured_like_predict(registry, capturing, path, body, classes):
    pictures = np.stack(dark_images(2, seed=3))
    answer = capturing.post(path, json=body(pictures), headers={"X-Request-ID": "req-tensor"})
    assert answer.status_code == 200, answer.text
    kept = list(records(folder(registry.root)))
    assert [(r["id"], r["i"], r["m"], r["v"]) for r in kept] == [
        ("req-tensor", i, MODEL, 1) for i in range(2)
    ]
    assert [r["c"] for r in kept] == classes(answer.get_json())
    for record, picture in zip(kept, pictures, strict=True):
        assert np.array_equal(image(record), picture)  # the 28×28 the model saw, exact


def test_a_share_of_requests_is_sampled(tmp_path, result):
    capture = capture_in(tmp_path, rate=0.5, max_bytes=16 * 1024 * 1024)
    sampled = sum(capture.sample(f"r{n}", result) > 0 for n in range(400))
    # Binomial(400, 0.5): mean 200, standard deviation 10; 5 deviations either side.
    assert 150 <= sampled <= 250
    assert len(list(records(capture.folder))) == 2 * sampled


def records_of(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _burst(root: Path, result, writer: int, requests: int, start) -> None:
    capture = capture_in(root)
    start.wait(30)  # all together
    for n in range(requests):
        assert capture.sample(f"w{writer}-{n}", result) == 2


def test_a_burst_from_several_processes_stays_within_the_cap(tmp_path, result):
    """Each process its own segments: no torn line, and the newest of every writer kept."""
    requests = 300  # 600 images of ~1.3 kB each: twelve times the cap
    context = multiprocessing.get_context("fork")
    start = context.Barrier(WRITERS)
    writers = [
        context.Process(target=_burst, args=(tmp_path, result, w, requests, start))
        for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    capture = capture_in(tmp_path)
    assert folder_bytes(capture.folder) <= capture.max_bytes + (WRITERS - 1) * capture.segment_bytes
    kept = list(records(capture.folder))
    lines = sum(path.read_bytes().count(b"\n") for path in segments(capture.folder))
    assert len(kept) == lines  # every line whole
    # Oldest segments go first: what is left of each writer is its latest requests.
    for writer in range(WRITERS):
        numbers = {int(r["id"].split("-")[1]) for r in kept if r["id"].startswith(f"w{writer}-")}
        assert numbers == set(range(requests - len(numbers), requests))
    ids = {r["id"] for r in kept}
    assert any(f"w{writer}-{requests - 1}" in ids for writer in range(WRITERS))  # the newest
    for path in segments(capture.folder):  # a segment is one writer's alone
        assert len({r["id"].split("-")[0] for r in records_of(path)}) == 1


def test_old_segments_are_pruned_when_a_new_one_opens(tmp_path, result):
    capture = capture_in(tmp_path, max_bytes=16 * 1024 * 1024)
    capture.segment_bytes = 4096  # a few requests per segment
    for n in range(6):
        capture.sample(f"old-{n}", result)
    stale = segments(capture.folder)
    assert len(stale) >= 2
    week_ago = time.time() - 7 * 24 * 3600
    for path in stale:
        os.utime(path, (week_ago, week_ago))
    later = Capture(capture.folder, 1.0, capture.max_bytes, keep_seconds=24 * 3600)
    metrics = counted(later)
    later.sample("new-0", result)
    assert not any(path.exists() for path in stale)
    assert {r["id"] for r in records(capture.folder)} == {"new-0"}
    assert (captured(metrics), dropped(metrics, "age"), dropped(metrics, "size")) == (2, 12, 0)


def test_images_pruned_for_the_size_cap_are_counted(tmp_path, result):
    """What was captured is either still in the folder or counted as dropped for size."""
    capture = capture_in(tmp_path)  # 64 kB: 4 kB segments of a few requests each
    metrics = counted(capture)
    for n in range(100):  # 200 images of ~1.3 kB: four times the cap
        capture.sample(f"r{n}", result)
    kept = len(list(records(capture.folder)))
    assert captured(metrics) == 200
    assert dropped(metrics, "size") == 200 - kept > 0
    assert dropped(metrics, "age") == 0


def test_captures_survive_a_restart_and_another_process_adds_its_own(tmp_path, result):
    capture_in(tmp_path).sample("before", result)
    again = capture_in(tmp_path)  # a restarted worker: a new segment beside the old one
    again.sample("after", result)
    assert [r["id"] for r in records(again.folder)] == ["before"] * 2 + ["after"] * 2


def test_an_unwritable_registry_costs_the_capture_not_the_answer(tmp_path, result):
    blocked = tmp_path / "live"
    blocked.write_text("a file where the folder should be")
    capture = Capture(blocked / "capture", 1.0, 64 * 1024, 3600)
    metrics = counted(capture)
    assert capture.sample("r", result) == 0
    assert capture.broken is not None
    assert capture.sample("r2", result) == 0
    assert (captured(metrics), dropped(metrics, "unwritable")) == (0, 4)


def test_a_large_batch_is_cut_to_one_segment(tmp_path, service):
    many = service.data_plane.predict_images([png(p) for p in dark_images(40)])
    capture = capture_in(tmp_path)  # 4 kB segments
    metrics = counted(capture)
    written = capture.sample("batch", many)
    assert 1 <= written < 40
    assert (captured(metrics), dropped(metrics, "batch")) == (written, 40 - written)
    assert folder_bytes(capture.folder) <= capture.segment_bytes


def test_core_reads_the_settings(settings):
    core = Core(replace(settings, capture_rate=0.25, capture_max_bytes=1 << 20))
    assert (core.capture.rate, core.capture.max_bytes) == (0.25, 1 << 20)
    assert core.capture.folder == settings.model_dir / ".live" / "capture"
