"""The loader on real registries and real ONNX models: verify, cache refusals, budget, evict."""

import os
import threading
from dataclasses import replace

import pytest

from service.errors import IntegrityError, LoadThrottled, ModelLoadError, VersionNotFound
from service.events import Observer, Observers
from service.loader import LoadBudget, Loader, check_model
from service.registry import Registry
from service.runtime import CPU
from tests.conftest import MODEL
from tests.tiny_models import register_tiny, tiny_model_bytes


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class LoadCounter(Observer):
    """Counts the loads the loader reports."""

    def __init__(self) -> None:
        self.loads: list[tuple[str, int]] = []

    def on_load(self, name: str, version: int, seconds: float) -> None:
        self.loads.append((name, version))


def make_loader(registry: Registry, settings) -> tuple[Loader, LoadCounter]:
    counter = LoadCounter()
    loader = Loader(registry, settings, [CPU], Observers([counter]))
    return loader, counter


def test_check_model_loads_real_bytes_and_refuses_others():
    assert check_model(tiny_model_bytes(1)).run
    with pytest.raises(ModelLoadError):
        check_model(b"not a model")
    with pytest.raises(ModelLoadError, match="must take one input 'image'"):
        check_model(tiny_model_bytes(1, input_name="pixels"))


def test_a_refusal_is_cached_until_the_version_files_change(registry, settings):
    """A corrupt version is read and hashed once: later asks get the same refusal, no I/O."""
    loader, counter = make_loader(registry, settings)
    path = registry.model_path(MODEL, 2)
    good = path.read_bytes()
    before = path.stat()
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, same inode
    with pytest.raises(IntegrityError, match="sha256") as first:
        loader.load(MODEL, 2, on_demand=True)
    # Put the right bytes back but keep the corrupt file's stamp: a loader that read the file
    # again would now succeed; the cached refusal must answer instead.
    corrupt = path.stat()
    path.write_bytes(good)
    os.utime(path, ns=(corrupt.st_atime_ns, corrupt.st_mtime_ns))
    for _ in range(3):
        with pytest.raises(IntegrityError) as again:
            loader.load(MODEL, 2, on_demand=True)
        assert again.value is first.value
    assert counter.loads == []
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))  # the files changed
    assert loader.load(MODEL, 2).version == 2
    assert counter.loads == [(MODEL, 2)]


def test_unknown_versions_are_not_cached_as_refusals(registry, settings, tmp_path):
    loader, _ = make_loader(registry, settings)
    with pytest.raises(VersionNotFound):
        loader.load(MODEL, 3)
    register_tiny(registry, MODEL, 3, tmp_path)
    assert loader.load(MODEL, 3).version == 3


def test_concurrent_asks_for_one_version_load_it_once(registry, settings):
    loader, counter = make_loader(registry, settings)
    start = threading.Barrier(8)
    got = []

    def ask() -> None:
        start.wait()
        got.append(loader.load(MODEL, 2).version)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert got == [2] * 8
    assert counter.loads == [(MODEL, 2)]


def test_max_loaded_counts_only_versions_no_alias_serves(registry, settings, tmp_path):
    for seed in (3, 4, 5):
        register_tiny(registry, MODEL, seed, tmp_path)
    loader, _ = make_loader(registry, replace(settings, max_loaded=1))
    loader.load(MODEL, 1)
    loader.pin(frozenset({(MODEL, 1)}))  # as an alias serving it does
    for version in (2, 3, 4):
        loader.load(MODEL, version, on_demand=True)
    assert [m.version for m in loader.loaded()] == [1, 4]


def test_the_load_budget_throttles_on_demand_loads_and_refills():
    clock = FakeClock()
    budget = LoadBudget(share=0.1, burst=0.5, clock=clock)
    budget.take()
    with pytest.raises(LoadThrottled):  # one on-demand load at a time
        budget.take()
    budget.spend(0.8)  # a long load overdraws the bucket: 0.5 - 0.8 = -0.3 s
    with pytest.raises(LoadThrottled) as throttled:
        budget.take()
    assert throttled.value.retry_after == 3  # 0.3 s of budget at 0.1 s per second
    clock.now += 3.01
    budget.take()


def test_on_demand_loads_beyond_the_budget_are_throttled_but_aliases_load(registry, settings):
    loader, counter = make_loader(registry, settings)
    clock = FakeClock()
    loader.budget = LoadBudget(share=0.1, burst=0.0, clock=clock)
    with pytest.raises(LoadThrottled):
        loader.load(MODEL, 2, on_demand=True)
    assert loader.load(MODEL, 2).version == 2  # an alias target is never throttled
    assert loader.load(MODEL, 2, on_demand=True).version == 2  # loaded: no budget needed
    assert counter.loads == [(MODEL, 2)]


def test_a_model_that_loads_but_cannot_run_is_refused_at_warm_up(registry, settings, tmp_path):
    version = register_tiny(registry, MODEL, 4, tmp_path, rows=3)  # honours the contract on paper
    loader, counter = make_loader(registry, settings)
    with pytest.raises(ModelLoadError, match="loads but cannot run"):
        loader.load(MODEL, version)
    assert counter.loads == []
