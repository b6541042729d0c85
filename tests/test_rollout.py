"""The rollout's rules (steps, intervals, verdicts), its evidence and its state in a real
registry."""

import time

import pytest

from service.errors import BadRequest
from service.rollout import (
    ABORTED,
    RUNNING,
    Evidence,
    Margins,
    Rollout,
    evidence,
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
        (Evidence(60, 0, None, 2.0, errors=3), "error rate"),  # 5 % failed
        (Evidence(45, 0, None, 2.0, errors=3), None),  # too few requests to judge
        (Evidence(990, 0, None, 2.0, errors=5), None),  # 0.5 %: within the margin
        (Evidence(50, 0, None, 2.0, compared=200, disagreed=40), "disagreement"),  # 20 %
        (Evidence(50, 0, None, 2.0, compared=200, disagreed=18), None),  # 9 %: within it
        (Evidence(50, 0, None, 2.0, compared=50, disagreed=40), None),  # too few compared
        (None, None),
    ],
)
def test_verdicts(candidate, worse):
    found = verdict(candidate, GOOD, Margins())
    assert (found is None) if worse is None else (worse in found)


def test_evidence_from_the_journals(registry):
    """Real journal records as workers write them: answers, failures, feedback, comparisons."""
    rollout = Rollout(registry)
    now = time.time()
    for i in range(10):
        rollout.predictions.append({"id": f"r{i}", "t": now, "m": MODEL, "v": 2, "c": [0],
                                    "p": [0.9], "ms": float(i)})  # fmt: skip
    rollout.predictions.append({"t": now, "m": MODEL, "v": 2, "err": "RuntimeException"})
    rollout.predictions.append({"t": now - 100, "m": MODEL, "v": 2, "err": "before the start"})
    rollout.predictions.append({"t": now, "m": "other", "v": 2, "err": "another model"})
    rollout.feedback.append({"id": "r0", "i": 0, "t": now, "m": MODEL, "v": 2, "pred": 0,
                             "true": 0})  # fmt: skip
    rollout.shadow.append({"t": now, "m": MODEL, "a": "production", "v": 2, "sv": 1,
                           "c": [0, 1, 2, 3], "s": [0, 1, 2, 4]})  # fmt: skip
    (found,) = evidence(rollout.predictions, rollout.feedback, rollout.shadow, MODEL,
                        now - 1).items()  # fmt: skip
    assert found == (2, Evidence(10, 1, 1.0, 9.0, errors=1, compared=4, disagreed=1))
    assert found[1].shown()["error_rate"] == pytest.approx(1 / 11)
    assert found[1].shown()["disagreement"] == 0.25


def test_start_step_and_abort_in_the_registry(registry):
    clock = [1000.0]
    rollout = Rollout(registry, clock=lambda: clock[0])
    margins = Margins(min_feedback=0)
    state = rollout.start(MODEL, 2, "production", [10, 50, 100], 60, margins)
    assert state["status"] == RUNNING
    assert registry.canaries(MODEL) == {"production": {"version": 2, "weight": 10}}
    assert registry.shadows(MODEL) == {"production": 2}  # its disagreement is measured
    with pytest.raises(BadRequest, match="running"):
        rollout.start(MODEL, 2, "production", [10, 100], 60, margins)
    assert rollout.step(MODEL)["step"] == 0  # the interval has not passed
    clock[0] += 61
    assert rollout.step(MODEL)["step"] == 1
    assert registry.canaries(MODEL)["production"]["weight"] == 50
    assert rollout.abort(MODEL)["status"] == ABORTED
    assert registry.canaries(MODEL) == {}
    assert registry.shadows(MODEL) == {}
    assert registry.aliases(MODEL)["production"] == 1
    with pytest.raises(BadRequest, match="no rollout"):
        rollout.abort(MODEL)


def test_completing_ends_the_shadow_and_no_shadow_sets_none(registry):
    clock = [1000.0]
    rollout = Rollout(registry, clock=lambda: clock[0])
    rollout.start(MODEL, 2, "production", [10, 100], 60, Margins(min_feedback=0))
    clock[0] += 61
    assert rollout.step(MODEL)["status"] == "completed"
    assert (registry.aliases(MODEL)["production"], registry.shadows(MODEL)) == (2, {})
    rollout.start(MODEL, 1, "production", [10, 100], 60, Margins(), shadow=False)
    assert registry.shadows(MODEL) == {}
