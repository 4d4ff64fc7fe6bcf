"""Seed noise: how much of a cell's spread in the test metric is the seed's, not the hyperparameters'.

A suite with ``replicates = k`` trains each random-search configuration of a (task, T) with k independent
seeds, ``seed = c + r * SEED_STRIDE`` for replicate r of configuration c (``harness.suites.suite.plan``,
``split_seed``): the initial weights and the training data stream differ, the validation and test sets
(fixed per task and T) and every hyperparameter do not. Within a cell (task, T, variant, framework) the
replicates of one configuration therefore differ only by seed, and the configurations differ by their
hyperparameters as well; a one-way random-effects analysis of variance splits the test metric's variance
into those two parts (``seed_noise``), and ``seed_noise_by_task`` pools the cells of a task and T.

The PyTorch and TensorFlow trials of one (configuration, seed) start from the same weights and see the same
data: they are not replicates in this sense (one computation in two implementations) and never meet here,
since a cell holds one framework; ``harness.analysis.equivalence`` checks them against each other.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from harness.analysis.statistics import present
from harness.suites.suite import split_seed
from harness.trials.trial import EXECUTION_HPARAMS

CELL = ["task", "length", "variant", "framework"]
TASK = ["task", "length"]

#: ``seed_noise``'s columns, one row per cell
SEED_NOISE_COLUMNS = [
    *CELL, "configurations", "trials", "n0", "mean", "variance", "ms_between", "ms_within", "F", "p",
    "configuration_variance", "seed_variance", "seed_sd", "total_variance", "seed_share", "icc",
    "solved_configurations", "solved_split",
]  # fmt: skip
#: ``seed_noise_by_task``'s columns, one row per (task, T)
BY_TASK_COLUMNS = [
    *TASK, "cells", "constant_cells", "median_seed_share", "min_seed_share", "max_seed_share", "median_icc",
    "median_seed_sd", "solved_configurations", "solved_split",
]  # fmt: skip


def configuration_keys(trials: pd.DataFrame) -> pd.Series:
    """Per trial, which searched configuration it replicates, within its cell: the search index c of its
    seed (``split_seed(seed)[0]``) and its hyperparameters without run-only settings (``fused``, ``xla``;
    from ``hparams`` JSON, else the ``hp.*`` columns), so that two suites whose c-th draws differ never
    pool. A frame without ``seed`` has no replicates: every trial is its own configuration."""
    if "seed" not in trials:
        return trials["trial_id"].astype(str) if "trial_id" in trials else pd.Series(
            [str(i) for i in range(len(trials))], index=trials.index, dtype=object)  # fmt: skip
    search = [split_seed(int(s))[0] for s in trials["seed"]]
    if "hparams" in trials:
        hps = [json.dumps({k: v for k, v in json.loads(h).items() if k not in EXECUTION_HPARAMS}, sort_keys=True)
               for h in trials["hparams"]]  # fmt: skip
    else:
        cols = sorted(c for c in trials.columns if c.startswith("hp.") and c[3:] not in EXECUTION_HPARAMS)
        hps = [json.dumps([v if present(v) else None for v in row], default=str)
               for row in trials[cols].itertuples(index=False)]  # fmt: skip
    return pd.Series([f"{c}|{h}" for c, h in zip(search, hps)], index=trials.index, dtype=object)


def replicate_index(trials: pd.DataFrame) -> pd.Series:
    """Per trial, its replicate r (``split_seed(seed)[1]``; 0 without ``seed``)."""
    if "seed" not in trials:
        return pd.Series(0, index=trials.index, dtype=int)
    return pd.Series([split_seed(int(s))[1] for s in trials["seed"]], index=trials.index, dtype=int)


def one_way_random_effects(groups: list[np.ndarray]) -> dict[str, float]:
    """The one-way random-effects decomposition of ``groups`` (one array of replicate values per
    configuration, each of at least one value; at least two groups and one more value than groups).

    Model: y_ij = mu + c_i + e_ij, i = 1..a configurations, j = 1..n_i replicates, N = sum n_i; c_i the
    configuration's effect (variance s2_c), e_ij the seed's (variance s2_s), independent. ANOVA estimator
    (unbalanced groups allowed):

        MS_B = sum_i n_i (ybar_i - ybar)^2 / (a - 1)
        MS_W = sum_i sum_j (y_ij - ybar_i)^2 / (N - a)
        n0   = (N - sum_i n_i^2 / N) / (a - 1)          (= n when every n_i = n)
        s2_s = MS_W,  s2_c = max(0, (MS_B - MS_W) / n0),  total = s2_c + s2_s
        seed_share = s2_s / total,  ICC(1) = s2_c / total = 1 - seed_share

    With equal n_i and MS_B >= MS_W, ICC(1) = (MS_B - MS_W) / (MS_B + (n - 1) MS_W) (Shrout & Fleiss 1979,
    ICC(1,1)); where MS_B < MS_W the configuration variance is truncated at 0 (ICC 0, seed share 1).
    F = MS_B / MS_W with (a - 1, N - a) degrees of freedom tests s2_c = 0; ``p`` is its upper tail (NaN
    when MS_W = 0). ``total`` 0 (every value equal) leaves the shares NaN. Float64 throughout."""
    from scipy import stats

    ys = [np.asarray(g, dtype=np.float64) for g in groups]
    n = np.array([len(g) for g in ys], dtype=np.float64)
    a, N = len(ys), float(n.sum())
    allv = np.concatenate(ys)
    grand = float(allv.mean())
    means = np.array([g.mean() for g in ys])
    ss_b = float(np.sum(n * (means - grand) ** 2))
    ss_w = float(sum(np.sum((g - m) ** 2) for g, m in zip(ys, means)))
    ms_b, ms_w = ss_b / (a - 1), ss_w / (N - a)
    n0 = (N - float(np.sum(n**2)) / N) / (a - 1)
    s2_c = max(0.0, (ms_b - ms_w) / n0)
    total = s2_c + ms_w
    if ms_w > 0:
        F = ms_b / ms_w
        p = float(stats.f.sf(F, a - 1, N - a))
    else:
        F = math.inf if ms_b > 0 else float("nan")
        p = 0.0 if ms_b > 0 else float("nan")
    share = ms_w / total if total > 0 else float("nan")
    return {
        "configurations": a, "trials": int(N), "n0": n0, "mean": grand,
        "variance": float(allv.var(ddof=1)), "ms_between": ms_b, "ms_within": ms_w, "F": float(F), "p": p,
        "configuration_variance": s2_c, "seed_variance": ms_w, "seed_sd": math.sqrt(ms_w),
        "total_variance": total, "seed_share": share, "icc": 1.0 - share if total > 0 else float("nan"),
    }  # fmt: skip


def seed_noise(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell (task, T, variant, framework) of ``harness.analysis.study.prepare``'s frame, the test metric's
    variance split into the configurations' part and the seeds' part by the one-way random-effects ANOVA
    (``one_way_random_effects`` derives it): with a configurations, n_i replicates each, N = sum n_i,

        seed_share = MS_W / (MS_W + max(0, (MS_B - MS_W) / n0)),   ICC(1) = 1 - seed_share,

    MS_B and MS_W the between- and within-configuration mean squares, n0 = (N - sum n_i^2 / N) / (a - 1).
    One row per cell that has at least 2 configurations with at least 2 replicates that have a test
    metric; those configurations and replicates only enter the decomposition.

    Replicates of one configuration: the trials of a cell with the same search index c
    (``harness.suites.suite.split_seed(seed)[0]``) and hyperparameters (``configuration_keys``). Trials of one
    (configuration, replicate) that differ only in run-only settings (``fused``, ``xla``) are one
    computation, so one replicate: their mean.

    Columns (``SEED_NOISE_COLUMNS``): the cell; ``configurations`` a and ``trials`` N used; ``n0``
    (replicates per configuration, effective); ``mean`` and ``variance`` (the sample variance, ddof 1) of
    the N metrics; ``ms_between``, ``ms_within``, ``F``, ``p``; ``configuration_variance`` s2_c,
    ``seed_variance`` s2_s (and ``seed_sd``, its root: the typical difference a seed alone makes),
    ``total_variance`` s2_c + s2_s; ``seed_share`` s2_s / total (the share due to seed noise) and ``icc``
    ICC(1) = s2_c / total (the share due to the configuration); ``solved_configurations`` (the cell's
    configurations with at least 2 replicates that trained to an outcome, status ok or diverged, metric or
    not) and ``solved_split`` (those of them whose replicates disagree on solved)."""
    need = {*CELL, "seed", "test_metric"}
    if trials.empty or not need <= set(trials.columns):
        return pd.DataFrame(columns=SEED_NOISE_COLUMNS)
    df = trials.assign(_config=configuration_keys(trials), _rep=replicate_index(trials))
    metric = pd.to_numeric(df["test_metric"], errors="coerce").astype(np.float64)
    has_metric = df["has_metric"].astype(bool) if "has_metric" in df else np.isfinite(metric)
    df = df.assign(_metric=metric, _has=has_metric & np.isfinite(metric))
    rows = []
    for key, cell in df.groupby(CELL, sort=True):
        ok = cell[cell["_has"]]
        reps = ok.groupby(["_config", "_rep"], sort=True)["_metric"].mean()
        groups = [g.to_numpy(np.float64) for _, g in reps.groupby(level=0, sort=True) if len(g) >= 2]
        if len(groups) < 2:
            continue
        split, counted = _solved_split(cell)
        rows.append({**dict(zip(CELL, key)), **one_way_random_effects(groups),
                     "solved_configurations": counted, "solved_split": split})  # fmt: skip
    out = pd.DataFrame(rows, columns=SEED_NOISE_COLUMNS)
    if len(out):
        out["length"] = out["length"].astype(int)
    return out


def _solved_split(cell: pd.DataFrame) -> tuple[int, int]:
    """(split, counted): configurations of ``cell`` with at least 2 replicates that trained to an outcome,
    and those of them whose replicates disagree on solved."""
    if "finished" in cell:
        finished = cell["finished"].astype(bool)
    elif "status" in cell:
        finished = cell["status"].isin(("ok", "diverged"))
    else:
        return 0, 0
    if "solved" not in cell:
        return 0, 0
    done = cell[finished].assign(_solved=cell["solved"].fillna(False).astype(bool))
    per_rep = done.groupby(["_config", "_rep"], sort=True)["_solved"].all()  # a computation run twice: both
    split = counted = 0
    for _, reps in per_rep.groupby(level=0, sort=True):
        if len(reps) >= 2:
            counted += 1
            split += int(reps.any() and not reps.all())
    return split, counted


def seed_noise_by_task(noise: pd.DataFrame) -> pd.DataFrame:
    """``seed_noise``'s cells pooled per (task, T): ``cells`` (with a seed share), ``constant_cells``
    (every metric equal: no share), the median, smallest and largest ``seed_share`` over the cells, the
    median ``icc`` and ``seed_sd``, and the solved splits summed (``solved_split`` of
    ``solved_configurations``). The median over cells, not a pooled ANOVA: the cells' variances differ by
    orders of magnitude between variants that solve and variants that do not."""
    if noise.empty:
        return pd.DataFrame(columns=BY_TASK_COLUMNS)
    rows = []
    for (task, length), d in noise.groupby(TASK, sort=True):
        share = d["seed_share"].to_numpy(np.float64)
        finite = np.isfinite(share)
        s, icc = share[finite], d["icc"].to_numpy(np.float64)[finite]
        rows.append({
            "task": task, "length": int(length), "cells": int(finite.sum()), "constant_cells": int((~finite).sum()),
            "median_seed_share": float(np.median(s)) if len(s) else float("nan"),
            "min_seed_share": float(s.min()) if len(s) else float("nan"),
            "max_seed_share": float(s.max()) if len(s) else float("nan"),
            "median_icc": float(np.median(icc)) if len(icc) else float("nan"),
            "median_seed_sd": float(np.median(d["seed_sd"].to_numpy(np.float64))),
            "solved_configurations": int(d["solved_configurations"].sum()),
            "solved_split": int(d["solved_split"].sum()),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=BY_TASK_COLUMNS)
