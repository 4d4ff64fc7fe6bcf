"""The report's statistical tests, intervals and ranking (scipy; never a framework, never the store).

The unit of replication is the **configuration**: a task, T, variant, hyperparameters and seed. Its
PyTorch and TensorFlow trials start from the same initial weights and see the same data, so they are
paired replicates, not independent samples. The functions here take whatever rows they are given as the
independent units; ``harness.analysis`` decides what a row is (a trial within one framework, or a
configuration whose replicates are averaged) and says so in every "n".

* ``welch`` / ``compare_with_baseline``: Welch's two-sided t-test of each variant against the baseline
  variant in the same block (task, T, framework), Holm-corrected across the variants of a block and
  selection. Within one framework the trials are independent configurations.
* ``paired_test`` / ``framework_tests``: the Wilcoxon signed-rank test of the paired configurations'
  metrics in PyTorch against TensorFlow, per task and T, Holm-corrected across them.
* ``solved_interval``: the exact (Clopper-Pearson) binomial interval of a solved rate.
* ``rank_variants``: mean ranks over blocks, Friedman's test and the Nemenyi critical difference
  (Demšar 2006).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ALPHA = 0.05
CONFIDENCE = 0.95  # of every interval the report shows
#: A selection (the top 10 % of a cell) is shown and tested only where it holds at least this many trials:
#: fewer make a box of one or two points and leave Welch's test one degree of freedom or none.
MIN_SELECTION = 3
NOT_TESTED = "not tested"  # too few trials with a test metric on either side
TOO_FEW_SELECTED = f"top 10 % under {MIN_SELECTION} trials"  # the selection is too small to be tested
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
    res = stats.ttest_ind(x, y, equal_var=False)
    return WelchResult(float(res.statistic), float(res.df), min(1.0, float(res.pvalue)))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input's order; NaNs stay NaN and do not count in m.

    Written out because scipy has no Holm correction (``scipy.stats.false_discovery_control`` does
    Benjamini-Hochberg only) and statsmodels is not a dependency; it is the step-down formula
    p_(i) · (m - i + 1), made monotone and capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def direction(diff_in_metric_direction: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """ "better" / "worse" (significant) / "no significant difference" / "not tested" (too few trials)."""
    if not math.isfinite(p_adjusted):
        return NOT_TESTED
    if p_adjusted < alpha and diff_in_metric_direction != 0:
        return "better" if diff_in_metric_direction > 0 else "worse"
    return SAME


COMPARISON_COLUMNS = [
    "task", "length", "framework", "selection", "variant", "baseline", "n", "n_baseline", "mean",
    "mean_baseline", "median", "median_baseline", "t", "df", "p", "p_holm", "direction",
]  # fmt: skip


def compare_with_baseline(
    trials: pd.DataFrame, selected: pd.DataFrame, baseline: str | None, order: Sequence[str] = (),
    alpha: float = ALPHA, min_selection: int = MIN_SELECTION,
) -> pd.DataFrame:  # fmt: skip
    """Welch tests of every variant against the baseline, per block (task, T, framework) and selection:
    "all" (the trials with a test metric) and "top" (``selected``, each cell's top 10 %), Holm-corrected
    within each (block, selection). A top-10 % pair in which either side holds fewer than
    ``min_selection`` trials is not tested: its verdict is ``TOO_FEW_SELECTED`` and it is not counted in
    Holm's m. ``order``: the variants' order (the rows follow it; others after, by id)."""
    rows: list[dict[str, Any]] = []
    if baseline is None or trials.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rank = {v: i for i, v in enumerate(order)}
    for selection, frame in (("all", trials[trials["has_metric"]]), ("top", selected)):
        if frame.empty:
            continue
        for (task, length, framework), block in frame.groupby(["task", "length", "framework"], sort=True):
            base = block.loc[block["variant"] == baseline, "test_metric"].to_numpy(float)
            sign = 1 if bool(block["higher_is_better"].iloc[0]) else -1
            others = sorted(set(block["variant"]) - {baseline}, key=lambda v: (rank.get(v, len(rank)), v))
            block_rows = []
            for variant in others:
                x = block.loc[block["variant"] == variant, "test_metric"].to_numpy(float)
                too_few = selection == "top" and min(len(x), len(base)) < min_selection
                res = WelchResult(math.nan, math.nan, math.nan) if too_few else welch(x, base)
                block_rows.append({
                    "task": task, "length": int(length), "framework": framework, "selection": selection,
                    "variant": variant, "baseline": baseline, "n": len(x), "n_baseline": len(base),
                    "mean": _mean(x), "mean_baseline": _mean(base), "median": _median(x),
                    "median_baseline": _median(base), "t": res.t, "df": res.df, "p": res.p,
                    "_sign": sign, "_too_few": too_few,
                })  # fmt: skip
            for r, p_adj in zip(block_rows, holm([r["p"] for r in block_rows])):
                r["p_holm"] = float(p_adj)
                diff = (r["mean"] - r["mean_baseline"]) * r.pop("_sign") if len(base) and r["n"] else 0.0
                verdict = direction(diff if math.isfinite(diff) else 0.0, r["p_holm"], alpha)
                r["direction"] = TOO_FEW_SELECTED if r.pop("_too_few") else verdict
            rows.extend(block_rows)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


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
            "median_difference": _median(diff), "median_abs_difference": _median(np.abs(diff)),
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
