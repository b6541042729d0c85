"""The rollout's rules (steps, intervals, verdicts) and its state in a real registry."""

import pytest

from service.errors import BadRequest
from service.rollout import (
    ABORTED,
    RUNNING,
    Evidence,
    Margins,
    Rollout,
    parse_interval,
    parse_steps,
    verdict,
)
from tests.conftest import MODEL


@pytest.mark.parametrize(("text", "steps"), [("10,50,100", [10, 50, 100]), ("100", [100])])
def test_steps(text, steps):
    assert parse_steps(text) == steps


@pytest.mark.parametrize("text", ["", "10,50", "50,10,100", "0,100", "10,10,100", "x", "10,150"])
def test_bad_steps(text):
    with pytest.raises(BadRequest):
        parse_steps(text)


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("30s", 30), ("1h", 3600), ("2", 2)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "-1s", "5x", "inf"])
def test_bad_intervals(text):
    with pytest.raises(BadRequest):
        parse_interval(text)


GOOD = Evidence(answered=500, feedback=500, accuracy=0.93, p95_ms=2.0)


@pytest.mark.parametrize(
    ("candidate", "worse"),
    [
        (Evidence(50, 50, 0.92, 2.0), None),  # within the accuracy margin
        (Evidence(50, 50, 0.85, 2.0), "feedback accuracy"),
        (Evidence(10, 10, 0.50, 2.0), None),  # too few reports to judge
        (Evidence(50, 50, 0.93, 20.0), None),  # 10x slower, but by under 25 ms
        (Evidence(50, 50, 0.93, 40.0), "p95 request time"),
        (None, None),
    ],
)
def test_verdicts(candidate, worse):
    found = verdict(candidate, GOOD, Margins())
    assert (found is None) if worse is None else (worse in found)


def test_start_step_and_abort_in_the_registry(registry):
    clock = [1000.0]
    rollout = Rollout(registry, clock=lambda: clock[0])
    margins = Margins(min_feedback=0)
    state = rollout.start(MODEL, 2, "production", [10, 50, 100], 60, margins)
    assert state["status"] == RUNNING
    assert registry.canaries(MODEL) == {"production": {"version": 2, "weight": 10}}
    with pytest.raises(BadRequest, match="running"):
        rollout.start(MODEL, 2, "production", [10, 100], 60, margins)
    assert rollout.step(MODEL)["step"] == 0  # the interval has not passed
    clock[0] += 61
    assert rollout.step(MODEL)["step"] == 1
    assert registry.canaries(MODEL)["production"]["weight"] == 50
    assert rollout.abort(MODEL)["status"] == ABORTED
    assert registry.canaries(MODEL) == {}
    assert registry.aliases(MODEL)["production"] == 1
    with pytest.raises(BadRequest, match="no rollout"):
        rollout.abort(MODEL)
