"""Every variant against the baseline, as a study's analysis plan (``harness.suites.analysis_plan``) says.

The design: within a block (task, T, framework) every variant trains on the same configurations, the
k-th random-search draw of that task and T with its replicate seed, so a variant's trial and the
baseline's trial of one seed form a **pair** (same learning rate, hidden size and data stream; a variant
without a searched hyperparameter, such as ``nfg`` without a forget-gate bias, pairs on the ones it has).

For each comparison (variant, block, selection) this module computes, whatever the plan:

* the metric tests: Wilcoxon signed-rank on the pairs (``wilcoxon``; paired designs only), Mann-Whitney U
  (``mannwhitney``), Welch's t-test (``welch``);
* the solved tests: McNemar's exact test on the pairs (``mcnemar``; paired designs only), Fisher's exact
  test on the counts (``fisher``);
* the effects: the difference in solved rate with its Newcombe interval (paired or not), and the metric's
  Hodges-Lehmann shift with a bootstrap interval (``harness.analysis.statistics``);
* each test's p corrected over its family (the plan's ``family`` and ``correction``), and its verdict.

The plan's ``primary`` outcome and ``test`` name the **primary** test, whose corrected p and verdict are
the comparison's (``test``, ``p``, ``p_adjusted``, ``direction``). The **alternatives** are the other
tests that apply to the design (paired: Wilcoxon, Mann-Whitney, Welch, McNemar; unpaired: Mann-Whitney,
Welch, Fisher), the primary left out; ``agree`` counts those whose verdict is the primary's and
``robust`` says all of them do. For a null verdict, ``detectable`` is the smallest difference in solved
rate the design's solved test detects with the plan's power at the strictest threshold of its family
(alpha / m; exact, ``harness.analysis.power``), so "no significant difference" reads "no difference larger than
this"; NaN where no difference reaches that power.

Pairs are matched by seed within the block. They are used when each side's seeds are unique and at least
two are shared; otherwise (hand-made data, a seed on one side only) the comparison is unpaired and
``paired`` says so. The top-10 % selection is never paired (each variant's best trials are different
configurations): its primary test is the unpaired counterpart, and it is a family of its own.

The unit is the **configuration**. With replicates (several seeds per configuration) a configuration's
trials share its hyperparameters and whatever the variant does at them, so they are not independent:
the metric tests and the shift take one value per configuration (the paired tests its pairs' mean
difference, the unpaired ones each side's mean), and McNemar becomes its exact sign-flip generalisation
over the configurations' count differences (``harness.analysis.statistics.clustered_sign_test``), Fisher's its exact
permutation generalisation over the configurations' solved counts (``clustered_fisher_test``); each is
the classical test where every configuration has one trial. The solved-rate intervals still count
trials, and are narrower than they should be where replicates correlate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import statistics as S
from harness.analysis.power import detectable_difference
from harness.suites.analysis_plan import AnalysisPlan
from harness.suites.suite import split_seed

BLOCK = ["task", "length", "framework"]
METRIC_TESTS = ("wilcoxon", "mannwhitney", "welch")
SOLVED_TESTS = ("mcnemar", "fisher")
TESTS = (*METRIC_TESTS, *SOLVED_TESTS)
TEST_NAMES = {"wilcoxon": "Wilcoxon signed-rank (paired)", "mannwhitney": "Mann-Whitney U",
              "welch": "Welch's t", "mcnemar": "McNemar exact (paired)", "fisher": "Fisher exact"}  # fmt: skip
#: the tests' names where space is short (a table cell listing the alternatives' verdicts)
TEST_SHORT_NAMES = {"wilcoxon": "Wilcoxon", "mannwhitney": "Mann-Whitney", "welch": "Welch", "mcnemar": "McNemar",
                    "fisher": "Fisher"}  # fmt: skip

COMPARISON_COLUMNS = [
    "task", "length", "framework", "selection", "variant", "baseline", "paired", "n", "n_baseline", "pairs",
    "configurations", "units", "units_baseline",
    "mean", "mean_baseline", "median", "median_baseline", "solved", "finished", "solved_baseline",
    "finished_baseline", "solved_difference", "solved_difference_low", "solved_difference_high", "shift",
    "shift_low", "shift_high", "t", "df", *[f"p_{t}" for t in TESTS], *[f"p_adjusted_{t}" for t in TESTS],
    *[f"direction_{t}" for t in TESTS], "test", "p", "p_adjusted", "direction", "alternatives", "agree",
    "robust", "family_size", "detectable",
]  # fmt: skip


def primary_test(plan: AnalysisPlan, paired: bool) -> str:
    """The test that gives a comparison's verdict under ``plan`` (the unpaired one where pairs are missing)."""
    if plan.primary == "solved":
        return "mcnemar" if plan.test == "paired" and paired else "fisher"
    if plan.test == "welch":
        return "welch"
    return "wilcoxon" if plan.test == "paired" and paired else "mannwhitney"


def alternative_tests(primary: str, paired: bool) -> list[str]:
    """The design's other tests: paired, Wilcoxon, Mann-Whitney, Welch and McNemar; unpaired, Mann-Whitney,
    Welch and Fisher; the primary left out."""
    design = ["wilcoxon", "mannwhitney", "welch", "mcnemar"] if paired else ["mannwhitney", "welch", "fisher"]
    return [t for t in design if t != primary]


def compare_with_baseline(
    trials: pd.DataFrame, selected: pd.DataFrame, baseline: str | None, order: Sequence[str] = (),
    plan: AnalysisPlan | None = None, min_selection: int = S.MIN_SELECTION, intervals: bool = True,
) -> pd.DataFrame:  # fmt: skip
    """Every variant against ``baseline`` per block and selection: "all" (``trials``, the frame of
    ``harness.analysis.study.prepare``) and "top" (``selected``, each cell's top 10 %). A top-10 % pair with under
    ``min_selection`` units on a side (``selection_units``) is not tested (``TOO_FEW_SELECTED``) and not counted
    in its family.
    ``order``: the variants' order (rows follow it; others after, by id). ``intervals=False`` leaves out
    the shift's bootstrap interval (its estimate stays; a simulation that needs only the verdicts,
    ``harness.analysis.simulated_studies``, runs twice as fast). Columns: ``COMPARISON_COLUMNS``."""
    plan = plan or AnalysisPlan()
    if baseline is None or trials.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rank = {v: i for i, v in enumerate(order)}
    rows: list[dict[str, Any]] = []
    for selection, frame in (("all", trials[trials["finished"] | trials["has_metric"]]), ("top", selected)):
        if frame.empty:
            continue
        for (task, length, framework), block in frame.groupby(BLOCK, sort=True):
            base = block[block["variant"] == baseline]
            others = sorted(set(block["variant"]) - {baseline}, key=lambda v: (rank.get(v, len(rank)), v))
            for variant in others:
                x = block[block["variant"] == variant]
                row = {"task": task, "length": int(length), "framework": framework, "selection": selection,
                       "variant": variant, "baseline": baseline}  # fmt: skip
                too_few = selection == "top" and selection_units(x, base) < min_selection
                row.update(_one_comparison(x, base, plan, pairable=selection == "all", skip_tests=too_few,
                                           resamples=S.BOOTSTRAP_RESAMPLES if intervals else 0))
                row["_too_few"] = too_few
                rows.append(row)
    if not rows:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    out = pd.DataFrame(rows)
    out = _correct(out, plan)
    out = _verdicts(out, plan)
    out.loc[out["_too_few"], "direction"] = S.TOO_FEW_SELECTED
    return out.drop(columns="_too_few").reindex(columns=COMPARISON_COLUMNS)


def _pairs(x: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame | None:
    """The variant's and the baseline's trials matched by seed (columns ``*_x``, ``*_b``), or None when the
    seeds do not identify trials (repeated on a side) or fewer than two are shared."""
    if "seed" not in x or x["seed"].duplicated().any() or base["seed"].duplicated().any():
        return None
    keep = ["seed", "test_metric", "solved", "finished", "has_metric"]
    pairs = x[keep].merge(base[keep], on="seed", suffixes=("_x", "_b"))
    return pairs if len(pairs) >= 2 else None


def _configuration_means(pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per configuration k (the seed's search index, ``split_seed``), the mean test metric of its pairs'
    variant and baseline trials: one unit per configuration however many replicates it has."""
    means = pairs.groupby(_configuration(pairs["seed"]), sort=True)[["test_metric_x", "test_metric_b"]].mean()
    return means["test_metric_x"].to_numpy(float), means["test_metric_b"].to_numpy(float)


def _configuration(seeds: Any) -> np.ndarray:
    """The configuration k (``split_seed``) of each seed: what a trial shares with its replicates."""
    return np.array([split_seed(int(seed))[0] for seed in seeds], dtype=np.int64)


def _by_configuration(x: pd.DataFrame, base: pd.DataFrame) -> bool:
    """Whether the comparison's units are configurations: the seeds identify the trials on both sides (no
    side without seeds or with a seed repeated, as in hand-made data, where each trial is its own unit).
    Decided once per comparison, so that both sides are counted in the same unit."""
    return all("seed" in side and not side["seed"].duplicated().any() for side in (x, base))


def _unit_metric(frame: pd.DataFrame, by_configuration: bool) -> np.ndarray:
    """The test metric with one value per configuration, the mean of its replicates' trials (each trial's
    own value where the units are trials): the unit of the unpaired metric tests, as of the paired one."""
    have = frame[frame["has_metric"]]
    if not by_configuration or have.empty:
        return have["test_metric"].to_numpy(float)
    return have.groupby(_configuration(have["seed"]), sort=True)["test_metric"].mean().to_numpy(float)


def _unit_solved(frame: pd.DataFrame, by_configuration: bool) -> tuple[np.ndarray, np.ndarray]:
    """(solved count, finished trials) per configuration, or per trial where the units are trials: the
    units of the unpaired solved test."""
    done = frame[frame["finished"]]
    if not by_configuration or done.empty:
        return done["solved"].to_numpy(np.int64), np.ones(len(done), np.int64)
    per = done.groupby(_configuration(done["seed"]), sort=True)["solved"].agg(["sum", "size"])
    return per["sum"].to_numpy(np.int64), per["size"].to_numpy(np.int64)


def selection_units(x: pd.DataFrame, base: pd.DataFrame) -> int:
    """The smaller side's count of units with a test metric: what ``min_selection`` is held against (a
    top-10 % selection can hold two replicates of one configuration, which count once)."""
    by = _by_configuration(x, base)
    return min(len(_unit_metric(x, by)), len(_unit_metric(base, by)))


def _one_comparison(x: pd.DataFrame, base: pd.DataFrame, plan: AnalysisPlan, pairable: bool,
                    skip_tests: bool, resamples: int) -> dict[str, Any]:  # fmt: skip
    """The counts, effects and raw p-values of one comparison (x: the variant's trials, base: the
    baseline's). The metric's sign is the task's: effects stay in metric units (x − baseline)."""
    mx, mb = _unit_metric(x, False), _unit_metric(base, False)  # every trial: the descriptive columns
    fx, fb = x[x["finished"]], base[base["finished"]]
    row: dict[str, Any] = {
        "n": len(mx), "n_baseline": len(mb), "mean": S.mean(mx), "mean_baseline": S.mean(mb),
        "median": S.median(mx), "median_baseline": S.median(mb),
        "solved": int(fx["solved"].sum()), "finished": len(fx), "solved_baseline": int(fb["solved"].sum()),
        "finished_baseline": len(fb),
        "_sign": 1 if bool(pd.concat([base, x])["higher_is_better"].iloc[0]) else -1,  # a side may be empty
    }  # fmt: skip
    pairs = _pairs(x, base) if pairable and plan.test == "paired" else None
    row["paired"] = pairs is not None
    metric_pairs = pairs[pairs["has_metric_x"] & pairs["has_metric_b"]] if pairs is not None else None
    solved_pairs = pairs[pairs["finished_x"] & pairs["finished_b"]] if pairs is not None else None
    row["pairs"] = len(metric_pairs) if metric_pairs is not None else 0
    # a configuration's replicate pairs share its hyperparameters (and any variant x configuration effect):
    # the metric's paired test and shift take one unit per configuration, its pairs' means
    cx, cb = _configuration_means(metric_pairs) if metric_pairs is not None else (None, None)
    row["configurations"] = len(cx) if cx is not None else 0
    # the unpaired tests take the same unit: each side's configuration means and solved counts
    by = _by_configuration(x, base)
    ux, ub = _unit_metric(x, by), _unit_metric(base, by)
    (sx, nx), (sb, nb) = _unit_solved(x, by), _unit_solved(base, by)
    row["units"], row["units_baseline"] = len(ux), len(ub)
    row["solved_units"] = len(set(_configuration(solved_pairs["seed"]))) if solved_pairs is not None else 0
    row["solved_units_x"], row["solved_units_b"] = len(sx), len(sb)
    welch = S.welch(ux, ub)
    row["t"], row["df"] = welch.t, welch.df
    nan = float("nan")
    p = dict.fromkeys(TESTS, nan)
    if not skip_tests:
        p["welch"], p["mannwhitney"] = welch.p, S.rank_test(ux, ub)
        p["fisher"] = (S.fisher_test(row["solved"], row["finished"], row["solved_baseline"], row["finished_baseline"])
                       if (nx == 1).all() and (nb == 1).all()  # one trial per unit: the classical test
                       else S.clustered_fisher_test(sx, sb, nx, nb))  # fmt: skip
        if pairs is not None:
            p["wilcoxon"] = S.signed_rank_test(cx - cb)
            p["mcnemar"] = S.mcnemar_test(solved_pairs["solved_x"], solved_pairs["solved_b"],
                                          _configuration(solved_pairs["seed"]))  # fmt: skip
    row.update({f"p_{t}": v for t, v in p.items()})
    if pairs is not None:
        solved = S.paired_solved_difference(solved_pairs["solved_x"], solved_pairs["solved_b"])
        metric = S.shift(cx, cb, paired=True, resamples=resamples)
    else:
        solved = S.solved_difference(row["solved"], row["finished"], row["solved_baseline"], row["finished_baseline"])
        metric = S.shift(ux, ub, paired=False, resamples=resamples)
    row.update(solved_difference=solved.estimate, solved_difference_low=solved.low,
               solved_difference_high=solved.high, shift=metric.estimate, shift_low=metric.low,
               shift_high=metric.high)  # fmt: skip
    row["_mean_shift"] = S.mean(ux) - S.mean(ub)  # NaN where a side is empty
    row["_unpaired_shift"] = S.hodges_lehmann(ux, ub) if pairs is not None else metric.estimate
    return row


def _family_keys(plan: AnalysisPlan) -> list[str]:
    """The columns that name a comparison's family: per framework and selection ("study"), or per block
    and selection ("block")."""
    return ["framework", "selection"] if plan.family == "study" else [*BLOCK, "selection"]


def _correct(out: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    """Each test's p corrected over the comparisons of its family where that test ran (``p_adjusted_*``,
    for the alternatives' verdicts)."""
    keys = _family_keys(plan)
    out = out.copy()
    for t in TESTS:
        out[f"p_adjusted_{t}"] = np.nan
    for _, family in out.groupby(keys, sort=False):
        for t in TESTS:
            out.loc[family.index, f"p_adjusted_{t}"] = S.correct(family[f"p_{t}"].to_numpy(float), plan.correction)
    return out


def _verdicts(out: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    """Each test's verdict in the metric's direction, the primary test's as the comparison's, agreement
    with the alternatives, and the detectable difference of a null verdict."""
    keys = _family_keys(plan)
    effect_of = {"wilcoxon": "shift", "mannwhitney": "_unpaired_shift", "welch": "_mean_shift",
                 "mcnemar": "solved_difference", "fisher": "solved_difference"}  # fmt: skip
    for t in TESTS:
        sign = out["_sign"] if t in METRIC_TESTS else 1
        effect = (out[effect_of[t]] * sign).fillna(0.0)
        out[f"direction_{t}"] = [S.direction(e, p, plan.alpha) for e, p in zip(effect, out[f"p_adjusted_{t}"])]
    primary = [primary_test(plan, bool(paired)) if sel == "all" else primary_test(plan, False)
               for paired, sel in zip(out["paired"], out["selection"])]  # fmt: skip
    out["test"] = primary
    out["p"] = [row[f"p_{t}"] for t, (_, row) in zip(primary, out.iterrows())]
    # the primary p-values are corrected together, one family whatever test each comparison's design
    # allowed (a family can mix paired and unpaired comparisons)
    out["p_adjusted"] = np.nan
    for _, family in out.groupby(keys, sort=False):
        out.loc[family.index, "p_adjusted"] = S.correct(family["p"].to_numpy(float), plan.correction)
    primary_effect = [row[effect_of[t]] * (row["_sign"] if t in METRIC_TESTS else 1)
                      for t, (_, row) in zip(primary, out.iterrows())]  # fmt: skip
    out["direction"] = [S.direction(0.0 if pd.isna(e) else e, p, plan.alpha)
                        for e, p in zip(primary_effect, out["p_adjusted"])]  # fmt: skip
    alternatives, agree = [], []
    for t, (_, row) in zip(primary, out.iterrows()):
        alts = [a for a in alternative_tests(t, bool(row["paired"])) if math.isfinite(row[f"p_{a}"])]
        alternatives.append(len(alts))
        agree.append(sum(row[f"direction_{a}"] == row["direction"] for a in alts))
    out["alternatives"], out["agree"] = alternatives, agree
    tested = out["direction"] != S.NOT_TESTED
    out["robust"] = tested & (out["agree"] == out["alternatives"])
    m = out.assign(_ok=np.isfinite(out["p"].to_numpy(float))).groupby(keys, sort=False)["_ok"].transform("sum")
    out["family_size"] = m.astype(int)
    out["detectable"] = [_detectable(r, plan) if r.direction == S.SAME else float("nan")
                         for r in out.itertuples(index=False)]  # fmt: skip
    return out.drop(columns=["_sign", "_mean_shift", "_unpaired_shift", "solved_units", "solved_units_x",
                             "solved_units_b"])


def _detectable(r: Any, plan: AnalysisPlan) -> float:
    """A null verdict's detectable difference in solved rate (``harness.analysis.power``) at alpha / m: McNemar's
    where the comparison is paired, else Fisher's, each over the comparison's units. With replicates the
    units are configurations, and it is computed as if each were one pair (or one trial): a
    configuration's replicates add less than independent trials would, so this errs on the cautious side
    (``tests/test_simulated_studies.py`` checks the promise on replicated studies)."""
    if not r.finished or not r.finished_baseline:
        return float("nan")
    alpha, rate = plan.alpha / max(1, r.family_size), r.solved_baseline / r.finished_baseline
    if r.paired:  # the configurations with a pair that trained to an outcome on both sides
        return detectable_difference(rate, r.solved_units, r.solved_units, alpha, plan.power, paired=True)
    return detectable_difference(rate, r.solved_units_x, r.solved_units_b, alpha, plan.power)
