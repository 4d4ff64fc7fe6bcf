"""The power of the solved-outcome tests, exactly: what a "no significant difference" can rule out.

A null verdict reads "no difference larger than X", with X the smallest difference in solved rate that
the design's own test detects with the plan's power (80 %) at the strictest threshold of its family
(alpha / m). X is computed by enumerating every outcome of the design, not by a normal approximation:
at the n of a benchmark cell (20-40 trials) and the thresholds of a study-wide correction (alpha / 100)
the approximation promises power that the exact tests do not have (20 pairs, alpha / 8, a baseline
solving half: it promised 80 % where McNemar's exact test has 48 % and Fisher's 62 %).

* **unpaired** (n_x against n_y trials; Fisher's exact test): with X ~ Bin(n_x, p_x) and
  Y ~ Bin(n_y, p_y) independent, power = Σ_{i,j} P(X = i) P(Y = j) · [fisher_p(i, j) ≤ alpha].
* **paired** (n configurations, both sides on each; McNemar's exact test): a pair is discordant
  "x solved, y not" with probability p10 and "y solved, x not" with p01; D = b + c ~ Bin(n, p10 + p01),
  b | D ~ Bin(D, p10 / (p10 + p01)), and the test rejects where 2 · Bin(min(b, c); D, 1/2) ≤ alpha.
  The within-pair correlation is unknown before the run, so p10 = p_x (1 − p_y), p01 = p_y (1 − p_x)
  (independent outcomes within a pair): positively correlated pairs, as configurations shared by the
  variants are, have fewer discordant pairs for the same difference and more power, so X is cautious.

``solved_power`` is the power, ``detectable_difference`` the smallest difference reaching a power,
``configurations_needed`` the n per side that detects a given difference.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

FISHER_TOLERANCE = 1 + 1e-7  # tables as likely as the observed one count as "as extreme" (R; scipy: 1 + 1e-14)
STEP = 0.001  # resolution of the detectable difference
MAX_CONFIGURATIONS = 1024  # configurations_needed searches no further


@lru_cache(maxsize=256)
def fisher_rejections(n_x: int, n_y: int, alpha: float) -> np.ndarray:
    """The (n_x + 1) × (n_y + 1) table of Fisher's exact two-sided test rejecting at ``alpha`` for
    i of n_x against j of n_y solved. All tables at once by the test's definition: given the total
    s = i + j, i is hypergeometric, and p(i) sums the probabilities of the i' no more likely than i
    (a sorted cumulative sum per s).
    Written out because scipy's ``fisher_exact`` takes one table per call (the tests check it against
    that) and the searches below need thousands of tables."""
    from scipy.stats import hypergeom

    reject = np.zeros((n_x + 1, n_y + 1), dtype=bool)
    for s in range(n_x + n_y + 1):
        i = np.arange(max(0, s - n_y), min(n_x, s) + 1)
        pmf = hypergeom.pmf(i, n_x + n_y, n_x, s)
        ascending = np.sort(pmf)
        as_likely = np.searchsorted(ascending, pmf * FISHER_TOLERANCE, side="right")
        reject[i, s - i] = np.cumsum(ascending)[as_likely - 1] <= alpha
    return reject


@lru_cache(maxsize=256)
def mcnemar_rejections(n: int, alpha: float) -> np.ndarray:
    """The (n + 1) × (n + 1) table of McNemar's exact two-sided test rejecting at ``alpha`` for D
    discordant pairs (row) of which b (column, b ≤ D) favour x: 2 · Bin(min(b, D − b); D, 1/2) ≤ alpha
    (statsmodels' ``mcnemar(exact=True)``)."""
    from scipy.stats import binom

    d, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    p = np.minimum(1.0, 2 * binom.cdf(np.minimum(b, d - b), d, 0.5))
    return (b <= d) & (d > 0) & (p <= alpha)


def solved_power(rate_x: float, rate_y: float, n_x: int, n_y: int, alpha: float, paired: bool) -> float:
    """The probability that the design's solved test rejects at ``alpha`` when the solved rates are
    ``rate_x`` and ``rate_y``: Fisher's exact test on n_x against n_y trials, or (``paired``, n_x = n_y
    configurations) McNemar's exact test with a pair's outcomes independent (see the module)."""
    from scipy.stats import binom

    if paired:
        if n_x != n_y:
            raise ValueError(f"a paired design has one n, got {n_x} and {n_y}")
        p10, p01 = rate_x * (1 - rate_y), rate_y * (1 - rate_x)
        if p10 + p01 == 0:
            return 0.0
        d, b = np.meshgrid(np.arange(n_x + 1), np.arange(n_x + 1), indexing="ij")
        weight = binom.pmf(d, n_x, p10 + p01) * binom.pmf(b, d, p10 / (p10 + p01))
        return float(weight[mcnemar_rejections(n_x, alpha)].sum())
    px, py = binom.pmf(np.arange(n_x + 1), n_x, rate_x), binom.pmf(np.arange(n_y + 1), n_y, rate_y)
    return float(px @ fisher_rejections(n_x, n_y, alpha) @ py)


@lru_cache(maxsize=4096)  # a study's null verdicts share a few (rate, n, alpha): the report asks again and again
def detectable_difference(rate: float, n_x: int, n_y: int, alpha: float, power: float = 0.8,
                          paired: bool = False) -> float:  # fmt: skip
    """The smallest difference in solved rate from the baseline's ``rate`` that the design detects with
    probability ``power`` at ``alpha`` (``solved_power``; to ``STEP``): the larger of the detectable rise
    and fall, a direction in which no move reaches the power counting as its whole room (1 − rate or
    rate). NaN when no move in either direction reaches it (the design cannot detect any difference).
    Found by bisection: the power grows with the difference (the tests check)."""
    if n_x < 1 or n_y < 1 or not 0 <= rate <= 1 or (paired and n_x != n_y):
        return float("nan")
    moves = []
    for sign, room in ((1, 1 - rate), (-1, rate)):
        steps = int(round(room / STEP))

        def reaches(k: int, sign: int = sign) -> bool:
            moved = min(1.0, max(0.0, rate + sign * k * STEP))
            return solved_power(moved, rate, n_x, n_y, alpha, paired) >= power

        moves.append((_first(reaches, 1, steps) * STEP if steps and reaches(steps) else float("nan"), room))
    if all(math.isnan(found) for found, _ in moves):
        return float("nan")
    return max(room if math.isnan(found) else found for found, room in moves)


def configurations_needed(rate: float, difference: float, alpha: float, power: float = 0.8,
                          paired: bool = False) -> int | None:  # fmt: skip
    """The smallest n per side (configurations, or trials per variant) at which the design's solved test
    detects a change of the solved rate from ``rate`` to ``rate + difference`` with probability ``power``
    at ``alpha``; None beyond ``MAX_CONFIGURATIONS``. By doubling, then bisection on n: an exact test's
    power saw-tooths in n by a little (its discreteness), so a neighbouring n may also just reach it."""
    target = rate + difference
    if not 0 <= target <= 1 or difference == 0:
        raise ValueError(f"a change from {rate} by {difference} must stay within [0, 1] and not be 0")

    def reaches(n: int) -> bool:
        return solved_power(target, rate, n, n, alpha, paired) >= power

    n = 2
    while not reaches(n):
        if n >= MAX_CONFIGURATIONS:
            return None
        n = min(2 * n, MAX_CONFIGURATIONS)
    return _first(reaches, max(2, n // 2), n)


def _first(reaches, low: int, high: int) -> int:
    """The smallest k in [low, high] with reaches(k), given reaches(high) and reaches monotone."""
    while low < high:
        mid = (low + high) // 2
        if reaches(mid):
            high = mid
        else:
            low = mid + 1
    return low
