"""From the store's trials to the numbers of a Greff et al. (2015) style comparison (pandas and scipy;
never a framework).

Definitions used throughout (the report's "Method" section repeats them):

* a **cell** is (task, T, variant, framework); a **block** is (task, T, framework): the variants of a
  block are compared with each other;
* the **test metric** of a trial is the task's primary metric on the test set at the best validation
  checkpoint (``trials.test_metric``). A trial that diverged after a finite checkpoint still has one;
  failed and timed-out trials have none and are only counted;
* **solved rate** = solved trials / trials that trained to an outcome (status ok or diverged); failed
  and timed-out trials say nothing about the variant and are excluded from the denominator (and counted);
* **top 10 %**: per cell, the ``ceil(0.1 · n)`` trials (at least one) with the best *validation* metric
  in the metric's direction among the n with a validation and a test metric; ties go to the lower
  validation loss, then to the trial id (deterministic);
* **significance**: Welch's t-test of each variant's test metrics against the baseline variant's in the
  same block, two-sided; the p-values of one block (and one selection: all trials, or top 10 %) are
  Holm-corrected across the variants compared; α = 0.05. When both samples have zero variance the
  t statistic is undefined: p = 0 if the means differ, 1 if they are equal (the test's limit);
* **ranking**: per block, variants are ranked by their top-10 % mean test metric (1 = best, ties
  averaged); the mean rank is over the blocks a variant appears in. Friedman's test and the Nemenyi
  critical difference (Demšar 2006) use the blocks in which every ranked variant appears.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.metadata import Metadata, from_registry
from harness.metadata import variant_order as metadata_order

ALPHA = 0.05
TOP_FRACTION = 0.10
CELL = ["task", "length", "variant", "framework"]
BLOCK = ["task", "length", "framework"]
FINISHED = ("ok", "diverged")  # trained to an outcome: the solved rate's denominator

FRAMEWORK_ORDER = ("torch", "tf")
FRAMEWORK_NAMES = {"torch": "PyTorch", "tf": "TensorFlow"}
#: Protocol settings that change how a trial runs, not what it learns: never "hyperparameters" of fANOVA.
NOT_SEARCHED = ("fused", "xla", "eval_every", "validation_size", "test_size", "time_limit")
MIN_TRIALS_FOR_IMPORTANCE = 10
VARIANT_FACTOR = "hp.variant"  # the pseudo-hyperparameter "variant" in a family's importance


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
    """The store's trials frame with the derived columns the analysis uses (a copy)."""
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
    return df.sort_values([*CELL, "trial_id"], kind="stable").reset_index(drop=True)


def select_top(trials: pd.DataFrame, fraction: float = TOP_FRACTION) -> pd.DataFrame:
    """Per cell, the best ``ceil(fraction · n)`` trials (at least 1) by validation metric in the metric's
    direction, among the n trials that have both a validation and a test metric."""
    if trials.empty:
        return trials.copy()
    usable = trials[
        np.isfinite(trials["val_metric"].to_numpy(float)) & np.isfinite(trials["test_metric"].to_numpy(float))
    ]
    picked = []
    for _, cell in usable.groupby(CELL, sort=True):
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
    return pd.concat(picked).sort_values([*CELL, "trial_id"], kind="stable").reset_index(drop=True)


def top_count(n: int, fraction: float = TOP_FRACTION) -> int:
    """How many of n trials form the top ``fraction``: ceil(fraction · n), at least 1 (0 of 0)."""
    if n <= 0:
        return 0
    return max(1, math.ceil(round(fraction * n, 9)))


# ------------------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WelchResult:
    t: float
    df: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Welch's unequal-variances t-test (two-sided) of mean(a) against mean(b).

    NaN when either sample has fewer than two values. Both variances zero: p = 0 if the means differ,
    else 1 (t = ±inf or 0).
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
    t = diff / math.sqrt(vx + vy)
    dof = (vx + vy) ** 2 / ((vx**2 / (len(x) - 1) if vx else 0.0) + (vy**2 / (len(y) - 1) if vy else 0.0))
    p = float(2 * stats.t.sf(abs(t), dof))
    return WelchResult(float(t), float(dof), min(1.0, p))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input's order; NaNs stay NaN and do not count in m."""
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
        return "not tested"
    if p_adjusted < alpha and diff_in_metric_direction != 0:
        return "better" if diff_in_metric_direction > 0 else "worse"
    return "no significant difference"


def compare_with_baseline(
    trials: pd.DataFrame, top: pd.DataFrame, baseline: str | None, alpha: float = ALPHA,
    ranks: Mapping[str, int] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Welch tests of every variant against the baseline, per block and selection ("all" | "top"),
    Holm-corrected within each (block, selection)."""
    cols = [
        *BLOCK,
        "selection",
        "variant",
        "baseline",
        "n",
        "n_baseline",
        "mean",
        "mean_baseline",
        "median",
        "median_baseline",
        "t",
        "df",
        "p",
        "p_holm",
        "direction",
    ]
    rows: list[dict[str, Any]] = []
    if baseline is None or trials.empty:
        return pd.DataFrame(columns=cols)
    for selection, frame in (("all", trials[trials["has_metric"]]), ("top", top)):
        if frame.empty:
            continue
        for (task, length, framework), block in frame.groupby(BLOCK, sort=True):
            base = block.loc[block["variant"] == baseline, "test_metric"].to_numpy(float)
            sign = 1 if bool(block["higher_is_better"].iloc[0]) else -1
            block_rows = []
            for variant in variant_order(block["variant"].unique(), baseline, ranks):
                if variant == baseline:
                    continue
                x = block.loc[block["variant"] == variant, "test_metric"].to_numpy(float)
                res = welch(x, base)
                block_rows.append(
                    {
                        "task": task,
                        "length": int(length),
                        "framework": framework,
                        "selection": selection,
                        "variant": variant,
                        "baseline": baseline,
                        "n": len(x),
                        "n_baseline": len(base),
                        "mean": _mean(x),
                        "mean_baseline": _mean(base),
                        "median": _median(x),
                        "median_baseline": _median(base),
                        "t": res.t,
                        "df": res.df,
                        "p": res.p,
                        "_sign": sign,
                    }
                )
            adjusted = holm([r["p"] for r in block_rows])
            for r, p_adj in zip(block_rows, adjusted):
                r["p_holm"] = float(p_adj)
                diff = (r["mean"] - r["mean_baseline"]) * r.pop("_sign") if len(base) and r["n"] else 0.0
                r["direction"] = direction(diff if math.isfinite(diff) else 0.0, r["p_holm"], alpha)
            rows.extend(block_rows)
    return pd.DataFrame(rows, columns=cols)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


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


def _cell_row(key: tuple, cell: pd.DataFrame, top: pd.DataFrame | None) -> dict[str, Any]:
    """The summary of one cell's finished trials (``top``: its top 10 %)."""
    task, length, variant, framework = key
    hib = bool(cell["higher_is_better"].iloc[0])
    x = cell.loc[cell["has_metric"], "test_metric"].to_numpy(float)
    tx = top["test_metric"].to_numpy(float) if top is not None else np.array([])
    params = cell.loc[cell["param_count"] > 0, "param_count"]
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
        "solved": int(cell.loc[cell["finished"], "solved"].sum()),
        "solved_rate": solved_rate(cell["status"], cell["solved"]),
        "mean": _mean(x),
        "std": _std(x),
        "median": _median(x),
        "best": _best(x, hib),
        "top_n": len(tx),
        "top_mean": _mean(tx),
        "top_std": _std(tx),
        "top_median": _median(tx),
        "top_best": _best(tx, hib),
        "median_steps_to_solve": float(steps_to_solve.median()) if len(steps_to_solve) else np.nan,
        "params": float(params.mean()) if len(params) else np.nan,
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
        **dict.fromkeys(("trials", "ok", "diverged", "failed", "timeout", "with_metric", "solved", "top_n"), 0),
        **dict.fromkeys(("solved_rate", "mean", "std", "median", "best", "top_mean", "top_std", "top_median",
                         "top_best", "median_steps_to_solve", "params", "steps_per_second"), nan),
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
    """One row per cell: counts, solved rate, test-metric statistics over all trials and the top 10 %,
    steps to solve, parameters, speed, and the Holm-adjusted comparison with the baseline. ``running``
    (``Store.running``): trials being trained, counted per cell in ``running`` and in no statistic; a
    cell with running trials only gets a row of counts (its metric from ``metadata``)."""
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
        cols = {"p": f"p{suffix}", "p_holm": f"p_holm{suffix}", "direction": f"direction{suffix}"}
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
# ranking across tasks
# ------------------------------------------------------------------------------------------------------
@dataclass
class Ranking:
    table: pd.DataFrame  # variant, mean_rank, blocks, wins
    ranks: pd.DataFrame  # block x variant ranks (NaN where absent)
    complete_blocks: int = 0
    friedman_p: float = float("nan")
    critical_difference: float = float("nan")


def rank_variants(
    summary: pd.DataFrame, baseline: str | None = None, score: str = "top_mean", alpha: float = ALPHA,
    ranks: Mapping[str, int] | None = None,
) -> Ranking:  # fmt: skip
    """Mean rank per variant over the blocks (task, T, framework), by ``score`` in the metric's direction."""
    empty = Ranking(pd.DataFrame(columns=["variant", "mean_rank", "blocks", "wins"]), pd.DataFrame())
    if summary.empty:
        return empty
    from scipy import stats

    rank_rows = {}
    for key, block in summary.groupby(BLOCK, sort=True):
        block = block[np.isfinite(block[score].to_numpy(float))]
        if len(block) < 2:
            continue
        sign = 1 if bool(block["higher_is_better"].iloc[0]) else -1
        rank_rows[key] = dict(zip(block["variant"], stats.rankdata(-sign * block[score].to_numpy(float),
                                                                  method="average")))  # fmt: skip
    if not rank_rows:
        return empty
    wide = pd.DataFrame.from_dict(rank_rows, orient="index")
    wide = wide[variant_order(wide.columns, baseline, ranks)]
    wide.index = pd.MultiIndex.from_tuples(wide.index, names=BLOCK)
    table = (
        pd.DataFrame(
            {
                "variant": wide.columns,
                "mean_rank": wide.mean(axis=0).to_numpy(),
                "blocks": wide.notna().sum(axis=0).to_numpy(),
                "wins": (wide == 1).sum(axis=0).to_numpy(),
            }
        )
        .sort_values(["mean_rank", "variant"], kind="stable")
        .reset_index(drop=True)
    )
    complete = wide.dropna(axis=0, how="any")
    result = Ranking(table, wide, len(complete))
    k = wide.shape[1]
    if k >= 3 and len(complete) >= 2:
        # re-rank within complete blocks only (they already are complete, so the ranks stand)
        try:
            result.friedman_p = float(stats.friedmanchisquare(*[complete[c].to_numpy() for c in complete]).pvalue)
        except ValueError:
            pass
    if k >= 2 and len(complete) >= 1:
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
        result.critical_difference = float(q * math.sqrt(k * (k + 1) / (6 * len(complete))))
    return result


# ------------------------------------------------------------------------------------------------------
# dependency length, learning curves, frameworks
# ------------------------------------------------------------------------------------------------------
def dependency_curves(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell: solved rate, best and median test metric (for plotting against T)."""
    rows = []
    for (task, length, variant, framework), cell in trials.groupby(CELL, sort=True):
        x = cell.loc[cell["has_metric"], "test_metric"].to_numpy(float)
        rows.append(
            {
                "task": task,
                "length": int(length),
                "variant": variant,
                "framework": framework,
                "solved_rate": solved_rate(cell["status"], cell["solved"]),
                "best": _best(x, bool(cell["higher_is_better"].iloc[0])),
                "median": _median(x),
                "n": len(cell),
            }
        )
    return pd.DataFrame(rows, columns=[*CELL, "solved_rate", "best", "median", "n"])


def learning_curves(curves: pd.DataFrame, top: pd.DataFrame) -> pd.DataFrame:
    """Median and interquartile range of the validation metric against the step, per (task, T, variant),
    over the top-10 % trials of both frameworks. A trial that stopped early (solved) keeps its last
    value for the later steps of its group (last observation carried forward)."""
    cols = ["task", "length", "variant", "step", "median", "q25", "q75", "n"]
    if curves.empty or top.empty:
        return pd.DataFrame(columns=cols)
    val = curves[(curves["split"] == "validation") & curves["trial_id"].isin(top["trial_id"])]
    val = val.merge(top[["trial_id", "task", "length", "variant"]], on="trial_id")
    rows = []
    for (task, length, variant), group in val.groupby(["task", "length", "variant"], sort=True):
        wide = group.pivot_table(index="step", columns="trial_id", values="metric", aggfunc="first").sort_index()
        wide = wide.ffill()
        values = wide.to_numpy(float)
        for step, row in zip(wide.index, values):
            finite = row[np.isfinite(row)]
            if not len(finite):
                continue
            q25, med, q75 = np.percentile(finite, [25, 50, 75])
            rows.append(
                {
                    "task": task,
                    "length": int(length),
                    "variant": variant,
                    "step": int(step),
                    "median": float(med),
                    "q25": float(q25),
                    "q75": float(q75),
                    "n": len(finite),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def hparam_key(hparams: str) -> str:
    """The hyperparameters of a trial without run-only settings (for pairing across frameworks)."""
    hp = json.loads(hparams)
    return json.dumps({k: v for k, v in hp.items() if k not in ("fused", "xla")}, sort_keys=True)


def framework_pairs(trials: pd.DataFrame) -> pd.DataFrame:
    """The same configuration (task, T, variant, hyperparameters, seed) run in PyTorch and in TensorFlow:
    one row per pair with both test metrics."""
    cols = ["task", "length", "variant", "seed", "torch", "tf"]
    if trials.empty or not {"torch", "tf"} <= set(trials["framework"]):
        return pd.DataFrame(columns=cols)
    df = trials[trials["has_metric"]].assign(_hp=trials["hparams"].map(hparam_key))
    wide = df.pivot_table(
        index=["task", "length", "variant", "seed", "_hp"], columns="framework", values="test_metric", aggfunc="first"
    )
    if not {"torch", "tf"} <= set(wide.columns):
        return pd.DataFrame(columns=cols)
    wide = wide.dropna(subset=["torch", "tf"]).reset_index()
    return wide[cols].sort_values(cols[:4], kind="stable").reset_index(drop=True)


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


# ------------------------------------------------------------------------------------------------------
# hyperparameter importance
# ------------------------------------------------------------------------------------------------------
def searched_hparams(frame: pd.DataFrame) -> list[str]:
    """The ``hp.*`` columns that vary within ``frame`` (the searched hyperparameters)."""
    out = []
    for col in sorted(c for c in frame.columns if c.startswith("hp.")):
        name = col[3:]
        if name in NOT_SEARCHED:
            continue
        values = frame[col].dropna().map(_hashable)
        if values.nunique() > 1:
            out.append(col)
    return out


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def fanova_available() -> bool:
    try:
        import sklearn  # noqa: F401  (optuna's fANOVA needs it)
    except ImportError:
        return False
    return True


def importance(
    trials: pd.DataFrame,
    families: dict[str, str],
    min_trials: int = MIN_TRIALS_FOR_IMPORTANCE,
    method: str | None = None,
) -> tuple[pd.DataFrame, str]:
    """Fraction of the test metric's variance explained by each searched hyperparameter, per task, T
    and variant family. ``method`` "fanova" (Optuna's ``FanovaImportanceEvaluator``, seeded; needs
    scikit-learn) or "eta2" (one-way ANOVA η² per hyperparameter, numbers binned by quartiles, the
    fallback); None picks fANOVA when scikit-learn is installed. Returns (rows, method used).

    Where a family has several variants, "variant" is one of the factors; a hyperparameter that some of
    them lack (nfg has no forget-gate bias) takes the category "n/a" there."""
    method = method or ("fanova" if fanova_available() else "eta2")
    cols = ["task", "length", "family", "hyperparameter", "importance", "trials"]
    rows = []
    if trials.empty:
        return pd.DataFrame(columns=cols), method
    df = trials[trials["has_metric"]].assign(family=trials["variant"].map(lambda v: families.get(v, "other")))
    for (task, length, family), group in df.groupby(["task", "length", "family"], sort=True):
        if len(group) < min_trials:
            continue
        params = searched_hparams(group)
        if not params:
            continue
        if group["variant"].nunique() > 1:  # the variant itself is a factor of a family's variance
            group = group.assign(**{VARIANT_FACTOR: group["variant"].astype(str)})
            params = [VARIANT_FACTOR, *params]
        group = group.sort_values("trial_id", kind="stable")
        y = group["test_metric"].to_numpy(float)
        if np.var(y) == 0:
            continue
        scores = _fanova(group, params, y) if method == "fanova" else _eta_squared(group, params, y)
        for name, value in scores.items():
            rows.append(
                {
                    "task": task,
                    "length": int(length),
                    "family": family,
                    "hyperparameter": name[3:],
                    "importance": float(value),
                    "trials": len(group),
                }
            )
    return pd.DataFrame(rows, columns=cols), method


MISSING = "n/a"  # a hyperparameter that some variants of a family do not have (nfg has no forget bias)


def _column(raw: pd.Series) -> tuple[list[Any], bool]:
    """(values, numeric): a column with a missing or non-numeric value becomes categories (strings)."""
    values = raw.tolist()
    if all(_present(v) and _is_number(v) for v in values):
        return values, True
    return [str(v) if _present(v) else MISSING for v in values], False


def _distribution(values: list[Any], numeric: bool):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if numeric:
        lo, hi = float(min(values)), float(max(values))
        if all(isinstance(v, (int, np.integer)) for v in values):
            return IntDistribution(int(lo), int(hi), log=lo > 0 and hi / lo >= 8), int
        return FloatDistribution(lo, hi, log=lo > 0 and hi / lo >= 8), float
    return CategoricalDistribution(sorted(set(values))), str


def _fanova(group: pd.DataFrame, params: list[str], y: np.ndarray) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    columns, dists = {}, {}
    for col in params:
        values, numeric = _column(group[col])
        columns[col] = values
        dists[col] = _distribution(values, numeric)
    study = optuna.create_study(direction="minimize")
    made = [
        optuna.trial.create_trial(
            params={c: dists[c][1](columns[c][i]) for c in params},
            distributions={c: dists[c][0] for c in params},
            value=float(value),
        )
        for i, value in enumerate(y)
    ]
    if len(made) < 2:
        return {}
    study.add_trials(made)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "normalize is experimental": we want raw fractions of variance
        scores = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), normalize=False)
    return {c: float(scores.get(c, 0.0)) for c in params}


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _eta_squared(group: pd.DataFrame, params: list[str], y: np.ndarray) -> dict[str, float]:
    total = float(np.sum((y - y.mean()) ** 2))
    out = {}
    for col in params:
        values, numeric = _column(group[col])
        if numeric and len(set(values)) > 4:
            x = np.asarray(values, dtype=float)
            x = np.log(x) if (x > 0).all() else x
            labels = pd.qcut(x, 4, labels=False, duplicates="drop")
            labels = np.asarray(labels)
        else:
            labels = np.array([str(v) for v in values], dtype=object)
        between = 0.0
        for lab in pd.unique(labels):
            yy = y[labels == lab]
            between += len(yy) * (yy.mean() - y.mean()) ** 2
        out[col] = between / total if total > 0 else 0.0
    return out


def binned_median(x: np.ndarray, y: np.ndarray, bins: int = 8, log: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, median of y per bin) of a marginal plot; few distinct x values: one bin each."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if not len(x):
        return np.array([]), np.array([])
    distinct = np.unique(x)
    if len(distinct) <= bins:
        return distinct, np.array([np.median(y[x == v]) for v in distinct])
    use_log = log and bool((x > 0).all())
    tx = np.log10(x) if use_log else x
    edges = np.linspace(tx.min(), tx.max(), bins + 1)
    idx = np.clip(np.digitize(tx, edges[1:-1]), 0, bins - 1)
    centres, medians = [], []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            c = (edges[b] + edges[b + 1]) / 2
            centres.append(10**c if use_log else c)
            medians.append(np.median(y[sel]))
    return np.array(centres), np.array(medians)


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
    # trials being trained when the analysis was made (``Store.running``) and their curves so far: shown
    # as running, never in a statistic
    running: pd.DataFrame = field(default_factory=pd.DataFrame)
    running_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    ranks: dict[str, int] = field(default_factory=dict)  # variant -> catalogue rank, as recorded

    def lengths(self, task: str) -> list[int]:
        return sorted(int(t) for t in self.trials.loc[self.trials["task"] == task, "length"].unique())

    @property
    def drawn_variants(self) -> list[str]:
        """The variants with finished trials, then those with running trials only (colours follow this)."""
        return self.variants + [v for v in self.info if v not in self.variants]


def analyse(
    trials: pd.DataFrame,
    curves: pd.DataFrame | None = None,
    baseline: str | None = None,
    planned: pd.DataFrame | None = None,
    alpha: float = ALPHA,
    top_fraction: float = TOP_FRACTION,
    metadata: Metadata | None = None,
    running: pd.DataFrame | None = None,
    running_curves: pd.DataFrame | None = None,
) -> Analysis:
    """All the numbers of the report from the store's trials (and learning curves). ``metadata``: the
    variant and task records (``Store.metadata``) that give names, order and thresholds; None takes
    them from the code here (``harness.metadata.from_registry``). ``running`` (``Store.running``) and
    ``running_curves``: trials still being trained, counted as running and drawn, never in a statistic."""
    df = prepare(trials)
    running = running if running is not None else pd.DataFrame(columns=CELL)
    if metadata is None:
        cells = pd.concat([df[["task", "length"]], running[["task", "length"]]]) if len(df) else running
        metadata = from_registry(set(df.get("variant", [])) | set(running["variant"]),
                                 set(zip(cells["task"], cells["length"].astype(int))))  # fmt: skip
    ranks = metadata.ranks()
    base, note = choose_baseline(df["variant"].unique() if len(df) else [], baseline, ranks, metadata.aliases())
    notes = [note] if note else []
    top = select_top(df, top_fraction)
    comparisons = compare_with_baseline(df, top, base, alpha, ranks)
    summary = summarise(df, top, comparisons, planned, base, ranks, running, metadata)
    variants = variant_order(df["variant"].unique(), base, ranks) if len(df) else []
    info = variant_info(variant_order(set(variants) | set(running["variant"]), base, ranks), metadata)
    imp, method = importance(df, {v: i.family for v, i in info.items()})
    return Analysis(
        trials=df,
        top=top,
        baseline=base,
        variants=variants,
        frameworks=framework_order(df["framework"].unique()) if len(df) else [],
        tasks=task_info(df, metadata) if len(df) else {},
        info=info,
        comparisons=comparisons,
        summary=summary,
        ranking=rank_variants(summary, base, ranks=ranks),
        dependency=dependency_curves(df),
        learning=learning_curves(curves if curves is not None else pd.DataFrame(), top),
        pairs=framework_pairs(df),
        speed=speed_table(df, base, ranks),
        importance=imp,
        importance_method=method,
        notes=notes,
        running=running,
        running_curves=running_curves if running_curves is not None else pd.DataFrame(),
        ranks=ranks,
    )


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
