"""Length generalisation in numbers (docs/tasks.md, "Length generalisation"): each variant's primary metric
against the evaluation length, as Delétang et al. (2023) report it.

``length_generalisation(trials, test_lengths)`` gives one row per (task, T, variant, framework, evaluation
length L), T itself included, over the trials tested beyond T (``Store.test_lengths_frame``):

* ``configurations``: how many trials have a finite metric at L;
* ``median``, ``q25``, ``q75``: the median and interquartile range of the metric at L over them;
* ``best``: the metric at L of the best configuration, the trial whose generalisation score (the mean
  of its metric over the lengths beyond T) is best in the metric's direction (ties: the better test
  metric at T), so that the best line follows one trial across the lengths, as Delétang et al. report
  the best of their seeds; ``best_trial`` names it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GROUP = ["task", "length", "variant", "framework"]
COLUMNS = [*GROUP, "test_length", "configurations", "median", "q25", "q75", "best", "best_trial"]


def length_generalisation(trials: pd.DataFrame, test_lengths: pd.DataFrame | None) -> pd.DataFrame:
    """The rows described in the module docstring; empty where no trial was tested beyond T."""
    if test_lengths is None or test_lengths.empty or trials.empty:
        return pd.DataFrame(columns=COLUMNS)
    keep = [*GROUP, "trial_id", "higher_is_better", "test_metric", "generalisation"]
    own = trials.reindex(columns=keep)
    df = own.merge(test_lengths.rename(columns={"length": "test_length"}), on="trial_id", how="inner")
    df["metric"] = pd.to_numeric(df["metric"], errors="coerce").astype(float)
    rows = []
    for key, cell in df.groupby(GROUP, sort=True):
        best = _best_trial(cell.drop_duplicates("trial_id"))
        for L, at in cell.groupby("test_length", sort=True):
            values = at["metric"].to_numpy(float)
            values = values[np.isfinite(values)]
            chosen = at.loc[at["trial_id"] == best, "metric"]
            rows.append({
                **dict(zip(GROUP, key)), "test_length": int(L), "configurations": len(values),
                "median": float(np.median(values)) if len(values) else np.nan,
                "q25": float(np.quantile(values, 0.25)) if len(values) else np.nan,
                "q75": float(np.quantile(values, 0.75)) if len(values) else np.nan,
                "best": float(chosen.iloc[0]) if len(chosen) else np.nan, "best_trial": best,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _best_trial(trials: pd.DataFrame) -> str | None:
    """The trial with the best generalisation score in the metric's direction, the test metric at T
    breaking ties; None when no trial has a score."""
    higher = bool(trials["higher_is_better"].iloc[0])
    score = pd.to_numeric(trials["generalisation"], errors="coerce").astype(float)
    at_T = pd.to_numeric(trials["test_metric"], errors="coerce").astype(float)
    ranked = pd.DataFrame({"trial_id": trials["trial_id"], "score": score, "at_T": at_T}).dropna(subset=["score"])
    if ranked.empty:
        return None
    ranked = ranked.sort_values(["score", "at_T"], ascending=not higher, kind="stable")
    return str(ranked["trial_id"].iloc[0])
