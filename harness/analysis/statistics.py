"""The report's statistical tests, intervals and ranking (scipy; never a framework, never the store).

The unit of replication is the **configuration**: a task, T, variant, hyperparameters and seed. Its
PyTorch and TensorFlow trials start from the same initial weights and see the same data, so they are
two measurements of one configuration, not independent samples. The functions here take whatever
rows they are given as the independent units; ``harness.analysis.study`` decides what a row is (a trial
within one framework, or a configuration whose framework trials are averaged; for the verdicts,
``harness.analysis.comparisons``: a search draw whose replicate seeds are averaged) and says so in every "n".

* the tests of a variant against the baseline (``harness.analysis.comparisons`` runs them as a study's analysis
  plan says): ``signed_rank_test`` (Wilcoxon, paired), ``rank_test`` (Mann-Whitney U), ``welch``
  (Welch's t), ``mcnemar_test`` (McNemar exact, paired; configurations as units where they hold
  replicates: ``clustered_sign_test``), ``fisher_test`` (Fisher exact), and
  ``correct`` (Holm or Benjamini-Hochberg over a family).
* the effects with their intervals: ``solved_difference`` / ``paired_solved_difference`` (difference in
  solved rate, Newcombe's hybrid score interval, unpaired and paired), ``shift`` (Hodges-Lehmann shift
  of the metric with a seeded percentile bootstrap interval).
* the power of the solved tests is in ``harness.analysis.power``.
* ``paired_test`` / ``framework_tests``: the Wilcoxon signed-rank test of the paired configurations'
  metrics in PyTorch against TensorFlow, per task and T, Holm-corrected across them.
* ``solved_interval``: the exact (Clopper-Pearson) binomial interval of a solved rate.
* ``rank_variants``: mean ranks over blocks, Friedman's test and the Nemenyi critical difference
  (Demšar 2006).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ALPHA = 0.05
CONFIDENCE = 0.95  # of every interval the report shows
#: A selection (the top 10 % of a cell) is shown and tested only where it holds at least this many trials:
#: 4 against 4 is the smallest sample at which a rank test (Mann-Whitney U, exact: p >= 2/70 = 0.029) can
#: reach p < 0.05 at all; 3 against 3 cannot go below 0.1, so a smaller selection is shown and not tested.
MIN_SELECTION = 4
NOT_TESTED = "not tested"  # too few trials with a test metric on either side
TOO_FEW_SELECTED = f"top 10 % from under {MIN_SELECTION} configurations"  # too few units a side to be tested
SAME = "no significant difference"


# ------------------------------------------------------------------------------------------------------
# Welch, Holm, verdicts
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WelchResult:
    t: float
    df: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's unequal-variances t-test (two-sided) of mean(a) against mean(b).

    NaN when either sample has fewer than two values. Both variances zero: p = 0 if the means differ,
    else 1 (t = ±inf or 0), the test's limit, where ``scipy.stats.ttest_ind`` returns NaN.
    """
    from scipy import stats

    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        return WelchResult(float("nan"), float("nan"), float("nan"))
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    if vx + vy == 0:
        if diff == 0:
            return WelchResult(0.0, float("nan"), 1.0)
        return WelchResult(math.copysign(math.inf, diff), float("nan"), 0.0)
    with warnings.catch_warnings():  # near-identical samples: scipy warns of precision loss, p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    return WelchResult(float(res.statistic), float(res.df), min(1.0, float(res.pvalue)))


def correct(pvalues: Sequence[float], method: str = "holm") -> np.ndarray:
    """Adjusted p-values in the input's order; NaNs stay NaN and do not count in m. ``method``: "holm"
    (Holm-Bonferroni step-down, family-wise error: p_(i) · (m − i + 1), made monotone, capped at 1) or
    "bh" (Benjamini-Hochberg step-up, false discovery rate; ``scipy.stats.false_discovery_control``)."""
    from scipy import stats

    if method not in ("holm", "bh"):
        raise ValueError(f"correction {method!r} is unknown; allowed: holm, bh")
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = _holm(p[ok]) if method == "holm" else stats.false_discovery_control(p[ok], method="bh")
    return out


def _holm(p: np.ndarray) -> np.ndarray:
    # Three lines by hand: statsmodels' multipletests computes the same numbers (the tests check) but runs
    # gc.collect() on every Holm call, 30 ms or more each, which the calibration simulations pay thousands of times.
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (``correct(pvalues, "holm")``)."""
    return correct(pvalues, "holm")


def direction(diff_in_metric_direction: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """ "better" / "worse" (significant) / "no significant difference" / "not tested" (too few trials)."""
    if not math.isfinite(p_adjusted):
        return NOT_TESTED
    if p_adjusted < alpha and diff_in_metric_direction != 0:
        return "better" if diff_in_metric_direction > 0 else "worse"
    return SAME


def mean(x: Sequence[float]) -> float:
    """The mean, NaN for no value (numpy warns and returns NaN; a report must not warn)."""
    return float(np.mean(x)) if len(x) else float("nan")


def median(x: Sequence[float]) -> float:
    """The median, NaN for no value."""
    return float(np.median(x)) if len(x) else float("nan")


def present(value: Any) -> bool:
    """Whether a stored value is there: not None and not a float NaN (pandas reads a missing value as either)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


# ------------------------------------------------------------------------------------------------------
# intervals
# ------------------------------------------------------------------------------------------------------
def solved_interval(solved: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact (Clopper-Pearson) binomial interval of ``solved`` of ``n`` (scipy's ``binomtest``);
    (NaN, NaN) when n is 0."""
    from scipy import stats

    if n <= 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(solved), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


# ------------------------------------------------------------------------------------------------------
# frameworks: paired test
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairedResult:
    n: int  # pairs
    nonzero: int  # pairs whose difference is not exactly 0 (the signed-rank test uses only these)
    statistic: float
    p: float


def paired_test(x: Sequence[float], y: Sequence[float]) -> PairedResult:
    """The Wilcoxon signed-rank test (two-sided, ``scipy.stats.wilcoxon``) of the paired differences
    x - y; pairs with a NaN are dropped, zero differences are discarded (Wilcoxon's own rule). With no
    pair p is NaN; when every difference is exactly zero the samples agree and p = 1."""
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    nonzero = int(np.count_nonzero(d))
    if not len(d):
        return PairedResult(0, 0, float("nan"), float("nan"))
    if nonzero == 0:
        return PairedResult(len(d), 0, 0.0, 1.0)
    res = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
    return PairedResult(len(d), nonzero, float(res.statistic), float(res.pvalue))


def rank_test(x: Sequence[float], y: Sequence[float]) -> float:
    """The Mann-Whitney U test's two-sided p of x against y (``scipy.stats.mannwhitneyu``; the normal
    approximation with its tie correction, exact for small samples without ties); NaN with fewer than two
    values on a side; 1 when every value is the same (no rank can differ)."""
    from scipy import stats

    a, b = _finite(x), _finite(y)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def signed_rank_test(differences: Sequence[float]) -> float:
    """The Wilcoxon signed-rank test's two-sided p of paired differences (``paired_test`` on d and 0);
    NaN with fewer than two pairs."""
    d = _finite(differences)
    return paired_test(d, np.zeros_like(d)).p if len(d) >= 2 else float("nan")


def mcnemar_test(x_solved: Sequence[bool], y_solved: Sequence[bool],
                 configurations: Sequence[int] | None = None) -> float:  # fmt: skip
    """McNemar's exact test (two-sided) of paired binary outcomes: under H0 the discordant pairs (x solved
    and y not: b; y solved and x not: c) split as Binomial(b + c, 1/2) (statsmodels' ``mcnemar``,
    exact=True). No pair: NaN; no discordant pair: 1.

    ``configurations`` (one label per pair) groups pairs that share a configuration (its replicate
    seeds): such pairs are not independent units, so where a configuration holds more than one pair the
    unit is the configuration and the test is ``clustered_sign_test`` of its count difference
    D_k = Σ_r (x_kr − y_kr), which is McNemar's exact test itself when every configuration has one pair."""
    from statsmodels.stats.contingency_tables import mcnemar

    x, y = np.asarray(x_solved, dtype=bool), np.asarray(y_solved, dtype=bool)
    if not len(x):
        return float("nan")
    if configurations is not None and pd.Series(configurations).duplicated().any():
        d = pd.Series(x.astype(int) - y.astype(int)).groupby(np.asarray(configurations)).sum()
        return clustered_sign_test(d.to_numpy())
    b, c = int((x & ~y).sum()), int((~x & y).sum())
    if b + c == 0:
        return 1.0
    table = [[int((x & y).sum()), b], [c, int((~x & ~y).sum())]]
    return float(mcnemar(table, exact=True).pvalue)


def clustered_sign_test(differences: Sequence[int]) -> float:
    """The exact sign-flip test (two-sided) of integer per-unit differences D_k: under H0 each D_k is
    symmetric about 0 and independent of the others, so every sign pattern of the D_k is equally likely
    and p = P(|Σ ε_k |D_k|| ≥ |Σ D_k|), ε_k = ±1 with probability 1/2 each (Fisher's randomization test of
    paired data; with D_k ∈ {−1, 0, 1} it is McNemar's exact test). NaN without units; 1 where every
    D_k is 0. Computed exactly by convolving the units' two-point distributions, written here because
    scipy's ``permutation_test`` is exact only by enumerating all 2^K patterns (K = 20 configurations:
    a million) and otherwise samples, which leaves a Monte Carlo floor under the p-values Holm needs."""
    raw = np.asarray(differences, dtype=float)
    if not len(raw):
        return float("nan")
    if not np.array_equal(raw, np.round(raw)):
        raise ValueError(f"clustered_sign_test takes integer differences (solved counts), got {raw.tolist()}")
    d = np.abs(raw.astype(np.int64))
    observed = abs(int(raw.sum()))
    total = int(d.sum())
    if total == 0:
        return 1.0
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0  # index i holds P(S = i − total)
    for value in d[d > 0]:
        dist = 0.5 * (np.roll(dist, value) + np.roll(dist, -value))  # no wrap: |S| never exceeds total
    s = np.arange(-total, total + 1)
    return float(min(1.0, dist[np.abs(s) >= observed].sum()))


def fisher_test(solved_x: int, n_x: int, solved_y: int, n_y: int) -> float:
    """Fisher's exact test (two-sided) of solved_x of n_x against solved_y of n_y; NaN if a side is empty."""
    from scipy import stats

    if n_x <= 0 or n_y <= 0:
        return float("nan")
    table = [[solved_x, n_x - solved_x], [solved_y, n_y - solved_y]]
    return float(stats.fisher_exact(table).pvalue)


def clustered_fisher_test(counts_x: Sequence[int], counts_y: Sequence[int], sizes_x: Sequence[int] | None = None,
                          sizes_y: Sequence[int] | None = None) -> float:  # fmt: skip
    """The exact permutation test (two-sided) of two samples of units with integer counts (a
    configuration's solved trials, of ``sizes`` finished ones; all sizes equal when not given).

    Under H0 units of one size are exchangeable between the sides: within each stratum of equal size the
    x side is a uniformly random subset of that stratum's units, of the size it has. T = Σ_x counts then
    has the convolution of the strata's subset-sum distributions, and p sums the probabilities of the
    values of T no more likely than the observed one (Fisher's two-sided rule). Stratifying keeps a side
    with more finished trials per configuration (a replicate still running, a failed trial) from looking
    better for it. With counts in {0, 1} and equal sizes it is Fisher's exact test (``fisher_test``).
    NaN if a side is empty.

    Computed exactly by counting subsets per (size, sum) in integers; written here because scipy's
    ``permutation_test`` enumerates or samples the C(n_x + n_y, n_x) relabellings."""
    x, y = np.asarray(counts_x, dtype=np.int64), np.asarray(counts_y, dtype=np.int64)
    if not len(x) or not len(y):
        return float("nan")
    if (x < 0).any() or (y < 0).any():
        raise ValueError(f"counts must be non-negative, got {x.tolist()} and {y.tolist()}")
    sx = np.ones(len(x), np.int64) if sizes_x is None else np.asarray(sizes_x, dtype=np.int64)
    sy = np.ones(len(y), np.int64) if sizes_y is None else np.asarray(sizes_y, dtype=np.int64)
    ways, total = [1], 1  # ways[t]: relabellings with T = t, over the strata so far
    for size in np.union1d(sx, sy):
        stratum_ways = _subset_sums(x[sx == size], y[sy == size])
        total *= sum(stratum_ways)
        ways = _convolve_counts(ways, stratum_ways)
    observed = ways[int(x.sum())]
    return min(1.0, sum(w for w in ways if w <= observed) / total)


def _subset_sums(x: np.ndarray, y: np.ndarray) -> list[int]:
    """ways[t]: the subsets of len(x) of the units x ∪ y whose counts sum to t (exact integers)."""
    values, m = np.unique(np.concatenate([x, y]), return_counts=True)
    nx, top = len(x), int(values.max(initial=0)) * len(x)
    ways = [[0] * (top + 1) for _ in range(nx + 1)]  # ways[size][sum]: subsets of the units seen so far
    ways[0][0] = 1
    for value, count in zip(values.tolist(), m.tolist()):
        new = [[0] * (top + 1) for _ in range(nx + 1)]
        for size in range(nx + 1):
            for t, w in enumerate(ways[size]):
                if w:
                    for a in range(min(count, nx - size) + 1):
                        new[size + a][t + a * value] += w * math.comb(count, a)
        ways = new
    return ways[nx]


def _convolve_counts(a: list[int], b: list[int]) -> list[int]:
    """The convolution of two count sequences, in exact integers (numpy would overflow int64)."""
    out = [0] * (len(a) + len(b) - 1)
    for i, u in enumerate(a):
        if u:
            for j, v in enumerate(b):
                out[i + j] += u * v
    return out


# ------------------------------------------------------------------------------------------------------
# effect sizes
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Effect:
    """An effect (x minus y) and its confidence interval."""

    estimate: float
    low: float
    high: float


NO_EFFECT = Effect(float("nan"), float("nan"), float("nan"))
BOOTSTRAP_RESAMPLES = 2000  # of every shift interval; seeded (BOOTSTRAP_SEED), so a report rebuilds exactly
BOOTSTRAP_SEED = 0


def solved_difference(solved_x: int, n_x: int, solved_y: int, n_y: int, confidence: float = CONFIDENCE) -> Effect:
    """The difference of two independent solved rates, solved_x/n_x − solved_y/n_y, with Newcombe's
    hybrid score interval (Wilson intervals of each rate combined; statsmodels'
    ``confint_proportions_2indep``, method "newcomb")."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    if n_x <= 0 or n_y <= 0:
        return NO_EFFECT
    low, high = confint_proportions_2indep(solved_x, n_x, solved_y, n_y, method="newcomb", compare="diff",
                                           alpha=1 - confidence)  # fmt: skip
    return Effect(solved_x / n_x - solved_y / n_y, float(low), float(high))


def paired_solved_difference(x_solved: Sequence[bool], y_solved: Sequence[bool],
                             confidence: float = CONFIDENCE) -> Effect:  # fmt: skip
    """The difference of two solved rates on the same n configurations, (b − c)/n, with Newcombe's
    (1998) method 10 interval for paired proportions:

        θ = (b − c)/n,  p1 = (a + b)/n [l1, u1],  p2 = (a + c)/n [l2, u2]  (Wilson score intervals),
        φ = (ad − bc) / √((a+b)(c+d)(a+c)(b+d)), with ad − bc reduced by n/2 towards 0 when positive
            (Newcombe's continuity adjustment) and φ = 0 when a margin is empty,
        δ = √((p1 − l1)² − 2φ(p1 − l1)(u2 − p2) + (u2 − p2)²),
        ε = √((u1 − p1)² − 2φ(u1 − p1)(p2 − l2) + (p2 − l2)²),
        interval [θ − δ, θ + ε].

    Written out because statsmodels and scipy have the interval for independent proportions only; with
    φ = 0 it is that interval (the tests check both)."""
    from statsmodels.stats.proportion import proportion_confint

    x, y = np.asarray(x_solved, dtype=bool), np.asarray(y_solved, dtype=bool)
    n = len(x)
    if n == 0:
        return NO_EFFECT
    a, b, c, d = (int(v.sum()) for v in (x & y, x & ~y, ~x & y, ~x & ~y))
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, alpha=1 - confidence, method="wilson")
    l2, u2 = proportion_confint(a + c, n, alpha=1 - confidence, method="wilson")
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    cross = a * d - b * c
    cross = max(cross - n / 2, 0.0) if cross > 0 else cross
    phi = cross / math.sqrt(margins) if margins > 0 else 0.0
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    theta = (b - c) / n
    return Effect(theta, max(-1.0, theta - delta), min(1.0, theta + eps))


def _walsh_median(d: np.ndarray, axis: int = -1) -> np.ndarray:
    """The Hodges-Lehmann one-sample estimate along ``axis``: the median of the Walsh averages
    (d_i + d_j)/2, i <= j (vectorised over the other axes, for ``scipy.stats.bootstrap``)."""
    d = np.moveaxis(np.asarray(d, dtype=float), axis, -1)
    i, j = np.triu_indices(d.shape[-1])
    return np.median((d[..., i] + d[..., j]) / 2, axis=-1)


def _pairwise_median(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """The Hodges-Lehmann two-sample estimate along ``axis``: the median of all differences x_i − y_j."""
    x, y = np.moveaxis(np.asarray(x, float), axis, -1), np.moveaxis(np.asarray(y, float), axis, -1)
    diffs = x[..., :, None] - y[..., None, :]
    return np.median(diffs.reshape(*diffs.shape[:-2], -1), axis=-1)


def hodges_lehmann(x: Sequence[float], y: Sequence[float]) -> float:
    """The two-sample Hodges-Lehmann shift median(x_i − y_j) over finite values; NaN if a side is empty."""
    a, b = _finite(x), _finite(y)
    return float(_pairwise_median(a, b)) if len(a) and len(b) else float("nan")


def shift(x: Sequence[float], y: Sequence[float], paired: bool, confidence: float = CONFIDENCE,
          resamples: int = BOOTSTRAP_RESAMPLES) -> Effect:  # fmt: skip
    """A robust shift of the metric, x against y, with a percentile bootstrap interval
    (``scipy.stats.bootstrap``, seeded): paired, the Hodges-Lehmann estimate of the paired differences
    x_i − y_i (the median of their Walsh averages, the signed-rank test's estimator), resampling pairs;
    unpaired, the two-sample Hodges-Lehmann estimate median(x_i − y_j) (the rank-sum test's), resampling
    each sample. Under two values on a side (or pairs), or ``resamples`` = 0: the estimate alone, no interval."""
    from scipy import stats

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if paired:
        d = a - b
        d = d[np.isfinite(d)]
        if not len(d):
            return NO_EFFECT
        estimate, data, statistic = float(_walsh_median(d)), (d,), _walsh_median
    else:
        a, b = _finite(a), _finite(b)
        if not len(a) or not len(b):
            return NO_EFFECT
        estimate, data, statistic = hodges_lehmann(a, b), (a, b), _pairwise_median
    if min(len(v) for v in data) < 2 or resamples <= 0:
        return Effect(estimate, float("nan"), float("nan"))
    if all(np.ptp(v) == 0 for v in data):  # every resample is the same: the interval is the point
        return Effect(estimate, estimate, estimate)
    res = stats.bootstrap(data, statistic, vectorized=True, paired=False, confidence_level=confidence,
                          n_resamples=resamples, method="percentile", batch=250,
                          rng=np.random.default_rng(BOOTSTRAP_SEED))  # fmt: skip
    return Effect(estimate, float(res.confidence_interval.low), float(res.confidence_interval.high))


def _finite(x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a[np.isfinite(a)]


FRAMEWORK_TEST_COLUMNS = [
    "task", "length", "pairs", "nonzero", "median_difference", "median_abs_difference", "max_abs_difference",
    "tf_better", "torch_better", "statistic", "p", "p_holm", "direction",
]  # fmt: skip


def framework_tests(pairs: pd.DataFrame, higher_is_better: dict[str, bool], alpha: float = ALPHA) -> pd.DataFrame:
    """Per task and T, PyTorch against TensorFlow on the configurations that have a test metric in both
    (``pairs``: task, length, torch, tf; one row per configuration): the Wilcoxon signed-rank test of
    tf - torch, Holm-corrected across every task and T; the median difference (tf - torch), the median
    and largest |tf - torch|, and in how many pairs each framework did better in the metric's direction.
    ``direction``: "TensorFlow better" / "PyTorch better" (significant) / "no significant difference"."""
    rows = []
    for (task, length), d in pairs.groupby(["task", "length"], sort=True):
        tf, torch = d["tf"].to_numpy(float), d["torch"].to_numpy(float)
        sign = 1 if higher_is_better.get(str(task), False) else -1
        res = paired_test(tf, torch)
        diff = tf - torch
        rows.append({
            "task": task, "length": int(length), "pairs": res.n, "nonzero": res.nonzero,
            "median_difference": median(diff), "median_abs_difference": median(np.abs(diff)),
            "max_abs_difference": float(np.max(np.abs(diff))) if len(diff) else float("nan"),
            "tf_better": int((sign * diff > 0).sum()), "torch_better": int((sign * diff < 0).sum()),
            "statistic": res.statistic, "p": res.p, "_sign": sign,
        })  # fmt: skip
    for r, p_adj in zip(rows, holm([r["p"] for r in rows])):
        r["p_holm"] = float(p_adj)
        verdict = direction(r["median_difference"] * r.pop("_sign"), r["p_holm"], alpha)
        r["direction"] = {"better": "TensorFlow better", "worse": "PyTorch better"}.get(verdict, verdict)
    return pd.DataFrame(rows, columns=FRAMEWORK_TEST_COLUMNS)


# ------------------------------------------------------------------------------------------------------
# ranking across blocks
# ------------------------------------------------------------------------------------------------------
@dataclass
class Ranking:
    table: pd.DataFrame  # variant, mean_rank, blocks, wins
    ranks: pd.DataFrame  # block x variant ranks (NaN where absent)
    complete_blocks: int = 0
    friedman_p: float = float("nan")
    critical_difference: float = float("nan")
    score: str = ""  # what was ranked, in words (e.g. "top-10 % mean test metric of the configurations")
    block: tuple[str, ...] = ()  # the columns that make a block


def rank_variants(
    scores: pd.DataFrame, block: Sequence[str], order: Sequence[str] = (), alpha: float = ALPHA, score: str = "",
) -> Ranking:  # fmt: skip
    """Mean rank per variant over the blocks. ``scores``: one row per block and variant with ``score`` and
    ``higher_is_better``; ranks are 1 = best in the metric's direction, ties averaged. Friedman's test
    (``scipy.stats.friedmanchisquare``, k ≥ 3 variants, N ≥ 2 blocks) and the Nemenyi critical difference
    CD = q_α(k, ∞) / √2 · √(k (k + 1) / (6 N)) (Demšar 2006) use the N blocks in which every ranked
    variant has a score. ``order``: the variants' order in ``ranks``."""
    from scipy import stats

    empty = Ranking(pd.DataFrame(columns=["variant", "mean_rank", "blocks", "wins"]), pd.DataFrame(),
                    score=score, block=tuple(block))  # fmt: skip
    if scores.empty:
        return empty
    rank_rows = {}
    for key, b in scores.groupby(list(block), sort=True):
        b = b[np.isfinite(b["score"].to_numpy(float))]
        if len(b) < 2:
            continue
        sign = 1 if bool(b["higher_is_better"].iloc[0]) else -1
        rank_rows[key] = dict(zip(b["variant"], stats.rankdata(-sign * b["score"].to_numpy(float))))
    if not rank_rows:
        return empty
    wide = pd.DataFrame.from_dict(rank_rows, orient="index")
    rank = {v: i for i, v in enumerate(order)}
    wide = wide[sorted(wide.columns, key=lambda v: (rank.get(v, len(rank)), v))]
    wide.index = pd.MultiIndex.from_tuples(wide.index, names=list(block))
    table = pd.DataFrame({
        "variant": wide.columns, "mean_rank": wide.mean(axis=0).to_numpy(),
        "blocks": wide.notna().sum(axis=0).to_numpy(), "wins": (wide == 1).sum(axis=0).to_numpy(),
    }).sort_values(["mean_rank", "variant"], kind="stable").reset_index(drop=True)  # fmt: skip
    complete = wide.dropna(axis=0, how="any")
    result = Ranking(table, wide, len(complete), score=score, block=tuple(block))
    k = wide.shape[1]
    if k >= 3 and len(complete) >= 2:
        try:
            result.friedman_p = float(stats.friedmanchisquare(*[complete[c].to_numpy() for c in complete]).pvalue)
        except ValueError:  # every block ranks alike with ties everywhere: the statistic is undefined
            pass
    if k >= 2 and len(complete) >= 1:
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
        result.critical_difference = float(q * math.sqrt(k * (k + 1) / (6 * len(complete))))
    return result
