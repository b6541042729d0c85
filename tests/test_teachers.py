"""training.teachers: registered versions' answers as distillation targets (real ONNX models)."""

import numpy as np
import pytest

from service.registry import Registry
from service.runtime import CPU, OnnxModel
from tests.tiny_models import register_tiny
from training import TrainingError, teachers

NAME = "fashion-mnist"


@pytest.fixture
def registry(tmp_path):
    registry = Registry(tmp_path / "registry")
    registry.root.mkdir()
    for seed in (1, 2):
        register_tiny(registry, NAME, seed, tmp_path)
    return registry


@pytest.fixture
def images():
    # Faint pictures: the tiny models' probabilities stay far from 0, where logs are exact.
    return np.random.default_rng(0).random((20, 28, 28), dtype=np.float32) * 0.1


def test_answers_are_the_versions_log_average_softened_by_the_temperature(registry, images):
    probabilities = [OnnxModel(registry.read_verified(NAME, v), [CPU]).run(images) for v in (1, 2)]
    mean_log = np.log(np.float64(probabilities[0]) * probabilities[1]) / 2

    answers = teachers.soft_answers(registry, NAME, [1, 2], images)

    assert answers.dtype == np.float32
    np.testing.assert_allclose(answers.sum(axis=1), 1.0, atol=1e-6)
    expected = np.exp(mean_log / teachers.TEMPERATURE)
    np.testing.assert_allclose(answers, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_array_equal(answers.argmax(axis=1), mean_log.argmax(axis=1))


def test_a_missing_teacher_is_named(registry):
    teachers.check_registered(registry, NAME, [1, 2])
    with pytest.raises(TrainingError, match=r"teacher versions \[3, 9\].*not registered"):
        teachers.check_registered(registry, NAME, [1, 3, 9])


@pytest.mark.parametrize(
    ("label", "answer", "expected"),
    [
        (0, [1.0] + [0.0] * 9, [1.0] + [0.0] * 9),  # teachers agree: the label's own row
        (0, [0.0, 1.0] + [0.0] * 8, [0.5, 0.5] + [0.0] * 8),  # they disagree: half each
        (9, [0.1] * 10, [0.05] * 9 + [0.55]),  # they cannot tell: a softened label
    ],
)
def test_targets_weigh_the_label_and_the_answers(label, answer, expected):
    assert teachers.LABEL_WEIGHT == 0.5  # the table below is written for it
    targets = teachers.targets(np.array([label]), np.array([answer], np.float32))
    np.testing.assert_allclose(targets[0], expected, atol=1e-6)


def test_the_card_records_the_teachers_and_how_often_they_agreed():
    answers = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    card = teachers.card([5, 7], np.array([0, 1, 2, 9]), answers)
    assert card == {
        "versions": [5, 7],
        "temperature": teachers.TEMPERATURE,
        "label_weight": teachers.LABEL_WEIGHT,
        "agreement_with_labels": 0.75,
    }
