"""Greff et al.'s marginals (2015, Figs. 4-6): how the test metric moves with each searched hyperparameter,
with its spread, and with the learning rate and hidden size together.

**Model** (chosen over fANOVA's marginals: Optuna's evaluator returns importances only, not the marginal
curves, and a forest's partial dependence would add a scikit-learn dependency and a model between the
data and the figure): the **median test metric of the configurations** at each value of a hyperparameter,
pooled over the variants that have it, with the exact distribution-free 95 % interval of that median
(order statistics of a binomial, ``scipy.stats.quantile_test``). The unit is the configuration (its
PyTorch and TensorFlow replicates averaged, ``harness.analysis.study.configurations``), so a configuration
counts once; failed and timed-out ones have no test metric and are left out.

* A hyperparameter with few distinct numbers (at most ``MAX_POINTS``: a grid such as the hidden sizes)
  gets one point per value; a continuous one (the learning rate) is cut into equal-count bins of about
  ``PER_BIN`` configurations (2 to ``MAX_BINS`` bins; log-spaced values binned by rank, so the same
  edges either way), each point at the median of its bin's values.
* Named settings (the forget bias's "chrono") are points of their own, after the numbers.
* The interval is NaN where a point holds under 6 configurations: the exact 95 % interval of a median
  needs at least 6 values.

The interaction (Greff Fig. 6) is the median test metric per (learning-rate bin, hidden size) cell. The
**strongest effect** of a task is the hyperparameter and T with the largest difference between the
medians of its best and worst point in the metric's direction; ``separated`` says whether the two
points' intervals are disjoint (the difference is then unlikely to be noise).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.importance import searched_hparams
from harness.analysis.statistics import CONFIDENCE
from harness.analysis.statistics import present as is_present

MAX_POINTS = 8  # a numeric hyperparameter with at most this many values gets one point per value
PER_BIN = 8  # configurations per bin of a continuous hyperparameter (about)
MAX_BINS = 6
INTERACTION_BINS = 4  # learning-rate bins of the interaction (fewer: each cell is split again by size)
LEARNING_RATE, HIDDEN_SIZE = "hp.learning_rate", "hp.hidden_size"

MARGINAL_COLUMNS = ["task", "length", "hyperparameter", "order", "point", "x", "named", "binned",
                    "configurations", "median", "low", "high", "higher_is_better"]  # fmt: skip
INTERACTION_COLUMNS = ["task", "length", "x_order", "x_point", "x", "y_order", "y_point", "y", "configurations",
                       "median", "higher_is_better"]  # fmt: skip
STRONGEST_COLUMNS = ["task", "length", "hyperparameter", "effect", "best", "best_median", "best_low", "best_high",
                     "best_configurations", "worst", "worst_median", "worst_low", "worst_high", "worst_configurations",
                     "separated", "higher_is_better"]  # fmt: skip


def median_interval(y: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The exact distribution-free interval of the median of ``y`` (``scipy.stats.quantile_test``: order
    statistics chosen by the binomial distribution); (NaN, NaN) where it does not exist (under 6 values
    at 95 %)."""
    from scipy import stats

    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        return float("nan"), float("nan")
    ci = stats.quantile_test(y, q=float(np.median(y)), p=0.5).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) and \
        math.isfinite(float(v))  # fmt: skip


def points(values: pd.Series, per_bin: int = PER_BIN, max_points: int = MAX_POINTS,
           max_bins: int = MAX_BINS) -> tuple[pd.Series, pd.DataFrame]:  # fmt: skip
    """Each present value's point, and the points: (per row of ``values``, the point's order or NaN;
    a frame with ``order``, ``point`` (its label), ``x`` (the number, NaN for a named setting), ``named``
    and ``binned``, in order: numbers ascending, then named settings alphabetically)."""
    present = values[values.map(is_present)]
    numeric = present[present.map(_number)].astype(float)
    named = present[~present.index.isin(numeric.index)].astype(str)
    assign = pd.Series(np.nan, index=values.index)
    rows = []
    distinct = np.unique(numeric.to_numpy())
    if len(distinct) <= max_points:
        for v in distinct:
            assign.loc[numeric.index[numeric.to_numpy() == v]] = len(rows)
            rows.append({"point": f"{v:g}", "x": float(v), "named": False, "binned": False})
    else:
        bins = int(np.clip(len(numeric) // per_bin, 2, max_bins))
        # equal-count bins by rank: the same edges for log-spaced values as for their logarithms
        codes = pd.qcut(numeric.rank(method="first"), bins, labels=False)
        for b in range(bins):
            idx = numeric.index[codes.to_numpy() == b]
            x = numeric[idx].to_numpy()
            assign.loc[idx] = len(rows)
            rows.append({"point": f"{x.min():.3g}–{x.max():.3g}", "x": float(np.median(x)), "named": False,
                         "binned": True})  # fmt: skip
    for name in sorted(named.unique()):
        assign.loc[named.index[named.to_numpy() == name]] = len(rows)
        rows.append({"point": name, "x": float("nan"), "named": True, "binned": False})
    table = pd.DataFrame(rows, columns=["point", "x", "named", "binned"])
    return assign, table.assign(order=range(len(table)))[["order", "point", "x", "named", "binned"]]


def _usable(configs: pd.DataFrame) -> pd.DataFrame:
    if configs.empty:
        return configs
    return configs[np.isfinite(configs["test_metric"].to_numpy(float))]


def marginal_effects(configs: pd.DataFrame) -> pd.DataFrame:
    """Per task, T, searched hyperparameter (``importance.searched_hparams``: the ``hp.*`` columns that vary)
    and point (``points``): the configurations that have the hyperparameter, their median test metric and
    its exact 95 % interval ``low``, ``high`` (``median_interval``). ``configs``: one row per configuration."""
    df = _usable(configs)
    rows: list[dict[str, Any]] = []
    for (task, length), group in (df.groupby(["task", "length"], sort=True) if len(df) else []):
        hib = bool(group["higher_is_better"].iloc[0])
        for col in searched_hparams(group):
            assign, pts = points(group[col])
            y = group["test_metric"].to_numpy(float)
            for p in pts.itertuples(index=False):
                sel = y[(assign == p.order).to_numpy()]
                low, high = median_interval(sel)
                rows.append({"task": task, "length": int(length), "hyperparameter": col[3:], **p._asdict(),
                             "configurations": len(sel), "median": float(np.median(sel)), "low": low, "high": high,
                             "higher_is_better": hib})  # fmt: skip
    return pd.DataFrame(rows, columns=MARGINAL_COLUMNS)


def interaction(configs: pd.DataFrame, x: str = LEARNING_RATE, y: str = HIDDEN_SIZE,
                bins: int = INTERACTION_BINS) -> pd.DataFrame:  # fmt: skip
    """Per task and T where both ``x`` and ``y`` vary: the median test metric of the configurations in each
    (x point, y point) cell, ``x`` cut into at most ``bins`` equal-count bins, ``y`` one point per value
    when it has few (``points``). Cells without configurations are absent."""
    df = _usable(configs)
    rows: list[dict[str, Any]] = []
    if df.empty or x not in df or y not in df:
        return pd.DataFrame(columns=INTERACTION_COLUMNS)
    for (task, length), group in df.groupby(["task", "length"], sort=True):
        group = group[group[x].map(_number) & group[y].map(_number)]
        if group[x].nunique() < 2 or group[y].nunique() < 2:
            continue
        per_bin = max(1, len(group) // bins)
        xa, xp = points(group[x], per_bin=per_bin, max_points=bins, max_bins=bins)
        ya, yp = points(group[y], per_bin=per_bin, max_points=MAX_POINTS, max_bins=bins)
        metric = group["test_metric"].to_numpy(float)
        hib = bool(group["higher_is_better"].iloc[0])
        for xr in xp.itertuples(index=False):
            for yr in yp.itertuples(index=False):
                sel = metric[((xa == xr.order) & (ya == yr.order)).to_numpy()]
                if len(sel):
                    rows.append({"task": task, "length": int(length), "x_order": xr.order, "x_point": xr.point,
                                 "x": xr.x, "y_order": yr.order, "y_point": yr.point, "y": yr.x,
                                 "configurations": len(sel), "median": float(np.median(sel)),
                                 "higher_is_better": hib})  # fmt: skip
    return pd.DataFrame(rows, columns=INTERACTION_COLUMNS)


def strongest_effects(marginals: pd.DataFrame) -> pd.DataFrame:
    """Per task, the (T, hyperparameter) whose best and worst points' medians differ most (``effect``, in
    the metric's units, best minus worst in its direction, so ≥ 0), with both points, their intervals and
    counts; ``separated``: both intervals exist and are disjoint. Points under 2 configurations are left
    out (a single configuration is no marginal)."""
    rows = []
    m = marginals[marginals["configurations"] >= 2] if len(marginals) else marginals
    for (task, length, hp), pts in (m.groupby(["task", "length", "hyperparameter"], sort=True) if len(m) else []):
        if len(pts) < 2:
            continue
        sign = 1 if bool(pts["higher_is_better"].iloc[0]) else -1
        ranked = pts.assign(_s=sign * pts["median"]).sort_values(["_s", "order"], ascending=[False, True])
        best, worst = ranked.iloc[0], ranked.iloc[-1]
        disjoint = best["low"] > worst["high"] if sign > 0 else best["high"] < worst["low"]
        rows.append({"task": task, "length": int(length), "hyperparameter": hp,
                     "effect": float(sign * (best["median"] - worst["median"])),
                     **{f"best_{k}": best[k] for k in ("median", "low", "high", "configurations")},
                     **{f"worst_{k}": worst[k] for k in ("median", "low", "high", "configurations")},
                     "best": best["point"], "worst": worst["point"], "separated": bool(disjoint),
                     "higher_is_better": sign > 0})  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=STRONGEST_COLUMNS)
    out = pd.DataFrame(rows)
    out = out.sort_values(["task", "effect", "length", "hyperparameter"], ascending=[True, False, True, True])
    return out.groupby("task", sort=True).head(1).reset_index(drop=True)[STRONGEST_COLUMNS]
