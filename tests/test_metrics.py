"""training.metrics: the card's test metrics from logits."""

import numpy as np
import pytest

from training.metrics import metrics_from_logits


def test_metrics_count_rows_as_the_true_class():
    labels = np.array([0, 0, 1, 9])
    logits = np.eye(10)[[0, 1, 1, 9]] * 5  # predicts 0, 1, 1, 9

    metrics = metrics_from_logits(logits, labels)

    assert metrics["test_accuracy"] == 0.75
    assert metrics["confusion_matrix"][0][:2] == [1, 1]  # one T-shirt taken for a trouser
    assert metrics["confusion_matrix"][1][1] == 1
    assert metrics["per_class_accuracy"]["T-shirt/top"] == 0.5
    assert metrics["per_class_accuracy"]["Ankle boot"] == 1.0
    assert metrics["per_class_accuracy"]["Bag"] == 0.0  # no examples: 0, not a division error
    expected_loss = np.mean([-np.log(np.exp(5) / (np.exp(5) + 9))] * 3 + [np.log(np.exp(5) + 9)])
    assert metrics["test_loss"] == pytest.approx(expected_loss, abs=1e-6)
