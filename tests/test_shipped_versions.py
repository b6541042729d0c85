"""Every shipped version reads the test set on this CPU as its card says it did where it was
measured: a version whose kernels compute something else on some CPU (8-bit int8 weights on x86
without VNNI, were they run fused) is caught here."""

import numpy as np
import pytest

from service.preprocess import normalize
from service.registry import Registry
from service.runtime import CPU, OnnxModel
from tests.shipped import SHIPPED
from training import data

NAME = "fashion-mnist"
REGISTRY = Registry(SHIPPED)
# Float rounding differs between CPUs' kernels and may move an image or two across a boundary.
IMAGES_TOLERATED = 5


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    if not data.DEFAULT_DIR.is_dir():
        pytest.skip(f"needs Debian's dataset-fashion-mnist in {data.DEFAULT_DIR}")
    return data.load(data.DEFAULT_DIR)


@pytest.mark.parametrize(
    "version",
    REGISTRY.versions(NAME),
)
def test_a_shipped_version_reads_the_test_set_as_its_card_says(version, dataset):
    model = OnnxModel(REGISTRY.read_verified(NAME, version), [CPU])
    images = normalize(dataset.test_images)
    answers = np.concatenate([model.run(images[i : i + 1000]) for i in range(0, len(images), 1000)])
    right = int((answers.argmax(axis=1) == dataset.test_labels).sum())

    recorded = REGISTRY.card(NAME, version)["metrics"]["test_accuracy"] * len(images)
    assert abs(right - recorded) <= IMAGES_TOLERATED
