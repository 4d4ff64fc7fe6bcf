"""Framework equivalence: PyTorch and TensorFlow as two implementations of one computation.

The PyTorch and TensorFlow trials of one configuration and seed start from the same initial weights and
train on the same batches (``framework_pairs`` pairs them): they are one computation
implemented twice, not two replicates, so their agreement says nothing about seed noise
(``harness.analysis.replicates``) and is no replication of a result. What it can say is how closely the two
implementations agree: per task and T, the share of pairs whose test metrics lie within a stated
tolerance of each other, the largest difference, and how often both end with the same solved outcome.
Float rounding differs between the frameworks' kernels and compounds over hundreds of steps, so a pair
near a tipping point (solved or not) can end far apart although both implementations are right.

Tolerance: ``tolerance`` (default ``TOLERANCE``, 1e-3) times the metric's **span** at that task and T,
``metric_scales``: the distance from the trivial baseline (``baseline_metric``, what predicting the
output's mean or the chance rate scores) to a perfect score, that is ``baseline`` for a lower-is-better
error (perfect 0: mse) and ``1 - baseline`` for a higher-is-better rate (perfect 1: accuracies). A pair is
within tolerance when |tf - torch| <= tolerance x span.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

TOLERANCE = 1e-3  # of the metric's span (trivial baseline to perfect)
CONFIDENCE = 0.95

EQUIVALENCE_COLUMNS = [
    "task", "length", "pairs", "span", "tolerance", "within", "within_share", "within_low",
    "median_abs_difference", "max_abs_difference", "q90_relative_difference", "max_relative_difference",
    "solved_pairs", "solved_agree", "solved_agree_share",
]  # fmt: skip


def metric_scales(trials: pd.DataFrame) -> dict[tuple[str, int], float]:
    """Per (task, T) of a trials frame (``harness.analysis.study.prepare``'s), the metric's span: |baseline| when
    lower is better, |1 - baseline| when higher is better (``baseline_metric``, the trivial baseline
    stored with the trials). Where no finite, non-zero span can be read (no baseline stored, a
    higher-is-better metric that is not a rate), the range of the test metric over that task and T's
    trials instead (max - min), and 1 when even that is 0."""
    out: dict[tuple[str, int], float] = {}
    if trials.empty:
        return out
    for (task, length), d in trials.groupby(["task", "length"], sort=True):
        span = float("nan")
        base = pd.to_numeric(d["baseline_metric"], errors="coerce").dropna() if "baseline_metric" in d else []
        hib = bool(d["higher_is_better"].dropna().astype(bool).iloc[0]) if "higher_is_better" in d and \
            d["higher_is_better"].notna().any() else False  # fmt: skip
        if len(base):
            b = float(base.iloc[0])
            span = abs(1.0 - b) if hib and 0.0 <= b <= 1.0 else (abs(b) if not hib else float("nan"))
        if not (math.isfinite(span) and span > 0):
            values = pd.to_numeric(d["test_metric"], errors="coerce").to_numpy(np.float64)
            values = values[np.isfinite(values)]
            span = float(values.max() - values.min()) if len(values) else float("nan")
            if not (math.isfinite(span) and span > 0):
                span = 1.0
        out[(str(task), int(length))] = span
    return out


def solved_pairs(trials: pd.DataFrame) -> pd.DataFrame:
    """The same configuration and seed in both frameworks, where both trained to an outcome (status ok or
    diverged): task, length, variant, configuration, torch and tf (solved, bool)."""
    cols = ["task", "length", "variant", "configuration", "torch", "tf"]
    if trials.empty or not {"finished", "solved", "configuration"} <= set(trials.columns):
        return pd.DataFrame(columns=cols)
    done = trials[trials["finished"].astype(bool)]
    if not {"torch", "tf"} <= set(done["framework"]):
        return pd.DataFrame(columns=cols)
    wide = done.pivot_table(index=["task", "length", "variant", "configuration"], columns="framework",
                            values="solved", aggfunc="min")  # fmt: skip
    wide = wide.dropna(subset=["torch", "tf"]).reset_index()
    wide["torch"], wide["tf"] = wide["torch"].astype(bool), wide["tf"].astype(bool)
    return wide[cols].reset_index(drop=True)


def framework_equivalence(
    pairs: pd.DataFrame,
    scales: Mapping[tuple[str, int], float],
    tolerance: float = TOLERANCE,
    solved: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per task and T, the two frameworks checked as two implementations of one computation (not as
    replicates). ``pairs``: ``framework_pairs`` (task, length, torch, tf: one configuration
    and seed's test metric in each); ``scales``: the metric's span per (task, T) (``metric_scales``);
    ``solved``: ``solved_pairs`` (optional).

    Columns (``EQUIVALENCE_COLUMNS``): ``pairs``; ``span`` and ``tolerance`` = tolerance x span (absolute,
    in the metric's unit); ``within`` (pairs with |tf - torch| <= tolerance), ``within_share`` and
    ``within_low``, the exact (Clopper-Pearson) one-sided 95 % lower bound of that share (at least this
    share of such pairs agree within tolerance); the median and largest |tf - torch|; over the span, the
    90th percentile (``q90_relative_difference``: the tolerance within which 90 % of the pairs agree) and
    the largest (``max_relative_difference``); ``solved_pairs`` (both trained to an outcome), ``solved_agree``
    (the same solved outcome) and its share. A task and T missing from ``scales`` has a NaN tolerance, so
    no pair counts as within it."""
    if not (tolerance >= 0):
        raise ValueError(f"tolerance {tolerance!r} must be a number >= 0")
    rows = []
    for (task, length), d in pairs.groupby(["task", "length"], sort=True):
        diff = np.abs(d["tf"].to_numpy(np.float64) - d["torch"].to_numpy(np.float64))
        diff = diff[np.isfinite(diff)]
        span = float(scales.get((str(task), int(length)), float("nan")))
        tol = tolerance * span
        n, k = len(diff), int((diff <= tol).sum())
        row = {
            "task": task, "length": int(length), "pairs": n, "span": span, "tolerance": tol, "within": k,
            "within_share": k / n if n else float("nan"), "within_low": _lower_bound(k, n),
            "median_abs_difference": float(np.median(diff)) if n else float("nan"),
            "max_abs_difference": float(diff.max()) if n else float("nan"),
            "q90_relative_difference": float(np.quantile(diff, 0.9)) / span if n and span > 0 else float("nan"),
            "max_relative_difference": float(diff.max()) / span if n and span > 0 else float("nan"),
            "solved_pairs": 0, "solved_agree": 0, "solved_agree_share": float("nan"),
        }  # fmt: skip
        if solved is not None and len(solved):
            s = solved[(solved["task"] == task) & (solved["length"].astype(int) == int(length))]
            agree = int((s["torch"].astype(bool) == s["tf"].astype(bool)).sum())
            row.update(solved_pairs=len(s), solved_agree=agree, solved_agree_share=agree / len(s) if len(s) else
                       float("nan"))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=EQUIVALENCE_COLUMNS)


def equivalence(trials: pd.DataFrame, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """``framework_equivalence`` of a prepared trials frame (``harness.analysis.study.prepare``): its pairs,
    spans and solved outcomes."""
    return framework_equivalence(framework_pairs(trials), metric_scales(trials), tolerance, solved_pairs(trials))


def _lower_bound(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """The exact one-sided lower confidence bound of k successes in n: the (1 - confidence) quantile of
    Beta(k, n - k + 1); 0 when k = 0, NaN when n = 0."""
    from scipy import stats

    if n <= 0:
        return float("nan")
    if k <= 0:
        return 0.0
    return float(stats.beta.ppf(1.0 - confidence, k, n - k + 1))


def framework_pairs(trials: pd.DataFrame) -> pd.DataFrame:
    """The same configuration (task, T, variant, hyperparameters, seed) run in PyTorch and in TensorFlow:
    one row per configuration with a test metric in both."""
    cols = ["task", "length", "variant", "configuration", "seed", "torch", "tf"]
    if trials.empty or not {"torch", "tf"} <= set(trials["framework"]):
        return pd.DataFrame(columns=cols)
    df = trials[trials["has_metric"]]
    if "seed" not in df:
        df = df.assign(seed=-1)
    wide = df.pivot_table(index=["task", "length", "variant", "configuration", "seed"], columns="framework",
                          values="test_metric", aggfunc="first")  # fmt: skip
    if not {"torch", "tf"} <= set(wide.columns):
        return pd.DataFrame(columns=cols)
    wide = wide.dropna(subset=["torch", "tf"]).reset_index()
    return wide[cols].sort_values(["task", "length", "variant", "seed", "configuration"],
                                  kind="stable").reset_index(drop=True)  # fmt: skip
