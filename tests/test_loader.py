"""The loader on a real registry with real ONNX models: verify, load, warm, evict."""

import threading
from dataclasses import replace

import pytest

from service.errors import IntegrityError, ModelLoadError, ModelNotFound, VersionNotFound
from service.events import Observers
from service.loader import Loader
from service.registry import Registry
from service.runtime import CPU
from tests.conftest import MODEL
from tests.fake_observers import FakeRecorder
from tests.tiny_models import register_tiny


@pytest.fixture
def recorder() -> FakeRecorder:
    return FakeRecorder()


@pytest.fixture
def pins() -> set[tuple[str, int]]:
    """The versions the test says some alias serves."""
    return set()


def make_loader(settings, recorder: FakeRecorder, pins: set) -> Loader:
    return Loader(
        Registry(settings.model_dir),
        settings,
        [CPU],
        Observers([recorder]),
        threading.RLock(),
        pinned=lambda: pins,
    )


@pytest.fixture
def loader(settings, recorder, pins) -> Loader:
    return make_loader(settings, recorder, pins)


def test_a_version_is_loaded_once_with_its_card_and_announced(loader, recorder):
    assert loader.get(MODEL, 1) is None
    loaded = loader.load(MODEL, 1)
    assert (loaded.name, loaded.version, loaded.card["version"]) == (MODEL, 1, 1)
    assert loaded.model.providers == [CPU]
    assert loaded.load_seconds > 0
    assert loader.load(MODEL, 1) is loaded
    assert loader.get(MODEL, 1) is loaded
    assert recorder.of("load") == [(MODEL, 1)]


def test_unknown_models_and_versions_raise_and_load_nothing(loader, recorder):
    with pytest.raises(ModelNotFound):
        loader.load("no-such-model", 1)
    with pytest.raises(VersionNotFound):
        loader.load(MODEL, 9)
    assert loader.loaded() == []
    assert recorder.events == []


def test_a_corrupted_file_is_refused_by_its_sha256(loader, registry, tmp_path):
    version = register_tiny(registry, MODEL, 3, tmp_path)
    model_file = registry.model_path(MODEL, version)
    model_file.write_bytes(model_file.read_bytes()[:-1] + b"\0")  # one flipped byte
    with pytest.raises(IntegrityError, match="sha256"):
        loader.load(MODEL, version)
    assert loader.get(MODEL, version) is None


@pytest.mark.parametrize(
    ("broken", "message"),
    [({"input_name": "pixels"}, "input 'image'"), ({"rows": 3}, "loads but cannot run")],
)
def test_a_model_breaking_the_contract_or_failing_to_run_is_refused(
    loader, registry, tmp_path, broken, message
):
    version = register_tiny(registry, MODEL, 4, tmp_path, **broken)
    with pytest.raises(ModelLoadError, match=message):
        loader.load(MODEL, version)
    assert loader.get(MODEL, version) is None


def test_the_oldest_unpinned_versions_go_beyond_max_loaded(settings, registry, recorder, tmp_path):
    for seed in (5, 6, 7):
        register_tiny(registry, MODEL, seed, tmp_path)
    pins = {(MODEL, 1)}
    loader = make_loader(replace(settings, max_loaded=2), recorder, pins)
    for version in (1, 2, 3, 4, 5):
        assert loader.load(MODEL, version).version == version
    assert [(m.name, m.version) for m in loader.loaded()] == [(MODEL, 1), (MODEL, 5)]
    pins.clear()
    loader.load(MODEL, 2)
    assert [m.version for m in loader.loaded()] == [2, 5]
