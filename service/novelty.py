"""A version's out-of-distribution judgement: its card's "novelty" entry against its graph.

A version judges its inputs when its graph has the `novelty` output AND its card has the
"novelty" entry with a threshold; an answer is in distribution iff novelty <= threshold.
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.contract import NOVELTY_NAME
from service.errors import ModelLoadError

CARD_KEY = "novelty"
# What an image request wants for pictures its version judges not in distribution: flag them
# in the answer (in_distribution false) or refuse the request (NotClothing).
UNKNOWN_CHOICES = ("flag", "reject")


@dataclass(frozen=True)
class Judgement:
    """The score a version's graph computes and the threshold above which it flags an answer."""

    score: str
    threshold: float

    def in_distribution(self, novelty: np.ndarray) -> np.ndarray:
        """True per image whose novelty is at most the threshold."""
        return np.asarray(novelty <= self.threshold)


def judgement(card: dict[str, Any], has_output: bool) -> Judgement | None:
    """The version's judgement, None without one; ModelLoadError when card and graph disagree."""
    entry = card.get(CARD_KEY)
    if entry is None and not has_output:
        return None
    if entry is None:
        raise ModelLoadError(
            f"the graph has a {NOVELTY_NAME!r} output but the card has no {CARD_KEY!r} entry:"
            " without its threshold the score cannot be judged"
        )
    if not has_output:
        raise ModelLoadError(
            f"the card's {CARD_KEY!r} entry names a threshold but the graph has no"
            f" {NOVELTY_NAME!r} output float32 [N]"
        )
    threshold = entry.get("threshold") if isinstance(entry, dict) else None
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise ModelLoadError(f"the card's {CARD_KEY!r} entry needs a numeric 'threshold'")
    if not math.isfinite(threshold):
        raise ModelLoadError(f"the card's {CARD_KEY!r} threshold must be finite, not {threshold}")
    return Judgement(str(entry.get("score", "unnamed")), float(threshold))
