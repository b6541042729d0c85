"""The core: resolution, labelled results, hot reload on alias moves, refusal of bad versions."""

import io
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from service.contract import CLASS_NAMES
from service.errors import (
    AliasNotFound,
    BadRequest,
    BatchTooLarge,
    IntegrityError,
    InvalidName,
    ModelNotFound,
    NoAliasHistory,
    VersionNotFound,
)
from service.inference import InferenceService
from service.registry import Registry
from tests.conftest import MODEL
from tests.tiny_models import force_alias, register_tiny


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def dark_images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        pixels = np.zeros((28, 28), np.uint8)
        pixels[4:24, 6:22] = rng.integers(0, 256, (20, 16))  # a light object on black
        images.append(pixels)
    return images


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def service(settings):
    core = InferenceService(settings)
    core.start()
    yield core
    core.close()


def test_start_loads_the_default_alias_and_becomes_ready(service):
    assert service.is_ready()
    loaded, alias = service.model()
    assert (loaded.name, loaded.version, alias) == (MODEL, 1, "production")
    status = service.status()
    assert status["ready"] is True
    assert status["status"] == "ready"
    assert {"model": MODEL, "alias": "production", "version": 1, "degraded": False} in status[
        "serving"
    ]


def test_predict_images_gives_ten_labelled_probabilities_matching_the_model(service):
    pixels = dark_images(3)
    result = service.predict_images([png(p) for p in pixels])
    expected = result.model.model.run(np.stack(pixels).astype(np.float32) / 255)
    np.testing.assert_array_equal(result.probabilities, expected)
    predictions = result.predictions()
    assert len(predictions) == 3
    for row, prediction in zip(expected, predictions, strict=True):
        assert list(prediction["probabilities"]) == list(CLASS_NAMES)
        assert prediction["class_id"] == int(row.argmax())
        assert prediction["label"] == CLASS_NAMES[int(row.argmax())]
        assert prediction["confidence"] == pytest.approx(float(row.max()))
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_versions_and_aliases_resolve_to_distinct_models(service):
    image = [png(dark_images(1)[0])]
    v1 = service.predict_images(image).probabilities
    v2 = service.predict_images(image, version=2).probabilities
    staging = service.predict_images(image, alias="staging")
    assert staging.model.version == 2
    assert staging.alias == "staging"
    np.testing.assert_array_equal(staging.probabilities, v2)
    assert not np.allclose(v1, v2)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"name": "no-such-model"}, ModelNotFound),
        ({"version": 9}, VersionNotFound),
        ({"alias": "canary"}, AliasNotFound),
        ({"version": 1, "alias": "production"}, BadRequest),
        ({"name": "../etc"}, InvalidName),
        ({"alias": "Bad Alias"}, InvalidName),
    ],
)
def test_unknown_or_invalid_targets_raise_domain_errors(service, query, error):
    with pytest.raises(error):
        service.model(**query)


def test_batch_limit_and_empty_batch(service):
    small = replace(service.settings, max_batch=2)
    core = InferenceService(small)
    image = png(dark_images(1)[0])
    with pytest.raises(BatchTooLarge, match="limit is 2"):
        core.predict_images([image] * 3)
    with pytest.raises(BadRequest):
        core.predict_images([])


def test_predict_array_checks_shape_and_values(service):
    batch = np.stack(dark_images(2)).astype(np.float32) / 255
    assert service.predict_array(batch).probabilities.shape == (2, 10)
    with pytest.raises(BadRequest, match="shape"):
        service.predict_array(np.zeros((2, 28, 27), np.float32))
    with pytest.raises(BadRequest, match="finite"):
        service.predict_array(np.full((1, 28, 28), np.nan, np.float32))


def test_alias_moved_by_another_process_is_followed_without_restart(service, settings):
    Registry(settings.model_dir).set_alias(MODEL, "production", 2)  # as the CLI would
    wait_for(lambda: service.model()[0].version == 2)
    assert service.status()["refused"] == []


def test_corrupted_version_is_refused_and_the_old_one_keeps_serving(service, settings, tmp_path):
    outside = Registry(settings.model_dir)
    version = register_tiny(outside, MODEL, 3, tmp_path)
    model_file = outside.model_path(MODEL, version)
    model_file.write_bytes(model_file.read_bytes()[:-1] + b"\0")  # one flipped byte
    force_alias(outside, MODEL, "production", version)  # the registry itself would refuse it
    wait_for(lambda: service.status()["refused"])
    (refusal,) = service.status()["refused"]
    assert refusal["version"] == version
    assert "sha256" in refusal["reason"]
    assert service.model()[0].version == 1
    assert service.is_ready()


def test_set_alias_refuses_a_version_that_does_not_load(service, settings, tmp_path):
    outside = Registry(settings.model_dir)
    version = register_tiny(outside, MODEL, 4, tmp_path)
    outside.model_path(MODEL, version).write_bytes(b"garbage")
    with pytest.raises(IntegrityError):
        service.set_alias(MODEL, "production", version)
    assert outside.aliases(MODEL)["production"] == 1


def test_set_alias_then_rollback_switch_immediately(service):
    moved = service.set_alias(MODEL, "production", 2)
    assert moved == {"model": MODEL, "alias": "production", "version": 2, "previous": 1}
    assert service.model()[0].version == 2
    back = service.rollback(MODEL, "production")
    assert back["version"] == 1
    assert back["previous"] == 2
    assert service.model()[0].version == 1
    with pytest.raises(NoAliasHistory):
        service.rollback(MODEL, "production")


def test_empty_registry_is_not_ready_until_a_model_is_promoted(tmp_path, settings):
    root = tmp_path / "empty"
    root.mkdir()
    core = InferenceService(replace(settings, model_dir=root))
    core.start()
    try:
        assert not core.is_ready()
        assert core.status()["refused"]
        reg = Registry(root)
        register_tiny(reg, MODEL, 5, tmp_path)
        reg.set_alias(MODEL, "production", 1)
        wait_for(core.is_ready)
    finally:
        core.close()


def test_only_max_loaded_versions_stay_in_memory_but_aliases_are_pinned(settings, tmp_path):
    reg = Registry(settings.model_dir)
    for seed in (6, 7, 8):
        register_tiny(reg, MODEL, seed, tmp_path)
    core = InferenceService(replace(settings, max_loaded=2))
    core.start()
    try:
        for version in (2, 3, 4, 5):
            assert core.model(version=version)[0].version == version
        # production's version 1 is pinned and does not count against the limit (the README's
        # "besides those aliases serve"): it stays, with the two most recent others.
        loaded = {entry["version"] for entry in core.status()["loaded"]}
        assert loaded == {1, 4, 5}
    finally:
        core.close()
