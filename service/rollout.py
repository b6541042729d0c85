"""A rollout that steps a canary's weight and rolls itself back when the candidate is worse.

Its state (rollout.json beside aliases.json) and evidence (the journals, service/feedback.py and
service/shadow.py) are the registry's, so any process may take the next step (`rollout step`
from cron, `rollout run`). Each step judges, since the rollout started: the error rate, feedback
accuracy and p95 request time against the incumbent's, and how often the candidate, shadowing
the alias meanwhile, disagrees with the incumbent's answers.
"""

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from service.contract import is_version
from service.errors import BadRequest
from service.feedback import journals
from service.journal import Journal, Tail
from service.registry import Registry, Verifier
from service.shadow import shadow_journal

RUNNING, COMPLETED, ROLLED_BACK, ABORTED = "running", "completed", "rolled_back", "aborted"


@dataclass(frozen=True)
class Margins:
    """How much worse than the incumbent a candidate may be before the rollout rolls back."""

    accuracy: float = 0.02  # feedback accuracy, absolute
    latency_ratio: float = 1.5  # p95 request time, as a multiple ...
    latency_ms: float = 25.0  # ... and at least this much slower (noise on fast requests)
    min_feedback: int = 20  # per version, before accuracy is judged and a step is taken
    error_rate: float = 0.01  # share of requests failed, absolute
    min_requests: int = 50  # requests to the candidate before its error rate is judged
    # Share of the images the candidate (as the alias's shadow) answered otherwise than the
    # incumbent, not a comparison: a better version disagrees too. The shipped versions differ
    # on 4.1-9.2 % of the test set (bench/README.md), so the default catches a stranger.
    disagreement: float = 0.15
    min_compared: int = 100  # images compared before disagreement is judged


@dataclass(frozen=True)
class Evidence:
    """What one version answered since the rollout started."""

    answered: int  # requests answered
    feedback: int
    accuracy: float | None
    p95_ms: float | None
    errors: int = 0  # requests it failed to classify
    compared: int = 0  # images it answered as the shadow, beside the served answers
    disagreed: int = 0  # of those, answered with another class

    @property
    def error_rate(self) -> float | None:
        """Share of its requests that failed (None: no request yet)."""
        total = self.answered + self.errors
        return self.errors / total if total else None

    @property
    def disagreement(self) -> float | None:
        """Share of the compared images it answered otherwise (None: none compared)."""
        return self.disagreed / self.compared if self.compared else None

    def shown(self) -> dict[str, Any]:
        """Its fields and rates, for rollout.json."""
        return {**asdict(self), "error_rate": self.error_rate, "disagreement": self.disagreement}


def parse_steps(text: str) -> list[int]:
    """ "10,50,100" → [10, 50, 100]: rising whole percents ending at 100."""
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise BadRequest(f"steps must be whole percents like 10,50,100, not {text!r}") from None
    if not steps or steps[-1] != 100 or any(a >= b for a, b in itertools.pairwise(steps)):
        raise BadRequest(f"steps must rise from above 0 and end at 100, not {text!r}")
    if steps[0] <= 0:
        raise BadRequest(f"steps must start above 0, not {text!r}")
    return steps


def parse_interval(text: str) -> float:
    """ "5m", "30s", "1h" or plain seconds → seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise BadRequest(f"interval must be like 30s, 5m or 1h, not {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise BadRequest(f"interval must be like 30s, 5m or 1h, not {text!r}")
    return seconds


def evidence(
    predictions: Journal, feedback: Journal, shadow: Journal, name: str, since: float
) -> dict[int, Evidence]:
    """Per version of a model since a moment: answers and failures, feedback accuracy, p95
    time, and as a shadow, images compared and disagreed on."""
    times: dict[int, list[float]] = {}
    answered: dict[int, int] = {}
    errors: dict[int, int] = {}
    for record in _since(predictions, name, since):
        version = record["v"]
        if record.get("err"):
            errors[version] = errors.get(version, 0) + 1
            continue
        answered[version] = answered.get(version, 0) + 1
        if isinstance(record.get("ms"), int | float):
            times.setdefault(version, []).append(float(record["ms"]))
    compared: dict[int, int] = {}
    disagreed: dict[int, int] = {}
    for record in _since(shadow, name, since):
        served, answers = record.get("c"), record.get("s")
        if isinstance(served, list) and isinstance(answers, list) and len(served) == len(answers):
            version = record["v"]
            compared[version] = compared.get(version, 0) + len(served)
            different = sum(a != b for a, b in zip(served, answers, strict=True))
            disagreed[version] = disagreed.get(version, 0) + different
    latest: dict[tuple[str, int], tuple[int, bool]] = {}
    for record in Tail(feedback).new_records()[1]:
        if record.get("m") == name and _after(record, since) and isinstance(record.get("v"), int):
            key = (str(record.get("id")), int(record.get("i", 0)))
            latest[key] = (record["v"], record.get("pred") == record.get("true"))
    judged: dict[int, list[bool]] = {}
    for version, correct in latest.values():
        judged.setdefault(version, []).append(correct)
    return {
        version: Evidence(
            answered=answered.get(version, 0),
            feedback=len(judged.get(version, [])),
            accuracy=sum(judged[version]) / len(judged[version]) if judged.get(version) else None,
            p95_ms=_percentile(times.get(version, []), 0.95),
            errors=errors.get(version, 0),
            compared=compared.get(version, 0),
            disagreed=disagreed.get(version, 0),
        )
        for version in set(answered) | set(judged) | set(errors) | set(compared)
    }


def verdict(candidate: Evidence | None, incumbent: Evidence | None, margins: Margins) -> str | None:
    """Why the candidate is worse than the incumbent by more than the margins (None: it is not).

    Signals in order: error rate, feedback accuracy, disagreement with the incumbent, latency.
    """
    if candidate is None or incumbent is None:
        return None
    failing, failed = candidate.error_rate, incumbent.error_rate or 0.0
    if (
        failing is not None
        and candidate.answered + candidate.errors >= margins.min_requests
        and failing > failed + margins.error_rate
    ):
        return (
            f"error rate {failing:.3f} ({candidate.errors} of"
            f" {candidate.answered + candidate.errors} requests) against the incumbent's"
            f" {failed:.3f}: worse by more than {margins.error_rate}"
        )
    if (
        candidate.accuracy is not None and incumbent.accuracy is not None
        and min(candidate.feedback, incumbent.feedback) >= margins.min_feedback
        and candidate.accuracy < incumbent.accuracy - margins.accuracy
    ):  # fmt: skip
        return (
            f"feedback accuracy {candidate.accuracy:.3f} ({candidate.feedback} reports) against"
            f" the incumbent's {incumbent.accuracy:.3f} ({incumbent.feedback}): worse by more"
            f" than {margins.accuracy}"
        )
    differing = candidate.disagreement
    if (
        differing is not None
        and candidate.compared >= margins.min_compared
        and differing > margins.disagreement
    ):
        return (
            f"disagreement {differing:.3f} with the incumbent's answers ({candidate.disagreed}"
            f" of {candidate.compared} images, as its shadow): above {margins.disagreement}"
        )
    if (
        candidate.p95_ms is not None and incumbent.p95_ms is not None
        and candidate.p95_ms > incumbent.p95_ms * margins.latency_ratio
        and candidate.p95_ms > incumbent.p95_ms + margins.latency_ms
    ):  # fmt: skip
        return (
            f"p95 request time {candidate.p95_ms:.1f} ms against the incumbent's"
            f" {incumbent.p95_ms:.1f} ms"
        )
    return None


class Rollout:
    """Start, step and stop a model's rollout; every decision is written to the registry."""

    def __init__(
        self,
        registry: Registry,
        verify: Verifier | None = None,
        prediction_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry, self.verify, self.clock = registry, verify, clock
        self.predictions, self.feedback = journals(registry.root, prediction_ttl)
        self.shadow = shadow_journal(registry.root, prediction_ttl)

    def start(self, name: str, version: int, alias: str, steps: list[int], interval: float,
              margins: Margins, shadow: bool = True) -> dict[str, Any]:  # fmt: skip
        """Send the first step's share to the candidate; later steps wait for the interval.

        shadow: the candidate also shadows the alias until the rollout ends, so that its
        disagreement with the incumbent is measured on the incumbent's traffic.
        """
        with self.registry.rollout_lock(name):
            current = self.registry.rollout(name)
            if current is not None and current.get("status") == RUNNING:
                raise BadRequest(f"{name} has a rollout running; abort it first")
            return self._start(name, version, alias, steps, interval, margins, shadow)

    def _start(self, name: str, version: int, alias: str, steps: list[int], interval: float,
               margins: Margins, shadow: bool) -> dict[str, Any]:  # fmt: skip
        incumbent = self.registry.aliases(name).get(alias)
        now = self.clock()
        state = {
            "alias": alias, "candidate": version, "incumbent": incumbent, "steps": steps,
            "step": 0, "interval": interval, "margins": asdict(margins), "started_at": now,
            "stepped_at": now, "status": RUNNING, "reason": None, "shadow": shadow,
        }  # fmt: skip
        self._apply(name, state)
        if shadow and steps[0] < 100:
            self.registry.set_shadow(name, alias, version, verify=self.verify)
        if steps[0] == 100:
            state["status"] = COMPLETED
        self.registry.write_rollout(name, state, {"alias": alias, "action": "rollout_start",
                                                  "version": version, "steps": steps})  # fmt: skip
        return state

    def step(self, name: str) -> dict[str, Any]:
        """Judge the candidate; roll back, or take the next step once the interval has passed."""
        with self.registry.rollout_lock(name):
            state = self.registry.rollout(name)
            if state is None or state.get("status") != RUNNING:
                return state or {"status": None}
            seen = evidence(self.predictions, self.feedback, self.shadow, name, state["started_at"])
            margins = Margins(**state["margins"])
            candidate, incumbent = seen.get(state["candidate"]), seen.get(state["incumbent"])
            state["evidence"] = {str(v): e.shown() for v, e in sorted(seen.items())}
            worse = verdict(candidate, incumbent, margins)
            if worse is not None:
                return self._stop(name, state, ROLLED_BACK, worse)
            if self.clock() < state["stepped_at"] + state["interval"]:
                return state
            if (candidate.feedback if candidate else 0) < margins.min_feedback:
                state["reason"] = (
                    f"waiting for {margins.min_feedback} feedback reports on the candidate"
                )
                return state
            state["step"] += 1
            state["stepped_at"] = self.clock()
            state["reason"] = None
            self._apply(name, state)
            weight = state["steps"][state["step"]]
            if weight == 100:
                state["status"] = COMPLETED
            self.registry.write_rollout(name, state, {
                "alias": state["alias"], "action": "rollout_step", "version": state["candidate"],
                "weight": weight})  # fmt: skip
            return state

    def abort(self, name: str, reason: str = "aborted by hand") -> dict[str, Any]:
        """Stop a running rollout and send all traffic back to the incumbent."""
        with self.registry.rollout_lock(name):
            state = self.registry.rollout(name)
            if state is None or state.get("status") != RUNNING:
                raise BadRequest(f"{name} has no rollout running")
            return self._stop(name, state, ABORTED, reason)

    def _apply(self, name: str, state: dict[str, Any]) -> None:
        weight = state["steps"][state["step"]]
        if weight == 100:
            self.registry.set_alias(name, state["alias"], state["candidate"], verify=self.verify)
        else:
            self.registry.set_canary(name, state["alias"], state["candidate"], weight, self.verify)

    def _stop(self, name: str, state: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
        self.registry.clear_canary(name, state["alias"], f"rollout {status}: {reason}")
        if self.registry.shadows(name).get(state["alias"]) == state["candidate"]:
            self.registry.clear_shadow(name, state["alias"], f"rollout {status}")
        state["status"], state["reason"] = status, reason
        action = "rollout_rollback" if status == ROLLED_BACK else "rollout_abort"
        entry = {"alias": state["alias"], "action": action, "version": state["candidate"]}
        self.registry.write_rollout(name, state, {**entry, "reason": reason})
        return state


def _since(journal: Journal, name: str, since: float) -> list[dict[str, Any]]:
    """A journal's records of one model's versions from a moment on."""
    return [
        record
        for record in Tail(journal).new_records()[1]
        if record.get("m") == name and _after(record, since) and is_version(record.get("v"))
    ]


def _after(record: dict[str, Any], since: float) -> bool:
    moment = record.get("t")
    return isinstance(moment, int | float) and moment >= since


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]
