"""Drift against the test set, with the shipped versions and real test-set images."""

from pathlib import Path

import pytest

from service.contract import CLASS_NAMES
from service.core import Core
from service.monitoring import psi, psi_level, reference_distribution
from service.settings import Settings
from tests.images import png
from tests.replay import first_test_items
from tests.shipped import copy_shipped

REPO = Path(__file__).resolve().parents[1]
MODEL = "fashion-mnist"
UNIFORM = [0.1] * 10


@pytest.mark.parametrize(
    ("live", "expected"),
    [(UNIFORM, 0.0), ([0.2, 0.0, *[0.1] * 8], 0.1 * 0.6931 + 0.1 * 6.9078 - 0.0001 * 6.9078)],
)
def test_psi(live, expected):
    assert psi(live, UNIFORM) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("value", "level"), [(0.05, "stable"), (0.2, "moderate"), (1, "significant")]
)
def test_psi_levels(value, level):
    assert psi_level(value) == level


@pytest.mark.parametrize(
    "metrics", [None, {}, {"confusion_matrix": [[1]]}, [], {"confusion_matrix": "x"}]
)
def test_a_card_without_a_usable_confusion_matrix_has_no_reference(metrics):
    assert reference_distribution({"metrics": metrics}) is None


@pytest.fixture
def shipped(tmp_path):
    root = tmp_path / "models"
    copy_shipped(root)
    core = Core(Settings(model_dir=root, reload_interval=0.1))
    core.start()
    yield core
    core.close()


def replay(core: Core, images, start: int = 0) -> int:
    """Classify each image as its own request, remembered like /predict; the version used."""
    version = 0
    for i, image in enumerate(images):
        result = core.data_plane.predict_images([png(image)])
        core.feedback.remember(f"replay-{start + i}", result)
        version = result.model.version
    return version


def test_test_set_traffic_is_stable_and_one_class_traffic_drifts(shipped):
    images, labels = first_test_items(500)
    version = replay(shipped, images)
    shown = shipped.monitoring(MODEL, version)
    assert shown["answered"] == 500
    assert shown["psi"] < 0.1, shown["psi"]
    assert shown["psi_level"] == "stable"
    assert 0.8 < shown["mean_confidence"] <= 1
    assert sum(shown["classes"]["test"].values()) == pytest.approx(1)
    # Only trousers now: the live distribution has shifted far from the test set's.
    trouser = images[labels == CLASS_NAMES.index("Trouser")][0]
    replay(shipped, [trouser] * 2000, 500)
    drifted = shipped.monitoring(MODEL, version)
    assert drifted["psi_level"] == "significant"
    assert drifted["classes"]["live"]["Trouser"] > 0.7


def test_feedback_shows_as_live_accuracy(shipped):
    images, labels = first_test_items(40)
    version = replay(shipped, images)
    for i, label in enumerate(labels.tolist()):
        shipped.feedback.give(f"replay-{i}", label)
    shown = shipped.monitoring(MODEL, version)
    assert shown["feedback"]["count"] == 40
    assert 0.8 <= shown["feedback"]["accuracy"] <= 1


def test_a_judging_version_reports_its_out_of_distribution_share(shipped):
    """Version 4 judges its inputs: on its own test set it flags about what its card says."""
    images, _ = first_test_items(400)
    for i, image in enumerate(images):
        result = shipped.data_plane.predict_images([png(image)], version=4)
        shipped.feedback.remember(f"judged-{i}", result)
    shown = shipped.monitoring(MODEL, 4)["out_of_distribution"]
    assert shown["judged"] == 400
    assert shown["test_share"] == pytest.approx(0.0547)
    assert 0.01 <= shown["live_share"] <= 0.15, shown  # the test set's 5.5 %, within sampling
    plain = shipped.monitoring(MODEL, 3)["out_of_distribution"]  # no judgement: nothing judged
    assert (plain["judged"], plain["live_share"], plain["test_share"]) == (0, None, None)
