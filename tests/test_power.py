"""The exact power of the solved tests (``harness.analysis.power``) against brute-force references: scipy's and
statsmodels' own tests applied to every outcome of a small design."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from harness.analysis import power as P


@pytest.mark.parametrize("n_x, n_y, alpha", [(5, 7, 0.05), (12, 12, 0.01), (3, 15, 0.2), (20, 20, 0.0005)])
def test_fisher_rejections_are_scipys_fisher_exact(n_x, n_y, alpha):
    reject = P.fisher_rejections(n_x, n_y, alpha)
    for i, j in itertools.product(range(n_x + 1), range(n_y + 1)):
        p = stats.fisher_exact([[i, n_x - i], [j, n_y - j]]).pvalue
        assert reject[i, j] == (p <= alpha), (i, j, p)


@pytest.mark.parametrize("n, alpha", [(9, 0.05), (20, 0.00625)])
def test_mcnemar_rejections_are_statsmodels_exact_mcnemar(n, alpha):
    reject = P.mcnemar_rejections(n, alpha)
    for d in range(1, n + 1):
        for b in range(d + 1):
            p = mcnemar([[0, b], [d - b, 0]], exact=True).pvalue
            assert reject[d, b] == (p <= alpha), (d, b, p)


def test_unpaired_power_sums_the_rejected_outcomes():
    n_x, n_y, rx, ry, alpha = 6, 5, 0.8, 0.2, 0.1
    brute = sum(stats.binom.pmf(i, n_x, rx) * stats.binom.pmf(j, n_y, ry)
                for i, j in itertools.product(range(n_x + 1), range(n_y + 1))
                if stats.fisher_exact([[i, n_x - i], [j, n_y - j]]).pvalue <= alpha)  # fmt: skip
    assert P.solved_power(rx, ry, n_x, n_y, alpha, paired=False) == pytest.approx(brute)


def test_paired_power_enumerates_independent_pairs():
    """Every outcome of 5 pairs, each (x solved, y solved) drawn independently: McNemar's exact test."""
    n, rx, ry, alpha = 5, 0.9, 0.3, 0.2
    cells = {(1, 1): rx * ry, (1, 0): rx * (1 - ry), (0, 1): (1 - rx) * ry, (0, 0): (1 - rx) * (1 - ry)}
    brute = 0.0
    for outcome in itertools.product(cells, repeat=n):
        b, c = outcome.count((1, 0)), outcome.count((0, 1))
        if b + c and mcnemar([[0, b], [c, 0]], exact=True).pvalue <= alpha:
            brute += math.prod(cells[o] for o in outcome)
    assert P.solved_power(rx, ry, n, n, alpha, paired=True) == pytest.approx(brute)


@pytest.mark.parametrize("paired", [False, True])
def test_power_grows_with_the_difference(paired):
    """detectable_difference bisects on this."""
    powers = [P.solved_power(0.3 + d, 0.3, 30, 30, 0.005, paired) for d in np.arange(0.0, 0.7, 0.02)]
    assert all(b >= a - 1e-12 for a, b in zip(powers, powers[1:]))


@pytest.mark.parametrize("rate, n, alpha, paired", [(0.5, 40, 0.0005, False), (0.3, 40, 0.0005, True),
                                                    (0.6, 20, 0.05, True), (0.1, 30, 0.01, False)])  # fmt: skip
def test_the_detectable_difference_is_the_smallest_that_reaches_the_power(rate, n, alpha, paired):
    delta = P.detectable_difference(rate, n, n, alpha, 0.8, paired)
    assert 0 < delta <= max(rate, 1 - rate)

    def reached(d: float) -> bool:  # in either direction the rate can move
        return any(0 <= rate + s * d <= 1 and P.solved_power(rate + s * d, rate, n, n, alpha, paired) >= 0.8
                   for s in (1, -1))  # fmt: skip

    assert reached(delta) and not reached(delta - 2 * P.STEP)


def test_nothing_is_detectable_in_a_tiny_design():
    assert math.isnan(P.detectable_difference(0.5, 3, 3, 0.0005))
    assert math.isnan(P.detectable_difference(0.5, 0, 3, 0.05))


def test_configurations_needed_reaches_the_power_and_grows_as_alpha_shrinks():
    n = P.configurations_needed(0.5, 0.2, 0.05 / 100)
    assert P.solved_power(0.7, 0.5, n, n, 0.05 / 100, paired=False) >= 0.8
    assert P.solved_power(0.7, 0.5, n // 2, n // 2, 0.05 / 100, paired=False) < 0.8
    assert P.configurations_needed(0.5, 0.2, 0.05) < n
    assert P.configurations_needed(0.5, 0.001, 0.0005, paired=True) is None  # beyond MAX_CONFIGURATIONS
    with pytest.raises(ValueError, match="within"):
        P.configurations_needed(0.9, 0.2, 0.05)
