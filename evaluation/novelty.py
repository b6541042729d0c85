"""Judging novelty scores: the threshold at a false-alarm rate, shares flagged, AUROC.

numpy only: training records these figures in a version's card from Keras' scores, and
`python -m evaluation.non_clothing measure` recomputes them from the exported graph.
"""

import numpy as np

FALSE_ALARM_TARGET = 0.05  # share of validation (clothing) images allowed to be flagged
SCORE = "energy"  # -logsumexp of the calibrated logits (training.calibrate.energy)


def threshold(validation_scores: np.ndarray, target: float = FALSE_ALARM_TARGET) -> float:
    """The score above which at most `target` of the validation images lie."""
    return float(np.quantile(validation_scores.astype(np.float64), 1.0 - target))


def flagged(scores: np.ndarray, limit: float) -> float:
    """Share of scores above limit (0 for none)."""
    return round(float((scores > limit).mean()), 6) if len(scores) else 0.0


def auroc(inside: np.ndarray, outside: np.ndarray) -> float | None:
    """Probability that an outside item scores higher than an inside one (ties count half);
    None when either side is empty (a card is JSON, which has no NaN)."""
    if not len(inside) or not len(outside):
        return None
    both = np.concatenate([inside, outside]).astype(np.float64)
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # tied values share their mean rank
    outside_ranks = ranks[len(inside) :].sum() - len(outside) * (len(outside) + 1) / 2
    return round(float(outside_ranks / (len(inside) * len(outside))), 6)


def set_figures(
    scores: np.ndarray, refused: int, limit: float, test_scores: np.ndarray
) -> dict[str, float | int | None]:
    """One set's figures: pictures photo mode refused (the service answers them 422 anyway),
    share of the accepted ones flagged, share of all either refused or flagged, AUROC against
    the test images."""
    total = len(scores) + refused
    caught = int((scores > limit).sum()) + refused
    return {
        "pictures": total,
        "refused_by_photo_mode": refused,
        "flagged_of_accepted": flagged(scores, limit),
        "flagged_or_refused": round(caught / total, 6) if total else 0.0,
        "auroc": auroc(test_scores, scores),
    }
