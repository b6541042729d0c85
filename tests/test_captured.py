"""training/captured.py: live captures joined with feedback, and a real training run using them."""

import re

import numpy as np
import pytest

from service.core import Core
from service.registry import Registry
from service.settings import Settings
from tests.conftest import MODEL, tiny_registry
from tests.images import png
from tests.test_training import run_training
from training import captured, data
from training.__main__ import parse_args

PICTURES = 6  # real test pictures answered, one request each
LABELLED = 4  # of which feedback names the true class of the first four


@pytest.fixture
def live(tmp_path) -> tuple[Registry, np.ndarray, np.ndarray]:
    """A registry whose service captured every request and got feedback on some of them."""
    registry = tiny_registry(tmp_path)
    dataset = data.load(data.DEFAULT_DIR)
    pictures, truth = dataset.test_images[:PICTURES], dataset.test_labels[:PICTURES]
    core = Core(Settings(model_dir=registry.root, capture_rate=1.0))
    core.start()
    try:
        for n, picture in enumerate(pictures):
            result = core.data_plane.predict_images([png(picture)])
            core.feedback.remember(f"req-{n}", result)
            assert core.capture.sample(f"req-{n}", result) == 1
        core.feedback.give("req-0", (int(truth[0]) + 1) % 10)  # a mistake, corrected next
        for n in range(LABELLED):
            core.feedback.give(f"req-{n}", int(truth[n]))
    finally:
        core.close()
    return registry, pictures, truth


def test_the_labelled_captures_are_the_pictures_with_the_latest_reported_class(live):
    registry, pictures, truth = live
    found = captured.load(registry.root, MODEL)
    assert len(found.labels) == LABELLED
    for n in range(LABELLED):  # each joined picture is exactly one that was answered
        match = [k for k in range(LABELLED) if np.array_equal(found.images[n], pictures[k])]
        assert len(match) == 1
        assert found.labels[n] == truth[match[0]]
    assert found.versions == {1: LABELLED}
    assert found.card()["count"] == LABELLED
    assert len(captured.load(registry.root, "another-model").labels) == 0


def test_training_with_feedback_adds_the_labelled_captures(live):
    registry, _, _ = live
    limit = 500
    result = run_training(
        "--registry", str(registry.root), "--arch", "mlp", "--epochs", "1",
        "--train-limit", str(limit), "--with-feedback",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"with feedback: {LABELLED} captured pictures" in result.stdout
    version = int(re.search(rf"registered {MODEL} version (\d+)", result.stdout).group(1))
    card = registry.card(MODEL, version)
    assert card["data"]["train_count"] == limit + LABELLED
    assert card["data"]["captured"]["count"] == LABELLED
    assert sum(card["data"]["captured"]["classes"].values()) == LABELLED


def test_captures_are_left_out_unless_asked_for():
    assert parse_args([]).with_feedback is False
    assert parse_args(["--with-feedback"]).with_feedback is True
