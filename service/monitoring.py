"""Drift: each version's live answers (class distribution, mean confidence) against its test set.

Live is the predictions journal (service/feedback.py) within FASHION_PREDICTION_TTL, from every
worker and replica; the reference is the class shares of the card's test-set confusion matrix,
compared by the population stability index, PSI = sum of (live - test) * ln(live / test).
A version that judges its inputs (service/novelty.py) also reports the share of live answers it
flagged out of distribution, beside the share of its test set its card says it flagged.
"""

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from service.contract import CLASS_NAMES
from service.journal import Journal, Tail

# The usual reading of the PSI: below 0.1 the population is stable, above 0.25 it has shifted.
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25
EPSILON = 1e-4  # an empty class would make the logarithm infinite


def psi(live: list[float], reference: list[float]) -> float:
    """The population stability index of two distributions over the same classes."""
    total = 0.0
    for observed, expected in zip(live, reference, strict=True):
        observed, expected = max(observed, EPSILON), max(expected, EPSILON)
        total += (observed - expected) * math.log(observed / expected)
    return total


def psi_level(value: float) -> str:
    """stable, moderate or significant, by the usual thresholds."""
    if value < PSI_MODERATE:
        return "stable"
    return "moderate" if value < PSI_SIGNIFICANT else "significant"


def reference_distribution(card: dict[str, Any]) -> list[float] | None:
    """The classes a version answered on its test set (its confusion matrix's column sums)."""
    metrics = card.get("metrics")
    matrix = metrics.get("confusion_matrix") if isinstance(metrics, dict) else None
    size = len(CLASS_NAMES)
    if not (isinstance(matrix, list) and len(matrix) == size and all(
        isinstance(row, list) and len(row) == size and all(isinstance(n, int) for n in row)
        for row in matrix
    )):  # fmt: skip
        return None
    columns = [sum(row[c] for row in matrix) for c in range(size)]
    total = sum(columns)
    return [n / total for n in columns] if total else None


@dataclass
class Live:
    """One version's live answers: images by class, summed confidence, and of the images it
    judged (a version with a judgement), how many it flagged out of distribution."""

    counts: list[int] = field(default_factory=lambda: [0] * len(CLASS_NAMES))
    confidence: float = 0.0
    judged: int = 0
    flagged: int = 0

    def copy(self) -> "Live":
        """An independent copy (the tally keeps counting its own)."""
        return Live(self.counts[:], self.confidence, self.judged, self.flagged)


class LiveAnswers:
    """Per (model, version): the live answers, read incrementally from the predictions journal."""

    def __init__(self, predictions: Journal) -> None:
        self._tail = Tail(predictions)
        self._lock = threading.Lock()
        self._live: dict[tuple[str, int], Live] = {}

    def snapshot(self) -> dict[tuple[str, int], Live]:
        """Each version's live answers, read up to the journal's end."""
        with self._lock:
            restarted, records = self._tail.new_records()
            if restarted:
                self._live = {}
            for record in records:
                self._count(record)
            return {key: live.copy() for key, live in self._live.items()}

    def _count(self, record: dict[str, Any]) -> None:
        try:
            key = (str(record["m"]), int(record["v"]))
            classes = [int(c) for c in record["c"]]
            confidence = sum(float(p) for p in record["p"])
            judged = [bool(j) for j in record.get("j") or ()]
        except (KeyError, TypeError, ValueError):  # an error record, a torn or foreign line
            return
        if not all(0 <= c < len(CLASS_NAMES) for c in classes):
            return
        live = self._live.setdefault(key, Live())
        for c in classes:
            live.counts[c] += 1
        live.confidence += confidence
        live.judged += len(judged)
        live.flagged += judged.count(False)


def flagged_on_test_set(card: dict[str, Any]) -> float | None:
    """The share of its test set a judging version flagged, as its card records it."""
    entry = card.get("novelty")
    measured = entry.get("measured") if isinstance(entry, dict) else None
    share = measured.get("test_flagged") if isinstance(measured, dict) else None
    if isinstance(share, int | float) and not isinstance(share, bool) and 0 <= share <= 1:
        return float(share)
    return None


def report(
    name: str,
    version: int,
    card: dict[str, Any],
    live: Live | None,
    feedback: list[list[int]] | None,
) -> dict[str, Any]:
    """One version's monitoring: live vs test classes (PSI), confidence, out-of-distribution
    share, live accuracy."""
    live = live or Live()
    counts, confidence = live.counts, live.confidence
    answered = sum(counts)
    shares = [n / answered for n in counts] if answered else None
    reference = reference_distribution(card)
    drift = psi(shares, reference) if shares is not None and reference is not None else None
    metrics = card.get("metrics")
    test_accuracy = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
    given = sum(map(sum, feedback)) if feedback else 0
    right = sum(feedback[c][c] for c in range(len(feedback))) if feedback else 0
    return {
        "model": name,
        "version": version,
        "answered": answered,
        "classes": {
            "live": dict(zip(CLASS_NAMES, shares, strict=True)) if shares else None,
            "test": dict(zip(CLASS_NAMES, reference, strict=True)) if reference else None,
        },
        "psi": drift,
        "psi_level": psi_level(drift) if drift is not None else None,
        "mean_confidence": confidence / answered if answered else None,
        # A calibrated version's mean confidence on its test set is close to its accuracy.
        "test_accuracy": test_accuracy,
        "out_of_distribution": {
            "judged": live.judged,
            "flagged": live.flagged,
            "live_share": live.flagged / live.judged if live.judged else None,
            "test_share": flagged_on_test_set(card),
        },
        "feedback": {
            "count": given,
            "correct": right,
            "accuracy": right / given if given else None,
        },
    }
