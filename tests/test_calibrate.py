"""training.calibrate: the temperature fit, ECE with 15 equal-width bins, NLL."""

import numpy as np
import pytest

from training.calibrate import ece, fit_temperature, nll, reliability, softmax, summary


def overconfident(temperature: float, count: int = 20000, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / temperature): a network that is
    over-confident by exactly that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, (count, 10))
    true = softmax(logits / temperature)
    labels = np.array([rng.choice(10, p=row) for row in true])
    return logits, labels


def test_the_fitted_temperature_recovers_the_one_that_made_the_labels():
    logits, labels = overconfident(2.5)

    assert fit_temperature(logits, labels) == pytest.approx(2.5, rel=0.05)


def test_calibration_lowers_nll_and_ece_on_an_overconfident_model():
    logits, labels = overconfident(2.0, seed=1)
    temperature = fit_temperature(logits, labels)

    figures = summary(logits, labels, temperature)

    assert figures["nll_after"] < figures["nll_before"] - 0.05
    assert figures["ece_after"] < 0.02 < figures["ece_before"]


def test_a_calibrated_model_keeps_a_temperature_near_one():
    logits, labels = overconfident(1.0, seed=2)

    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.05)


def test_ece_weighs_each_bin_by_its_share_of_images():
    # Two bins: 3 images at confidence 0.95, all right (gap 0.05); 1 at 0.55, wrong (gap 0.55).
    probabilities = np.full((4, 10), 0.005)
    probabilities[:3, 0] = 0.955
    probabilities[3, 0] = 0.55
    probabilities[3, 1:] = 0.05
    labels = np.array([0, 0, 0, 1])

    table = reliability(probabilities, labels)

    assert [(row["count"], row["accuracy"]) for row in table] == [(1, 0.0), (3, 1.0)]
    assert table[0]["low"] == pytest.approx(8 / 15)  # 0.55 lies in the ninth of 15 bins
    assert ece(probabilities, labels) == pytest.approx((3 * 0.045 + 1 * 0.55) / 4)


def test_nll_is_the_mean_log_loss_of_the_true_class():
    probabilities = np.array([[0.5, 0.5], [0.25, 0.75]])

    assert nll(probabilities, np.array([0, 1])) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)
