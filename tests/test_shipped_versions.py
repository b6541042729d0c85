"""Every shipped version reads the test set on this CPU as its card says it did where it was
measured: a version whose kernels compute something else on some CPU is caught here."""

import platform

import numpy as np
import pytest

from service.preprocess import normalize
from service.registry import Registry
from service.runtime import CPU, OnnxModel
from tests.shipped import SHIPPED
from training import cpu, data

NAME = "fashion-mnist"
REGISTRY = Registry(SHIPPED)
# Float rounding differs between CPUs' kernels and may move an image or two across a boundary.
IMAGES_TOLERATED = 5


# x86 without VNNI sums pairs of uint8 x int8 products in 16 bits: version 9's 8-bit weights
# overflow them (0.924 instead of 0.933 on an AVX2 EPYC). Version 10 is the fixed one.
SATURATES = platform.machine() in ("x86_64", "AMD64") and not cpu.has_vnni()
KNOWN = {
    9: pytest.mark.xfail(
        SATURATES, reason="8-bit weights overflow this CPU's int8 kernels", strict=True
    )
}


@pytest.fixture(scope="module")
def dataset() -> data.Dataset:
    if not data.DEFAULT_DIR.is_dir():
        pytest.skip(f"needs Debian's dataset-fashion-mnist in {data.DEFAULT_DIR}")
    return data.load(data.DEFAULT_DIR)


@pytest.mark.parametrize(
    "version",
    [pytest.param(v, marks=KNOWN[v]) if v in KNOWN else v for v in REGISTRY.versions(NAME)],
)
def test_a_shipped_version_reads_the_test_set_as_its_card_says(version, dataset):
    model = OnnxModel(REGISTRY.read_verified(NAME, version), [CPU])
    images = normalize(dataset.test_images)
    answers = np.concatenate([model.run(images[i : i + 1000]) for i in range(0, len(images), 1000)])
    right = int((answers.argmax(axis=1) == dataset.test_labels).sum())

    recorded = REGISTRY.card(NAME, version)["metrics"]["test_accuracy"] * len(images)
    assert abs(right - recorded) <= IMAGES_TOLERATED
