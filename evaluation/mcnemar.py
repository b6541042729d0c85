"""The one-sided exact McNemar test: is a candidate worse than the current version on the same
items, or is the difference within the noise of the set?

Two versions read the same items; b of them only the current version reads right, c only the
candidate. Were the two equally good, each of the b + c items on which they disagree would go
either way with probability 1/2.
"""

import math


def one_sided_p(b: int, c: int) -> float:
    """P(X >= b) for X ~ Binomial(b + c, 1/2): how likely the current version wins at least b
    of the b + c disagreements if the candidate is no worse. Exact, in integers (the sum of
    binomial coefficients over 2^(b+c)), so large sets neither overflow nor lose the tail."""
    if b < 0 or c < 0:
        raise ValueError(f"b and c count items, not b={b}, c={c}")
    n = b + c
    term = math.comb(n, b)  # C(n, k) for k = b, b+1, ..., n
    tail = term
    for k in range(b, n):
        term = term * (n - k) // (k + 1)
        tail += term
    return tail / (1 << n)  # int / int: correctly rounded, however large
