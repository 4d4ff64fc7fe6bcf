"""Greff et al.'s headline in one table: for each variant, task and T, whether it is significantly worse,
better or not different from the baseline variant in each framework, and whether the frameworks agree.

No new test: the verdicts are those of ``harness.analysis.comparisons.compare_with_baseline`` on all trials (the
suite's primary test, corrected as its analysis plan says); this module only lays them side by side per
framework, with each one's effect sizes and whether the alternative tests agree (``robust``). Two
frameworks **agree** when both have a tested verdict (better, worse or no significant difference) and it
is the same one; where either is not tested, agreement is undefined (NA). The two frameworks train the
same configurations from the same weights and data, so their agreement checks the two implementations
against each other; it is not a replication (replicates are other seeds: ``harness.analysis.replicates``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from harness.analysis.statistics import NOT_TESTED, SAME

KEY = ["variant", "task", "length"]
TESTED = ("better", "worse", SAME)
#: the columns of a comparison that the verdict table keeps, per framework
PER_FRAMEWORK = ("direction", "robust", "n", "p_adjusted", "solved_difference", "solved_difference_low",
                 "solved_difference_high", "shift", "shift_low", "shift_high", "detectable")  # fmt: skip


def verdict_columns(frameworks: Sequence[str]) -> list[str]:
    """The columns of ``verdicts``' frame for these frameworks, in order."""
    per = [f"{name}_{fw}" for fw in frameworks for name in PER_FRAMEWORK]
    return [*KEY, "n_baseline", *per, "agree"]


def verdicts(comparisons: pd.DataFrame, frameworks: Sequence[str], variants: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (variant, task, T) compared with the baseline (``comparisons``: the frame of
    ``comparisons.compare_with_baseline``; only its "all trials" selection is used): per framework the
    verdict ``direction_<fw>`` (``NOT_TESTED`` where that framework has no comparison), ``robust_<fw>``
    (every alternative test agrees), its trial count ``n_<fw>``, the primary test's corrected p
    ``p_adjusted_<fw>``, the effects with their intervals and the detectable difference of a null verdict
    (``PER_FRAMEWORK``); ``n_baseline``, the baseline's trials in the first
    framework that has them; ``agree``: a nullable boolean, NA unless every framework has a tested
    verdict and there are at least two. Rows follow ``variants``' order, then task and T."""
    cols = verdict_columns(frameworks)
    c = comparisons[comparisons["selection"] == "all"] if len(comparisons) else comparisons
    if c.empty or not frameworks:
        return pd.DataFrame(columns=cols)
    rank = {v: i for i, v in enumerate(variants)}
    rows = []
    for (variant, task, length), group in c.groupby(KEY, sort=False):
        by_fw = {r.framework: r for r in group.itertuples(index=False)}
        row = {"variant": variant, "task": task, "length": int(length),
               "n_baseline": next((int(by_fw[f].n_baseline) for f in frameworks if f in by_fw), 0)}  # fmt: skip
        for fw in frameworks:
            r = by_fw.get(fw)
            for name in PER_FRAMEWORK:
                row[f"{name}_{fw}"] = getattr(r, name) if r is not None else _MISSING.get(name, float("nan"))
        row["agree"] = agreement([row[f"direction_{fw}"] for fw in frameworks])
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    out["agree"] = out["agree"].astype("boolean")
    order = out["variant"].map(lambda v: (rank.get(v, len(rank)), v))
    out = out.assign(_order=order).sort_values(["_order", "task", "length"], kind="stable")
    return out.drop(columns="_order").reset_index(drop=True)


_MISSING = {"direction": NOT_TESTED, "robust": False, "n": 0}


def agreement(directions: Sequence[str]) -> bool | None:
    """True when at least two frameworks all have the same tested verdict, False when they all have one
    and they differ, None (undefined) when fewer than two frameworks or any of them was not tested."""
    if len(directions) < 2 or any(d not in TESTED for d in directions):
        return None
    return len(set(directions)) == 1


@dataclass(frozen=True)
class Agreement:
    """How often the frameworks reach the same verdict: ``agree`` of ``compared`` (variant, task, T)
    rows with a tested verdict in every framework; ``differ``: the rows where they do not."""

    compared: int
    agree: int
    differ: pd.DataFrame


def agreement_summary(table: pd.DataFrame) -> Agreement:
    """Counts over ``verdicts``' frame (rows with an undefined agreement are not counted)."""
    if table.empty:
        return Agreement(0, 0, table)
    known = table[table["agree"].notna()]
    return Agreement(len(known), int(known["agree"].astype(bool).sum()), known[~known["agree"].astype(bool)])
