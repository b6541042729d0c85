"""The card's "novelty" entry: the energy score's threshold and what it flags, as measured.

The threshold is the 95th percentile of the validation images' scores (a 5 % false-alarm rate
on clothing the network has not trained on); the figures on the development sets are measured
when they are fetched (evaluation.non_clothing, evaluation.real_pictures) and say so otherwise.
"""

from collections.abc import Callable

import numpy as np

from evaluation import non_clothing, novelty, real_pictures
from evaluation.gate import converted


def _real_clothing(
    score: Callable[[np.ndarray], np.ndarray], limit: float, test: np.ndarray
) -> dict[str, object]:
    """Clothing drawn by others flagged (should stay low): the real-picture set's figures."""
    try:
        pictures = real_pictures.load()
    except real_pictures.RealPicturesError as exc:
        return {"note": str(exc)}
    images, kept = converted([picture.data for picture in pictures])
    return novelty.set_figures(score(images), len(pictures) - len(kept), limit, test)


def _non_clothing(
    score: Callable[[np.ndarray], np.ndarray], limit: float, test: np.ndarray
) -> dict[str, object]:
    try:
        samples = non_clothing.load()
    except real_pictures.RealPicturesError as exc:
        return {"note": str(exc)}
    images, kept = non_clothing.read(samples)
    return non_clothing.by_source(samples, score(images), kept, limit, test)


def card_entry(
    score: Callable[[np.ndarray], np.ndarray], validation: np.ndarray, test: np.ndarray
) -> dict[str, object]:
    """The contract's "novelty" entry; score maps float32 [N,28,28] images to novelty [N]."""
    limit = novelty.threshold(validation)
    return {
        "score": f"{novelty.SCORE} (-logsumexp of the calibrated logits)",
        "threshold": limit,
        "false_alarm_target": novelty.FALSE_ALARM_TARGET,
        "set_on": f"the {len(validation)} validation images (95th percentile)",
        "measured": {
            "validation_flagged": novelty.flagged(validation, limit),
            "test_flagged": novelty.flagged(test, limit),
            "non_clothing": _non_clothing(score, limit, test),
            "real_clothing": _real_clothing(score, limit, test),
        },
    }


def summary_line(entry: dict) -> str:
    """One line of the entry's headline figures."""
    measured = entry["measured"]
    line = f"threshold {entry['threshold']:.4f}; test flagged {measured['test_flagged']:.4f}"
    outside = measured["non_clothing"].get("all")
    if outside:
        line += (
            f"; non-clothing flagged or refused {outside['flagged_or_refused']:.3f} "
            f"(AUROC {outside['auroc']:.3f})"
        )
    real = measured["real_clothing"]
    if "flagged_of_accepted" in real:
        line += f"; real clothing flagged {real['flagged_of_accepted']:.3f}"
    return line
