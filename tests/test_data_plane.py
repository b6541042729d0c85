"""The data plane: resolution, labelled results, batch limits."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from service.contract import CLASS_NAMES
from service.core import Core
from service.errors import (
    AliasNotFound,
    BadRequest,
    BatchTooLarge,
    InvalidName,
    ModelNotFound,
    ModelRunError,
    VersionNotFound,
)
from service.journal import Tail
from tests.conftest import MODEL
from tests.images import dark_images, png
from tests.tiny_models import register_tiny

REPO = Path(__file__).resolve().parents[1]


def test_predict_images_gives_ten_labelled_probabilities_matching_the_model(service):
    pixels = dark_images(3)
    result = service.data_plane.predict_images([png(p) for p in pixels])
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
    v1 = service.data_plane.predict_images(image).probabilities
    v2 = service.data_plane.predict_images(image, version=2).probabilities
    staging = service.data_plane.predict_images(image, alias="staging")
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
        service.data_plane.model(**query)


def test_batch_limit_and_empty_batch(service):
    small = replace(service.settings, max_batch=2)
    core = Core(small).data_plane
    image = png(dark_images(1)[0])
    with pytest.raises(BatchTooLarge, match="limit is 2"):
        core.predict_images([image] * 3)
    with pytest.raises(BatchTooLarge, match="limit is 2"):
        core.preprocess([image] * 3)
    with pytest.raises(BadRequest):
        core.predict_images([])


def test_predict_array_checks_shape_and_values(service):
    batch = np.stack(dark_images(2)).astype(np.float32) / 255
    assert service.data_plane.predict_array(batch).probabilities.shape == (2, 10)
    with pytest.raises(BadRequest, match="shape"):
        service.data_plane.predict_array(np.zeros((2, 28, 27), np.float32))
    with pytest.raises(BadRequest, match="finite"):
        service.data_plane.predict_array(np.full((1, 28, 28), np.nan, np.float32))


def test_a_version_that_fails_on_a_batch_is_refused_and_journaled(registry, service, tmp_path):
    """rows=1: a real graph that runs one image but not two (its reshape is fixed at one row)."""
    broken = register_tiny(registry, MODEL, 7, tmp_path, rows=1)
    plane = service.data_plane
    assert len(plane.predict_array(images(1), version=broken).probabilities) == 1
    with pytest.raises(ModelRunError, match=f"version {broken} of {MODEL} failed"):
        plane.predict_array(images(2), version=broken)
    failures = [r for r in Tail(service.feedback.predictions).new_records()[1] if "err" in r]
    assert [(r["m"], r["v"]) for r in failures] == [(MODEL, broken)]


def images(count: int) -> np.ndarray:
    return np.stack(dark_images(count)).astype(np.float32) / 255
