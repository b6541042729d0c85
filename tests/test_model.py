"""training.model: the reference network's shape and its learning-rate schedules."""

import pytest

from training.model import build_reference, describe


def learning_rate_at(model, step):
    """The rate the optimizer would use for its next update after `step` updates."""
    model.optimizer.iterations.assign(step)
    return float(model.optimizer.learning_rate)


def test_reference_network_is_the_tutorial_mlp():
    card = describe(build_reference(learning_rate=1e-3))

    assert card["name"] == "mlp-128"
    assert card["layers"] == [
        "Flatten -> (784,)", "Dense(128, relu) -> (128,)", "Dense(10) -> (10,)",
    ]  # fmt: skip
    assert card["parameters"] == 784 * 128 + 128 + 128 * 10 + 10


def test_constant_rate_stays_put():
    model = build_reference(learning_rate=1e-3)

    assert learning_rate_at(model, 0) == pytest.approx(1e-3)
    assert learning_rate_at(model, 10_000) == pytest.approx(1e-3)


def test_cosine_rate_falls_from_the_start_value_to_zero_over_the_decay_steps():
    model = build_reference(learning_rate=1e-3, decay_steps=100)

    assert learning_rate_at(model, 0) == pytest.approx(1e-3)
    assert learning_rate_at(model, 50) == pytest.approx(0.5e-3, rel=1e-3)  # cos(π/2): half-way
    assert learning_rate_at(model, 100) == pytest.approx(0.0, abs=1e-9)
