"""The card's "novelty" entry: the energy score's threshold and what it flags, as measured.

The threshold is the 96th percentile of the validation images' scores (a 4 % false-alarm rate
on clothing the network has not trained on, a point under the 5 % target: see VALIDATION_RATE);
the figures on the development sets are measured when they are fetched (evaluation.non_clothing,
evaluation.real_pictures) and say so otherwise.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from evaluation import non_clothing, novelty, real_pictures
from evaluation.gate import converted


def _measured(
    load: Callable[[], list[Any]],
    figures: Callable[[list[Any], np.ndarray, list[int]], dict[str, Any]],
    score: Callable[[np.ndarray], np.ndarray],
) -> dict[str, object]:
    """figures(items, scores of those photo mode accepted, their indices) of a development
    set, or a note saying how to fetch it."""
    try:
        items = load()
    except real_pictures.RealPicturesError as exc:
        return {"note": str(exc)}
    images, kept = converted([item.data for item in items])
    return figures(items, score(images), kept)


# Validation images come from the training split, a little easier than the test set: at the
# validation set's 5 % threshold versions 4 and the version 5 pilots flagged 5.2-5.7 % of the
# test set. A one-point margin keeps the test set inside the 5 % target.
VALIDATION_RATE = novelty.FALSE_ALARM_TARGET - 0.01


def card_entry(
    score: Callable[[np.ndarray], np.ndarray], validation: np.ndarray, test: np.ndarray
) -> dict[str, object]:
    """The contract's "novelty" entry; score maps float32 [N,28,28] images to novelty [N]."""
    limit = novelty.threshold(validation, VALIDATION_RATE)
    return {
        "score": f"{novelty.SCORE} (-logsumexp of the calibrated logits)",
        "threshold": limit,
        "false_alarm_target": novelty.FALSE_ALARM_TARGET,
        "set_on": f"the {len(validation)} validation images "
        f"({100 * (1 - VALIDATION_RATE):g}th percentile)",
        "measured": {
            "validation_flagged": novelty.flagged(validation, limit),
            "test_flagged": novelty.flagged(test, limit),
            "non_clothing": _measured(
                non_clothing.load,
                lambda items, scores, kept: non_clothing.by_source(
                    items, scores, kept, limit, test
                ),
                score,
            ),
            # Clothing drawn by others flagged: should stay low.
            "real_clothing": _measured(
                real_pictures.load,
                lambda items, scores, kept: novelty.set_figures(
                    scores, len(items) - len(kept), limit, test
                ),
                score,
            ),
        },
    }


def summary_line(entry: dict[str, Any]) -> str:
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
