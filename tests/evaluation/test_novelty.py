"""evaluation.novelty: threshold at a false-alarm rate, shares flagged, AUROC with ties."""

import numpy as np
import pytest

from evaluation.novelty import auroc, flagged, set_figures, threshold


def test_the_threshold_flags_the_target_share_of_validation_scores():
    scores = np.arange(1000, dtype=np.float32)

    limit = threshold(scores, 0.05)

    assert flagged(scores, limit) == pytest.approx(0.05, abs=0.002)
    assert flagged(np.zeros(0), limit) == 0.0


@pytest.mark.parametrize(
    ("inside", "outside", "expected"),
    [
        ([0, 1, 2], [3, 4], 1.0),
        ([3, 4], [0, 1, 2], 0.0),
        ([1, 1], [1, 1], 0.5),  # ties count half
        ([0, 2], [1, 3], 0.75),
    ],
)
def test_auroc_is_the_chance_an_outside_item_scores_higher(inside, outside, expected):
    assert auroc(np.array(inside, float), np.array(outside, float)) == expected


def test_set_figures_count_pictures_photo_mode_refused_as_caught():
    figures = set_figures(np.array([5.0, 0.0, 6.0]), refused=1, limit=1.0, test_scores=np.zeros(4))

    assert figures == {
        "pictures": 4,
        "refused_by_photo_mode": 1,
        "flagged_of_accepted": pytest.approx(2 / 3, abs=1e-6),
        "flagged_or_refused": 0.75,
        "auroc": pytest.approx(5 / 6, abs=1e-6),
    }
