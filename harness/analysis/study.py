"""From the store's trials to the numbers of a Greff et al. (2015) style comparison: the tables the report
shows and the numbers its findings phrase (pandas; the tests, intervals and ranking are in
``harness.analysis.statistics``, the hyperparameter importance in ``harness.analysis.importance``; never a framework).

Definitions used throughout (the report's "Method" section repeats them):

* a **configuration** is (task, T, variant, hyperparameters without run-only settings, seed); its trials
  in PyTorch and TensorFlow start from the same weights and see the same data: they are two
  **framework trials** of one configuration (an implementation check), not independent samples. A
  configuration's test metric is the mean of its framework trials' (those that have one); it is solved
  when every framework trial that trained to an outcome solved. **Replicates** are something else: the
  same hyperparameters with other seeds (a suite's ``replicates``), each its own configuration here. The
  verdicts against the baseline (``harness.analysis.comparisons``) group them again: there a configuration is the
  search draw k that its replicates share (``harness.suites.suite.split_seed``), the unit of every test;
* a **cell** is (task, T, variant, framework); a **block** is (task, T, framework): the variants of a
  block are compared with each other. Within a cell every trial is its own configuration;
* the **test metric** of a trial is the task's primary metric on the test set at the best validation
  checkpoint (``trials.test_metric``). A trial that diverged after a finite checkpoint still has one;
  failed and timed-out trials have none and are only counted;
* **solved rate** = solved trials / trials that trained to an outcome (status ok or diverged), with its
  exact (Clopper-Pearson) 95 % interval; failed and timed-out trials say nothing about the variant and
  are excluded from the denominator (and counted);
* **top 10 %**: per cell, the ``ceil(0.1 · n)`` trials (at least one) with the best *validation* metric
  in the metric's direction among the n with a validation and a test metric; ties go to the lower
  validation loss, then to the trial id (deterministic). It is shown only where it holds at least
  ``MIN_SELECTION`` (4) trials, that is from 31 trials per cell, and tested only where it holds that many
  units a side (configurations, with replicates: ``harness.analysis.comparisons.selection_units``);
* **significance**: each variant against the baseline variant in the same block, as the suite's analysis
  plan says (``harness.suites.analysis_plan``, ``harness.analysis.comparisons``): by default the Wilcoxon
  signed-rank test of the test metrics paired by seed, McNemar's exact test of the solved outcomes beside
  it, Holm-corrected over every comparison of a framework, α = 0.05, with effect sizes and the
  alternative tests' verdicts;
* **frameworks**: the Wilcoxon signed-rank test of the configurations that have a test metric in both
  frameworks, per task and T, Holm-corrected across them;
* **ranking**: per (task, T), each configuration counted once: the variants are ranked by the top-10 %
  mean test metric of their configurations where every such selection holds at least 3, else by the
  median over all configurations (1 = best, ties averaged). Friedman's test and the Nemenyi critical
  difference use the (task, T) blocks in which every ranked variant appears.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import statistics as S
from harness.analysis.comparisons import compare_with_baseline
from harness.analysis.equivalence import equivalence, framework_pairs
from harness.analysis.generalisation import length_generalisation
from harness.analysis.importance import importance as hyperparameter_importance
from harness.analysis.importance import importance_by_task
from harness.analysis.marginals import interaction, marginal_effects, strongest_effects
from harness.analysis.replicates import seed_noise, seed_noise_by_task
from harness.analysis.statistics import MIN_SELECTION, Ranking
from harness.analysis.verdicts import verdicts as verdict_rows
from harness.store.metadata import Metadata, from_registry
from harness.store.metadata import variant_order as metadata_order
from harness.suites.analysis_plan import AnalysisPlan
from harness.trials.trial import Trial, configuration_id

TOP_FRACTION = 0.10
CELL = ["task", "length", "variant", "framework"]
BLOCK = ["task", "length", "framework"]
GROUP = ["task", "length", "variant"]  # a cell without its framework: where configurations are pooled
FINISHED = ("ok", "diverged")  # trained to an outcome: the solved rate's denominator

FRAMEWORK_ORDER = ("torch", "tf")
FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "TensorFlow"}


# ------------------------------------------------------------------------------------------------------
# orders, names, metadata
# ------------------------------------------------------------------------------------------------------
def variant_order(variants: Iterable[str], baseline: str | None = None,
                  ranks: Mapping[str, int] | None = None) -> list[str]:  # fmt: skip
    """The variants by their catalogue rank (``ranks``, as the store records it; unranked ones after, by id),
    the baseline first."""
    ordered = metadata_order(variants, dict(ranks or {}))
    if baseline in ordered:
        ordered.remove(baseline)
        ordered.insert(0, baseline)
    return ordered


def framework_order(frameworks: Iterable[str]) -> list[str]:
    present = set(frameworks)
    return [f for f in FRAMEWORK_ORDER if f in present] + sorted(present - set(FRAMEWORK_ORDER))


def framework_name(framework: str) -> str:
    return FRAMEWORK_NAMES.get(framework, framework)


def choose_baseline(variants: Iterable[str], requested: str | None = None, ranks: Mapping[str, int] | None = None,
                    aliases: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:  # fmt: skip
    """(baseline, note). The requested one (an id, or an alias in ``aliases``) if it has trials, else ``v``
    if present, else the first in the variant order; the note says why when the requested one could not
    be used."""
    present = set(variants)
    if not present:
        return None, None
    if requested is not None:
        requested = (aliases or {}).get(requested, requested)
        if requested in present:
            return requested, None
    default = "v" if "v" in present else variant_order(present, ranks=ranks)[0]
    note = None
    if requested is not None:
        note = f"The requested baseline {requested!r} has no trials in this store yet; {default!r} is used instead."
    return default, note


@dataclass
class VariantInfo:
    id: str
    name: str = ""
    family: str = "other"
    reference: str = ""


def variant_info(variant_ids: Iterable[str], metadata: Metadata) -> dict[str, VariantInfo]:
    """Name, family and reference of each variant from its record (plain defaults where there is none)."""
    out = {}
    for vid in variant_ids:
        m = metadata.variants.get(vid)
        out[vid] = VariantInfo(vid, (m.name if m else "") or vid, (m.family if m else "") or "other",
                               m.reference if m else "")  # fmt: skip
    return out


@dataclass
class TaskInfo:
    id: str
    metric: str
    higher_is_better: bool
    name: str = ""
    solved_threshold: float | None = None  # the same at every length (else see ``thresholds``)
    baselines: dict[int, float] = field(default_factory=dict)  # T -> trivial baseline of the metric
    thresholds: dict[int, float] = field(default_factory=dict)  # T -> success threshold of the metric

    @property
    def sign(self) -> int:
        """+1 when higher is better, -1 when lower is better."""
        return 1 if self.higher_is_better else -1

    def metric_label(self, prefix: str = "test") -> str:
        arrow = "higher is better ↑" if self.higher_is_better else "lower is better ↓"
        return f"{prefix} {self.metric} ({arrow})"

    def baseline(self, T: int) -> float | None:
        value = self.baselines.get(int(T))
        return None if value is None or not math.isfinite(value) else float(value)

    def solved_rule(self) -> str:
        """When a trial counts as solved: 'mse < 0.05', 'mse < 0.05 (T = 10), 0.1 (T = 20)', or ''."""
        if not self.thresholds:
            return ""
        op = "≥" if self.higher_is_better else "<"
        if len(set(self.thresholds.values())) == 1:
            return f"{self.metric} {op} {next(iter(self.thresholds.values())):g}"
        parts = ", ".join(f"{v:g} (T = {T})" for T, v in sorted(self.thresholds.items()))
        return f"{self.metric} {op} {parts}"


def task_info(trials: pd.DataFrame, metadata: Metadata) -> dict[str, TaskInfo]:
    """Metric, direction, trivial baseline, name and success threshold per task: the metric, direction
    and baseline as stored with the trials (the task's record where the trials lack them), the name and
    thresholds from the task's records."""
    out = {}
    for task, frame in trials.groupby("task", sort=True):
        records = {m.length: m for m in metadata.task(str(task))}
        known = next(iter(records.values()), None)
        metric = str(frame["metric"].dropna().iloc[0]) if frame["metric"].notna().any() else None
        hib = bool(frame["higher_is_better"].dropna().iloc[0]) if frame["higher_is_better"].notna().any() else None
        baselines = {}
        for length, sub in frame.groupby("length"):
            values = sub["baseline_metric"].dropna()
            if len(values):
                baselines[int(length)] = float(values.iloc[0])
            elif int(length) in records and records[int(length)].baseline is not None:
                baselines[int(length)] = float(records[int(length)].baseline)
        thresholds = {T: float(m.threshold) for T, m in records.items() if m.threshold is not None}
        thresholds = {T: v for T, v in thresholds.items() if T in set(frame["length"].astype(int))}
        info = TaskInfo(
            str(task),
            metric or (known.metric if known else "metric"),
            hib if hib is not None else bool(known and known.higher_is_better),
            (known.name if known else "") or str(task),
            next(iter(thresholds.values())) if len(set(thresholds.values())) == 1 else None,
            baselines,
            thresholds,
        )
        out[str(task)] = info
    return out


# ------------------------------------------------------------------------------------------------------
# preparing the trials
# ------------------------------------------------------------------------------------------------------
def prepare(trials: pd.DataFrame) -> pd.DataFrame:
    """The store's trials frame with the derived columns the analysis uses (a copy): ``finished``,
    ``has_metric`` and ``configuration`` (``configuration_ids``)."""
    df = trials.copy()
    if df.empty:
        return df
    df["length"] = df["length"].astype(int)
    for col in ("test_metric", "val_metric", "val_loss", "steps_per_second", "steps_to_solve", "param_count"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    # A member of a population stores its computation's steps per second, which advances every member at
    # once: speeds compare as trial-steps per second (x the population; stores from before populations: 1)
    members = pd.to_numeric(df["population"], errors="coerce").fillna(1.0) if "population" in df else 1.0
    df["steps_per_second"] = df["steps_per_second"] * members
    df["solved"] = df["solved"].fillna(0).astype(int).astype(bool)
    df["higher_is_better"] = df["higher_is_better"].fillna(0).astype(int).astype(bool)
    df["finished"] = df["status"].isin(FINISHED)
    df["has_metric"] = np.isfinite(df["test_metric"].to_numpy(dtype=float))
    df["configuration"] = configuration_ids(df)
    df["state_size"] = state_sizes(df)
    return df.sort_values([*CELL, "trial_id"], kind="stable").reset_index(drop=True)


def state_sizes(trials: pd.DataFrame) -> pd.Series:
    """Per trial, the floats of recurrent state its cell keeps per sequence: the stored ``state_size``,
    or, for a row stored before stores recorded it, ``sum(state_sizes(H))`` of its variant as the code
    here declares it (NaN where the code does not know the variant or the row has no hyperparameters)."""
    stored = pd.to_numeric(trials["state_size"], errors="coerce") if "state_size" in trials else None
    out = stored.astype(float) if stored is not None else pd.Series(np.nan, index=trials.index)
    missing = out.isna()
    if missing.any() and "hparams" in trials:
        out[missing] = [_state_from_code(v, hp) for v, hp in trials.loc[missing, ["variant", "hparams"]].itertuples(
            index=False)]  # fmt: skip
    return out


def _state_from_code(variant: str, hparams: str) -> float:
    try:
        from harness.plugins.registry import registry

        cls = registry().variant_class(str(variant))
        hp = json.loads(hparams)
        own = cls(**{k: v for k, v in hp.items() if k in cls.hyperparameters})
        return float(sum(own.state_sizes(int(hp["hidden_size"]))))
    except Exception:  # an unknown variant, a hand-made row: unknown, not an error of the report
        return np.nan


def configuration_ids(trials: pd.DataFrame) -> pd.Series:
    """Per trial, the id of its configuration (``harness.trials.trial.configuration_id``: task, T, variant, the
    hyperparameters without run-only settings, seed), the same for its PyTorch and TensorFlow trials. A
    frame without ``hparams`` or ``seed`` (hand-made) makes every trial its own configuration."""
    if "hparams" not in trials or "seed" not in trials:
        return trials["trial_id"].astype(str)
    columns = ["task", "length", "variant", "framework", "device", "hparams", "seed"]
    rows = trials.reindex(columns=columns).itertuples(index=False)
    ids = [configuration_id(Trial(str(task), int(length), str(variant), str(fw), str(device) if device == device
                                  else "cpu", json.loads(hp), int(seed)))
           for task, length, variant, fw, device, hp, seed in rows]  # fmt: skip
    return pd.Series(ids, index=trials.index, dtype=object)


CONFIGURATION_COLUMNS = [*GROUP, "configuration", "trial_id", "higher_is_better", "test_metric", "val_metric",
                         "val_loss", "runs", "measured", "frameworks", "finished", "solved", "split"]  # fmt: skip


def configurations(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (``prepare``'s frame in, its framework trials pooled): the mean test and
    validation metric and validation loss of the framework trials that have one (NaN if none), ``runs``
    (trials), ``measured`` (trials with a test metric), ``frameworks`` (comma-separated), ``finished``
    (some framework trial trained to an outcome), ``solved`` (every framework trial that trained to an
    outcome solved), ``split`` (framework trials that trained to an outcome disagree on solved),
    ``trial_id`` (the smallest, for deterministic ties), ``seed`` and the ``hp.*`` columns (of the first
    framework trial: they differ only in run-only settings)."""
    if trials.empty:
        return pd.DataFrame(columns=CONFIGURATION_COLUMNS)
    df = trials.assign(_fail=trials["finished"] & ~trials["solved"], _win=trials["finished"] & trials["solved"])
    agg = {
        "trial_id": ("trial_id", "min"), "higher_is_better": ("higher_is_better", "first"),
        "test_metric": ("test_metric", "mean"), "val_metric": ("val_metric", "mean"), "val_loss": ("val_loss", "mean"),
        "runs": ("trial_id", "size"), "measured": ("has_metric", "sum"),
        "frameworks": ("framework", lambda f: ",".join(framework_order(f))), "finished": ("finished", "any"),
        "_fail": ("_fail", "any"), "_win": ("_win", "any"),
        **{c: (c, "first") for c in df.columns if c.startswith("hp.") or c == "seed"},
    }  # fmt: skip
    out = df.groupby([*GROUP, "configuration"], sort=True).agg(**agg).reset_index()
    out["solved"] = out["finished"] & ~out["_fail"]
    out["split"] = out["_fail"] & out["_win"]
    out["measured"] = out["measured"].astype(int)
    return out.drop(columns=["_fail", "_win"])


def select_top(trials: pd.DataFrame, fraction: float = TOP_FRACTION, by: Sequence[str] = tuple(CELL)) -> pd.DataFrame:
    """Per group ``by`` (a cell), the best ``ceil(fraction · n)`` rows (at least 1) by validation metric in
    the metric's direction, among the n rows that have both a validation and a test metric."""
    if trials.empty:
        return trials.copy()
    usable = trials[
        np.isfinite(trials["val_metric"].to_numpy(float)) & np.isfinite(trials["test_metric"].to_numpy(float))
    ]
    picked = []
    for _, cell in usable.groupby(list(by), sort=True):
        n_top = top_count(len(cell), fraction)
        hib = bool(cell["higher_is_better"].iloc[0])
        key = -cell["val_metric"] if hib else cell["val_metric"]
        loss = cell["val_loss"].fillna(np.inf) if "val_loss" in cell else pd.Series(0.0, index=cell.index)
        ordered = cell.assign(_key=key.to_numpy(), _loss=loss.to_numpy()).sort_values(
            ["_key", "_loss", "trial_id"], kind="stable"
        )
        picked.append(ordered.head(n_top).drop(columns=["_key", "_loss"]))
    if not picked:
        return trials.iloc[0:0].copy()
    return pd.concat(picked).sort_values([*by, "trial_id"], kind="stable").reset_index(drop=True)


def shown_selection(selected: pd.DataFrame, by: Sequence[str] = tuple(CELL),
                    min_selection: int = MIN_SELECTION) -> pd.DataFrame:  # fmt: skip
    """The rows of ``selected`` (``select_top``) in the groups ``by`` whose selection holds at least
    ``min_selection`` rows: the top 10 % the report shows and tests."""
    if selected.empty:
        return selected
    size = selected.groupby(list(by), sort=False)["trial_id"].transform("size")
    return selected[size >= min_selection].reset_index(drop=True)


def trials_for_top(min_selection: int = MIN_SELECTION, fraction: float = TOP_FRACTION) -> int:
    """The fewest trials per cell whose top ``fraction`` holds ``min_selection`` (31 for 4 of 10 %)."""
    n = 1
    while top_count(n, fraction) < min_selection:
        n += 1
    return n


def top_count(n: int, fraction: float = TOP_FRACTION) -> int:
    """How many of n trials form the top ``fraction``: ceil(fraction · n), at least 1 (0 of 0)."""
    if n <= 0:
        return 0
    return max(1, math.ceil(round(fraction * n, 9)))


# ------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------
def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def _best(x: np.ndarray, higher_is_better: bool) -> float:
    if not len(x):
        return float("nan")
    return float(np.max(x) if higher_is_better else np.min(x))


# ------------------------------------------------------------------------------------------------------
# the summary table
# ------------------------------------------------------------------------------------------------------
def solved_rate(statuses: Sequence[str], solved: Sequence[bool]) -> float:
    """Solved trials over trials that trained to an outcome (ok or diverged); NaN when there are none."""
    st = np.asarray(statuses, dtype=object)
    sv = np.asarray(solved, dtype=bool)
    finished = np.isin(st, FINISHED)
    return float(sv[finished].sum() / finished.sum()) if finished.sum() else float("nan")


def solved_counts(solved: Sequence[bool], finished: Sequence[bool]) -> dict[str, Any]:
    """``solved`` (count), ``finished`` (the denominator), ``solved_rate`` and its exact 95 % interval
    (``solved_low``, ``solved_high``; ``statistics.solved_interval``) of the units (trials or
    configurations) that trained to an outcome."""
    done = np.asarray(finished, dtype=bool)
    k, n = int(np.asarray(solved, dtype=bool)[done].sum()), int(done.sum())
    low, high = S.solved_interval(k, n)
    return {"solved": k, "finished": n, "solved_rate": k / n if n else float("nan"), "solved_low": low,
            "solved_high": high}  # fmt: skip


def _cell_row(key: tuple, cell: pd.DataFrame, top: pd.DataFrame | None) -> dict[str, Any]:
    """The summary of one cell's finished trials (``top``: its top 10 %, whose statistics are NaN when it
    holds fewer than ``MIN_SELECTION`` trials; ``top_n`` counts it all the same)."""
    task, length, variant, framework = key
    hib = bool(cell["higher_is_better"].iloc[0])
    x = cell.loc[cell["has_metric"], "test_metric"].to_numpy(float)
    top_n = len(top) if top is not None else 0
    tx = top["test_metric"].to_numpy(float) if top is not None and top_n >= MIN_SELECTION else np.array([])
    params = cell.loc[cell["param_count"] > 0, "param_count"]
    state = cell["state_size"].dropna()
    sps = cell["steps_per_second"].dropna()
    # steps to solve: of the trials that solved (on test), not every trial that met the rule on validation
    steps_to_solve = cell.loc[cell["solved"].astype(bool), "steps_to_solve"].dropna()
    status = cell["status"].value_counts()
    return {
        "task": task,
        "length": int(length),
        "variant": variant,
        "framework": framework,
        "metric": cell["metric"].iloc[0],
        "higher_is_better": hib,
        "baseline_metric": float(cell["baseline_metric"].dropna().iloc[0])
        if cell["baseline_metric"].notna().any()
        else np.nan,
        "trials": len(cell),
        "ok": int(status.get("ok", 0)),
        "diverged": int(status.get("diverged", 0)),
        "failed": int(status.get("failed", 0)),
        "timeout": int(status.get("timeout", 0)),
        "with_metric": len(x),
        **solved_counts(cell["solved"], cell["finished"]),
        "mean": S.mean(x),
        "std": _std(x),
        "median": S.median(x),
        "best": _best(x, hib),
        "top_n": top_n,
        "top_mean": S.mean(tx),
        "top_std": _std(tx),
        "top_median": S.median(tx),
        "top_best": _best(tx, hib),
        "median_steps_to_solve": float(steps_to_solve.median()) if len(steps_to_solve) else np.nan,
        "params": float(params.mean()) if len(params) else np.nan,
        "state": float(state.mean()) if len(state) else np.nan,
        "steps_per_second": float(sps.median()) if len(sps) else np.nan,
    }


def _running_only_row(key: tuple, metadata: Metadata | None) -> dict[str, Any]:
    """The summary of a cell whose trials are all still running: counts of zero, no statistic."""
    task, length, variant, framework = key
    record = (metadata.tasks.get((task, int(length))) if metadata else None)
    nan = float("nan")
    return {
        "task": task, "length": int(length), "variant": variant, "framework": framework,
        "metric": record.metric if record else "metric", "higher_is_better": bool(record and record.higher_is_better),
        "baseline_metric": record.baseline if record and record.baseline is not None else nan,
        **dict.fromkeys(("trials", "ok", "diverged", "failed", "timeout", "with_metric", "solved", "finished",
                         "top_n"), 0),
        **dict.fromkeys(("solved_rate", "solved_low", "solved_high", "mean", "std", "median", "best", "top_mean",
                         "top_std", "top_median", "top_best", "median_steps_to_solve", "params", "state",
                         "steps_per_second"), nan),
    }  # fmt: skip


def summarise(
    trials: pd.DataFrame,
    top: pd.DataFrame,
    comparisons: pd.DataFrame,
    planned: pd.DataFrame | None = None,
    baseline: str | None = None,
    ranks: Mapping[str, int] | None = None,
    running: pd.DataFrame | None = None,
    metadata: Metadata | None = None,
) -> pd.DataFrame:
    """One row per cell: counts, solved rate with its exact interval, test-metric statistics over all
    trials and over the top 10 % (``top``: ``select_top``'s, of any size; its statistics only where it
    holds at least ``MIN_SELECTION``), steps to solve, parameters, speed, and the Holm-adjusted comparison
    with the baseline. ``running`` (``Store.running``): trials being trained, counted per cell in
    ``running`` and in no statistic; a cell with running trials only gets a row of counts (its metric
    from ``metadata``)."""
    top_groups = {k: g for k, g in top.groupby(CELL, sort=True)} if not top.empty else {}
    rows = [_cell_row(key, cell, top_groups.get(key)) for key, cell in trials.groupby(CELL, sort=True)]
    busy = running.groupby(CELL).size() if running is not None and len(running) else pd.Series(dtype=int)
    have = {(r["task"], r["length"], r["variant"], r["framework"]) for r in rows}
    rows += [_running_only_row(key, metadata) for key in busy.index if (key[0], int(key[1]), *key[2:]) not in have]
    for r in rows:
        r["running"] = int(busy.get((r["task"], r["length"], r["variant"], r["framework"]), 0))
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    if planned is not None and not planned.empty:
        counts = planned.groupby(CELL).size().rename("planned").reset_index()
        summary = summary.merge(counts, on=CELL, how="left")
        summary["planned"] = summary["planned"].fillna(summary["trials"]).astype(int)
    for selection, suffix in (("all", ""), ("top", "_top")):
        sub = comparisons[comparisons["selection"] == selection] if not comparisons.empty else comparisons
        cols = {"p": f"p{suffix}", "p_adjusted": f"p_adjusted{suffix}", "direction": f"direction{suffix}"}
        if sub.empty:
            for c in cols.values():
                summary[c] = np.nan if c.startswith("p") else ""
            continue
        summary = summary.merge(sub[[*CELL, *cols]].rename(columns=cols), on=CELL, how="left")
    if baseline is None and not comparisons.empty:
        baseline = comparisons["baseline"].iloc[0]
    for c in ("direction", "direction_top"):
        summary[c] = summary[c].astype(object).where(summary[c].notna(), "")
        if baseline is not None:
            summary.loc[summary["variant"] == baseline, c] = "baseline"
    return sort_cells(summary, baseline, ranks)


def sort_cells(frame: pd.DataFrame, baseline: str | None, ranks: Mapping[str, int] | None = None) -> pd.DataFrame:
    """Task, T, then the variant order (baseline first), then the framework order."""
    if frame.empty:
        return frame
    vrank = {v: i for i, v in enumerate(variant_order(frame["variant"].unique(), baseline, ranks))}
    frank = {f: i for i, f in enumerate(framework_order(frame["framework"].unique()))}
    keyed = frame.assign(_v=frame["variant"].map(vrank), _f=frame["framework"].map(frank))
    return (
        keyed.sort_values(["task", "length", "_v", "_f"], kind="stable")
        .drop(columns=["_v", "_f"])
        .reset_index(drop=True)
    )


# ------------------------------------------------------------------------------------------------------
# dependency length, learning curves, frameworks
# ------------------------------------------------------------------------------------------------------
def dependency_curves(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell: solved rate with its exact interval (``solved_counts``), best and median test metric
    (for plotting against T); ``trials``: every trial of the cell, ``finished``: the solved rate's
    denominator."""
    cols = [*CELL, "solved", "finished", "solved_rate", "solved_low", "solved_high", "best", "median", "trials"]
    rows = []
    for (task, length, variant, framework), cell in trials.groupby(CELL, sort=True):
        x = cell.loc[cell["has_metric"], "test_metric"].to_numpy(float)
        rows.append({"task": task, "length": int(length), "variant": variant, "framework": framework,
                     **solved_counts(cell["solved"], cell["finished"]),
                     "best": _best(x, bool(cell["higher_is_better"].iloc[0])), "median": S.median(x),
                     "trials": len(cell)})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def longest_solved(dependency: pd.DataFrame) -> pd.DataFrame:
    """Per task and variant: the longest T at which some framework's trials solved at least once
    (``reach``, NaN if at none) and the lengths tried."""
    cols = ["task", "variant", "reach", "lengths"]
    if dependency.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (task, variant), d in dependency.groupby(["task", "variant"], sort=True):
        solved = d.loc[d["solved"] > 0, "length"]
        rows.append({"task": task, "variant": variant, "reach": float(solved.max()) if len(solved) else np.nan,
                     "lengths": sorted(int(T) for T in d["length"].unique())})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def outcomes(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per status and variant (a row per pair that occurs): status, variant, trials."""
    if trials.empty:
        return pd.DataFrame(columns=["status", "variant", "trials"])
    return trials.groupby(["status", "variant"], sort=True).size().rename("trials").reset_index()


def learning_curves(curves: pd.DataFrame, top: pd.DataFrame, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """Median and interquartile range of the validation metric against the step, per (task, T, variant),
    over the trials of both frameworks in ``top`` (the shown top 10 %); a (task, T, variant) without any
    there uses all its trials with a test metric in ``trials`` (``selection`` says which: "top" or "all").
    A trial that stopped early (solved) keeps its last value for the later steps of its group (last
    observation carried forward); ``n`` counts trials."""
    cols = ["task", "length", "variant", "selection", "step", "median", "q25", "q75", "n"]
    parts = [top.assign(selection="top")] if len(top) else []
    if trials is not None and len(trials):
        have = set(top[GROUP].itertuples(index=False, name=None)) if len(top) else set()
        rest = trials[trials["has_metric"]]
        rest = rest[[key not in have for key in rest[GROUP].itertuples(index=False, name=None)]]
        parts += [rest.assign(selection="all")] if len(rest) else []
    if curves.empty or not parts:
        return pd.DataFrame(columns=cols)
    chosen = pd.concat(parts, ignore_index=True)
    val = curves[(curves["split"] == "validation") & curves["trial_id"].isin(chosen["trial_id"])]
    val = val.merge(chosen[["trial_id", *GROUP, "selection"]], on="trial_id")
    rows = []
    for (task, length, variant, selection), group in val.groupby([*GROUP, "selection"], sort=True):
        wide = group.pivot_table(index="step", columns="trial_id", values="metric", aggfunc="first").sort_index()
        wide = wide.ffill()
        for step, row in zip(wide.index, wide.to_numpy(float)):
            finite = row[np.isfinite(row)]
            if not len(finite):
                continue
            q25, med, q75 = np.percentile(finite, [25, 50, 75])
            rows.append({"task": task, "length": int(length), "variant": variant, "selection": selection,
                         "step": int(step), "median": float(med), "q25": float(q25), "q75": float(q75),
                         "n": len(finite)})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def speed_table(trials: pd.DataFrame, baseline: str | None = None, ranks: Mapping[str, int] | None = None
                ) -> pd.DataFrame:  # fmt: skip
    """Median training trial-steps per second (a population's steps per second x its members) per task,
    T, variant and framework."""
    cols = [*CELL, "steps_per_second", "n"]
    df = trials.dropna(subset=["steps_per_second"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    out = df.groupby(CELL, sort=True)["steps_per_second"].agg(["median", "size"]).reset_index()
    out = out.rename(columns={"median": "steps_per_second", "size": "n"})
    return sort_cells(out, baseline, ranks)


def speed_ratio(speed: pd.DataFrame) -> dict[str, float]:
    """PyTorch's median trial-steps per second over TensorFlow's, per task, T and variant (``speed_table``'s
    rows): the median ratio, its smallest and largest, and the cells compared; {} without both."""
    if speed.empty or not {"torch", "tf"} <= set(speed["framework"]):
        return {}
    wide = speed.pivot_table(index=GROUP, columns="framework", values="steps_per_second")
    ratio = (wide["torch"] / wide["tf"]).dropna()
    if ratio.empty:
        return {}
    return {"median": float(ratio.median()), "min": float(ratio.min()), "max": float(ratio.max()),
            "cells": len(ratio)}  # fmt: skip


def ranking_scores(configs: pd.DataFrame, fraction: float = TOP_FRACTION,
                   min_selection: int = MIN_SELECTION) -> tuple[pd.DataFrame, str]:  # fmt: skip
    """What the ranking ranks, per (task, T, variant), each configuration counted once (``configs``: one
    row per configuration): the mean test metric of the top ``fraction`` of its configurations by
    validation metric where every such selection holds at least ``min_selection``, else the median test
    metric of all its configurations. Returns (task, length, variant, score, higher_is_better,
    configurations; the score in words)."""
    cols = [*GROUP, "score", "higher_is_better", "configurations"]
    usable = configs[np.isfinite(configs["test_metric"].to_numpy(float))] if len(configs) else configs
    if usable.empty:
        return pd.DataFrame(columns=cols), ""
    groups = usable.groupby(GROUP, sort=True)
    out = groups.agg(higher_is_better=("higher_is_better", "first"), configurations=("test_metric", "size"),
                     score=("test_metric", "median"))  # fmt: skip
    top = select_top(usable, fraction, by=GROUP)
    sizes = top.groupby(GROUP).size() if len(top) else pd.Series(dtype=int)
    if len(sizes) == len(out) and (sizes >= min_selection).all():
        out["score"] = top.groupby(GROUP)["test_metric"].mean()
        words = "top-10 % mean test metric of the configurations"
    else:
        words = "median test metric of the configurations"
    return out.reset_index()[cols], words


FORGET_BIAS = "hp.forget_bias"


def _setting_order(setting: Any) -> tuple[bool, Any]:
    """Numbers first, in increasing order, then named schemes ("chrono") alphabetically."""
    return (isinstance(setting, str), setting if isinstance(setting, str) else float(setting))


def forget_bias_rates(configs: pd.DataFrame) -> pd.DataFrame:
    """Per task and T where the search varied the initial forget-gate bias, per setting: the solved rate
    of the configurations that have it (variants with a forget gate), pooled over those variants, each
    configuration counted once (solved when every framework trial that trained to an outcome solved),
    with its exact interval; ``split``: configurations whose framework trials disagree."""
    cols = ["task", "length", "setting", "solved", "finished", "solved_rate", "solved_low", "solved_high", "split"]
    if configs.empty or FORGET_BIAS not in configs:
        return pd.DataFrame(columns=cols)
    df = configs[configs[FORGET_BIAS].map(S.present) & configs["finished"]]
    rows = []
    for (task, T), group in df.groupby(["task", "length"], sort=True):
        settings = group[FORGET_BIAS].map(lambda v: v if isinstance(v, str) else float(v))
        if settings.nunique() < 2:
            continue  # not varied here: nothing to compare
        for setting in sorted(settings.unique(), key=_setting_order):
            g = group[settings == setting]
            rows.append({"task": task, "length": int(T), "setting": setting,
                         **solved_counts(g["solved"], g["finished"]), "split": int(g["split"].sum())})  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


# ------------------------------------------------------------------------------------------------------
# everything together
# ------------------------------------------------------------------------------------------------------
@dataclass
class Analysis:
    trials: pd.DataFrame
    top: pd.DataFrame
    baseline: str | None
    variants: list[str]
    frameworks: list[str]
    tasks: dict[str, TaskInfo]
    info: dict[str, VariantInfo]
    comparisons: pd.DataFrame
    summary: pd.DataFrame
    ranking: Ranking
    dependency: pd.DataFrame
    learning: pd.DataFrame
    pairs: pd.DataFrame
    speed: pd.DataFrame
    importance: pd.DataFrame
    importance_method: str
    notes: list[str] = field(default_factory=list)
    # one row per configuration, its framework trials pooled (``configurations``)
    configs: pd.DataFrame = field(default_factory=pd.DataFrame)
    framework_tests: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``statistics.framework_tests``
    forget_bias: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``forget_bias_rates``
    reach: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``longest_solved``
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``outcomes``
    speed_ratio: dict[str, float] = field(default_factory=dict)  # ``speed_ratio``
    importance_summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``importance.importance_by_task``
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``verdicts.verdicts``
    marginals: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``marginals.marginal_effects``
    interaction: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``marginals.interaction``
    strongest: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``marginals.strongest_effects``
    # trials being trained when the analysis was made (``Store.running``) and their curves so far: shown
    # as running, never in a statistic
    running: pd.DataFrame = field(default_factory=pd.DataFrame)
    running_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    ranks: dict[str, int] = field(default_factory=dict)  # variant -> catalogue rank, as recorded
    plan: AnalysisPlan = field(default_factory=AnalysisPlan)  # how the comparisons were tested
    seed_noise: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``replicates.seed_noise``, per cell
    seed_noise_by_task: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``replicates.seed_noise_by_task``
    equivalence: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``equivalence.equivalence``
    generalisation: pd.DataFrame = field(default_factory=pd.DataFrame)  # ``generalisation.length_generalisation``

    def lengths(self, task: str) -> list[int]:
        return sorted(int(t) for t in self.trials.loc[self.trials["task"] == task, "length"].unique())

    @property
    def drawn_variants(self) -> list[str]:
        """The variants with finished trials, then those with running trials only (colours follow this)."""
        return self.variants + [v for v in self.info if v not in self.variants]


def _design(trials: pd.DataFrame, baseline: str | None, metadata: Metadata | None,
            running: pd.DataFrame) -> tuple[pd.DataFrame, Metadata, str | None, list[str], list[str]]:  # fmt: skip
    """The prepared trials, the metadata (from the code where None), the baseline, a note on its choice
    and the variants in order: what both ``analyse`` and ``baseline_comparisons`` start from."""
    df = prepare(trials)
    if metadata is None:
        cells = pd.concat([df[["task", "length"]], running[["task", "length"]]]) if len(df) else running
        metadata = from_registry(set(df.get("variant", [])) | set(running["variant"]),
                                 set(zip(cells["task"], cells["length"].astype(int))))  # fmt: skip
    ranks = metadata.ranks()
    base, note = choose_baseline(df["variant"].unique() if len(df) else [], baseline, ranks, metadata.aliases())
    variants = variant_order(df["variant"].unique(), base, ranks) if len(df) else []
    return df, metadata, base, [note] if note else [], variants


def baseline_comparisons(
    trials: pd.DataFrame, baseline: str | None = None, plan: AnalysisPlan | None = None,
    metadata: Metadata | None = None, top_fraction: float = TOP_FRACTION,
) -> pd.DataFrame:  # fmt: skip
    """``analyse(...).comparisons`` alone (``harness.analysis.comparisons.COMPARISON_COLUMNS``), without the rest of
    the report's numbers: what ``rnn-bench export --comparisons`` writes."""
    df, _, base, _, variants = _design(trials, baseline, metadata, pd.DataFrame(columns=CELL))
    return compare_with_baseline(df, select_top(df, top_fraction), base, variants, plan or AnalysisPlan())


#: ``analyse``'s ``start_importance``: (configurations, variant families) -> a function that waits for
#: ``harness.analysis.importance.importance``'s answer (rows, method).
StartImportance = Callable[[pd.DataFrame, dict[str, str]], Callable[[], tuple[pd.DataFrame, str]]]


def _importance_here(configs: pd.DataFrame, families: dict[str, str]) -> Callable[[], tuple[pd.DataFrame, str]]:
    result = hyperparameter_importance(configs, families)
    return lambda: result


def analyse(
    trials: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    baseline: str | None = None,
    planned: pd.DataFrame | None = None,
    plan: AnalysisPlan | None = None,
    top_fraction: float = TOP_FRACTION,
    metadata: Metadata | None = None,
    running: pd.DataFrame | None = None,
    running_curves: pd.DataFrame | None = None,
    test_lengths: pd.DataFrame | None = None,
    start_importance: StartImportance | None = None,
) -> Analysis:
    """All the numbers of the report from the store's trials (and learning curves). ``metadata``: the
    variant and task records (``Store.metadata``) that give names, order and thresholds; None takes
    them from the code here (``harness.store.metadata.from_registry``). ``plan``: the suite's analysis plan (how
    the comparisons with the baseline are tested; None: the defaults). ``running`` (``Store.running``) and
    ``running_curves``: trials still being trained, counted as running and drawn, never in a statistic.
    ``test_lengths`` (``Store.test_lengths_frame``): the metric of trials tested beyond T at each length.
    ``start_importance(configs, families)``: starts the hyperparameter importance elsewhere (a helper
    process) and returns a function that waits for its ``importance`` answer; None: computed here."""
    running = running if running is not None else pd.DataFrame(columns=CELL)
    df, metadata, base, notes, variants = _design(trials, baseline, metadata, running)
    ranks = metadata.ranks()
    selected = select_top(df, top_fraction)
    top = shown_selection(selected)
    plan = plan or AnalysisPlan()
    alpha = plan.alpha
    info = variant_info(variant_order(set(variants) | set(running["variant"]), base, ranks), metadata)
    configs = configurations(df)
    families = {v: i.family for v, i in info.items()}
    importance_result = (start_importance or _importance_here)(configs, families)  # the longest part: first
    comparisons = compare_with_baseline(df, selected, base, variants, plan)
    summary = summarise(df, selected, comparisons, planned, base, ranks, running, metadata)
    scores, score_words = ranking_scores(configs, top_fraction)
    tasks = task_info(df, metadata) if len(df) else {}
    pairs = framework_pairs(df)
    speed = speed_table(df, base, ranks)
    dependency = dependency_curves(df)
    marginals = marginal_effects(configs)
    noise = seed_noise(df) if len(df) else pd.DataFrame()
    imp, method = importance_result()
    return Analysis(
        trials=df,
        top=top,
        baseline=base,
        variants=variants,
        frameworks=framework_order(df["framework"].unique()) if len(df) else [],
        tasks=tasks,
        info=info,
        comparisons=comparisons,
        summary=summary,
        ranking=S.rank_variants(scores, ["task", "length"], variants, alpha, score_words),
        dependency=dependency,
        learning=learning_curves(curves if curves is not None else pd.DataFrame(), top, df),
        pairs=pairs,
        speed=speed,
        importance=imp,
        importance_method=method,
        notes=notes,
        running=running,
        running_curves=running_curves if running_curves is not None else pd.DataFrame(),
        ranks=ranks,
        plan=plan,
        seed_noise=noise,
        seed_noise_by_task=seed_noise_by_task(noise) if len(noise) else pd.DataFrame(),
        equivalence=equivalence(df) if len(df) else pd.DataFrame(),
        configs=configs,
        framework_tests=S.framework_tests(pairs, {t: i.higher_is_better for t, i in tasks.items()}, alpha),
        forget_bias=forget_bias_rates(configs),
        reach=longest_solved(dependency),
        outcomes=outcomes(df),
        speed_ratio=speed_ratio(speed),
        importance_summary=importance_by_task(imp),
        verdicts=verdict_rows(comparisons, framework_order(df["framework"].unique()) if len(df) else [], variants),
        marginals=marginals,
        interaction=interaction(configs),
        strongest=strongest_effects(marginals),
        generalisation=length_generalisation(df, test_lengths),
    )


def generalisation_as_metric(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` (a store's frame) with the generalisation score as ``test_metric`` (a copy): what a plan
    whose ``primary`` is ``"generalisation"`` compares; NaN where a trial has no score."""
    df = trials.copy()
    df["test_metric"] = pd.to_numeric(df["generalisation"], errors="coerce") if "generalisation" in df else np.nan
    return df


def planned_cells(plans: pd.DataFrame) -> pd.DataFrame:
    """The store's plans as one row per planned trial: trial_id and the cell's fields."""
    if plans.empty:
        return pd.DataFrame(columns=["trial_id", *CELL, "suite"])
    rows = []
    for suite, tid, text in plans[["suite", "trial_id", "trial"]].itertuples(index=False):
        t = json.loads(text)
        rows.append(
            {
                "trial_id": tid,
                "task": t["task"],
                "length": int(t["length"]),
                "variant": t["variant"],
                "framework": t["framework"],
                "suite": suite,
            }
        )
    return pd.DataFrame(rows)
