"""evaluation.mcnemar: the one-sided exact McNemar p-value against binomial tails by hand."""

import math

import pytest

from evaluation.mcnemar import one_sided_p


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 0, 1.0),  # no disagreement: nothing against "no worse"
        (0, 5, 1.0),  # P(X >= 0)
        (5, 0, 1 / 32),  # every one of 5 disagreements went the current version's way
        (8, 0, 1 / 256),
        (1, 1, 3 / 4),  # (C(2,1) + C(2,2)) / 4
        (2, 1, 4 / 8),  # (3 + 1) / 8
        (4, 1, 6 / 32),  # (5 + 1) / 32
        (3, 3, 42 / 64),  # (20 + 15 + 6 + 1) / 64
        (14, 2, 137 / 65536),  # (120 + 16 + 1) / 2^16
        (1000, 0, 2.0**-1000),  # exact far below where a float sum of terms would lose it
    ],
)
def test_the_p_value_is_the_binomial_tail(b, c, expected):
    assert one_sided_p(b, c) == pytest.approx(expected, rel=1e-15, abs=0)


@pytest.mark.parametrize(("b", "c"), [(1, 0), (3, 2), (7, 7), (12, 30), (400, 380)])
def test_the_two_tails_of_one_split_make_one(b, c):
    """P(X >= b) + P(X <= b - 1) = 1, and P(X <= b - 1) = P(X >= c + 1) by symmetry."""
    assert one_sided_p(b, c) + one_sided_p(c + 1, b - 1) == pytest.approx(1, rel=1e-12)


def test_a_large_even_split_is_a_half_and_the_middle_term():
    """b = c = m: p = 1/2 + C(2m, m) / 2^(2m+1), and C(2m, m) / 4^m by Stirling's series."""
    m = 5000
    middle = (1 - 1 / (8 * m) + 1 / (128 * m**2)) / math.sqrt(math.pi * m)
    assert one_sided_p(m, m) == pytest.approx(0.5 + middle / 2, rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(-1, 3), (3, -1)])
def test_negative_counts_are_refused(b, c):
    with pytest.raises(ValueError, match="count items"):
        one_sided_p(b, c)
