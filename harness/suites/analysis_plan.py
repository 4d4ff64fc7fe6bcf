"""A suite's statistical analysis plan: which outcome decides a verdict, which test, which correction.

A study declares how it will be judged before it runs (the ``[statistics]`` table of its suite file),
so that the verdicts cannot be chosen after seeing which test gives the answer one hoped for:

    [statistics]
    primary = "metric"      # the outcome that decides a verdict: "metric" (test metric), "solved", or
                            # "generalisation" (the mean metric over the test lengths beyond T)
    test = "paired"         # "paired", "unpaired" or "welch" (see below)
    correction = "holm"     # "holm" (family-wise error) or "bh" (Benjamini-Hochberg false discovery rate)
    family = "study"        # "study": correct over every comparison of a framework; "block": per task and T
    alpha = 0.05            # significance level of the corrected p-values
    power = 0.8             # power at which the detectable difference of a null verdict is stated

Both outcomes are tested and reported for every comparison; ``primary`` says which one gives the verdict.
``"generalisation"`` (a suite that tests beyond T: ``harness.training.lengths``) puts Delétang et al.'s
score in the test metric's place, tested like it; the solved outcome stays the one at T.

``test``:

* ``paired`` (default): a variant and the baseline train on the same configurations (the k-th random
  search draw of a task and T, and its replicate seed), so their trials pair by seed. The metric is
  compared by the Wilcoxon signed-rank test of the paired differences, the solved outcome by McNemar's
  exact test on the discordant pairs. A variant that lacks a searched hyperparameter (``nfg`` has no
  forget gate, so no forget-gate bias) still pairs on the seed: its k-th configuration has the same
  learning rate and hidden size as the baseline's k-th, only without the missing key. Where trials do not
  pair (a seed on one side only), the test falls back to the unpaired one and says so.
* ``unpaired``: Mann-Whitney U on the metric, Fisher's exact test on the solved counts.
* ``welch``: Welch's t-test on the metric's means (Greff et al. 2015's test, kept for comparison with
  them), Fisher's exact test on the solved counts. Welch's test assumes near-normal means; the metrics
  here are bimodal (solved or not) and heavy-tailed, which is why it is not the default.

``correction``: Holm (default) bounds the chance of even one false verdict in the family at ``alpha``;
every cell of a verdict table is a claim a reader may cite on its own, so each should carry that
guarantee. Benjamini-Hochberg bounds the expected share of false verdicts among the significant ones,
more power for screening many variants. ``family = "study"`` corrects over every comparison of one
framework in the study (all tasks, lengths and variants; the top-10 % selection is its own family);
``"block"`` over the variants of one task, T and framework, as Greff et al. did.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from harness.errors import UsageError, unknown_name

PRIMARY = ("metric", "solved", "generalisation")
TESTS = ("paired", "unpaired", "welch")
CORRECTIONS = ("holm", "bh")
FAMILIES = ("study", "block")


@dataclass(frozen=True)
class AnalysisPlan:
    """How a study's comparisons against its baseline are tested; the defaults are the documented ones."""

    primary: str = "metric"
    test: str = "paired"
    correction: str = "holm"
    family: str = "study"
    alpha: float = 0.05
    power: float = 0.8

    def short(self) -> str:
        """The primary test and its correction in a few words, for captions."""
        primary = "metric" if self.primary == "generalisation" else self.primary
        test = {("metric", "paired"): "Wilcoxon signed-rank test paired by seed",
                ("metric", "unpaired"): "Mann-Whitney U test", ("metric", "welch"): "Welch's t-test",
                ("solved", "paired"): "McNemar's exact test paired by seed"}.get(  # fmt: skip
            (primary, self.test), "Fisher's exact test on the solved counts")
        on = " on the generalisation score" if self.primary == "generalisation" else ""
        return f"{test}{on}, {self.correction_words()}, α = {self.alpha:g}"

    def correction_words(self, per_framework: bool = True) -> str:
        """The correction and its family in a few words: 'Holm over the study, per framework'."""
        correction = "Holm" if self.correction == "holm" else "Benjamini-Hochberg"
        if self.family == "study":
            return f"{correction} over the study" + (", per framework" if per_framework else "")
        return f"{correction} per task, T and framework" if per_framework else f"{correction} per block"

    def describe(self) -> str:
        """One sentence for a report: the primary test and its correction."""
        metric = {"paired": "the Wilcoxon signed-rank test on configurations paired by seed",
                  "unpaired": "the Mann-Whitney U test", "welch": "Welch's t-test"}[self.test]  # fmt: skip
        solved = ("McNemar's exact test on configurations paired by seed" if self.test == "paired"
                  else "Fisher's exact test")  # fmt: skip
        measured = "the generalisation score" if self.primary == "generalisation" else "the test metric"
        primary = f"{measured} ({metric})" if self.primary != "solved" else f"the solved outcome ({solved})"
        other = f"the solved outcome ({solved})" if self.primary != "solved" else f"the test metric ({metric})"
        correction = {"holm": "Holm's family-wise correction", "bh": "the Benjamini-Hochberg correction"}
        over = ("every comparison of the study within a framework" if self.family == "study"
                else "the variants of each task, T and framework")  # fmt: skip
        return (f"Verdicts: {primary}, {correction[self.correction]} over {over}, alpha = {self.alpha:g}; "
                f"{other} is reported beside it.")  # fmt: skip


def parse_analysis_plan(table: Any, where: str) -> AnalysisPlan:
    """The ``[statistics]`` table of a suite file (``where`` names it), validated; {} gives the defaults."""
    if table is None:
        return AnalysisPlan()
    if not isinstance(table, dict):
        raise UsageError(f"suite file {where}: [statistics] should be a table, got {table!r}")
    known = [f.name for f in fields(AnalysisPlan)]
    for key in table:
        if key not in known:
            raise unknown_name("statistics key", key, known, f"suite file {where}, [statistics]")
    choices = {"primary": PRIMARY, "test": TESTS, "correction": CORRECTIONS, "family": FAMILIES}
    for key, allowed in choices.items():
        if key in table and table[key] not in allowed:
            raise unknown_name(f"[statistics] {key}", str(table[key]), allowed, f"suite file {where}")
    for key in ("alpha", "power"):
        value = table.get(key, 0.5)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise UsageError(f"suite file {where}: [statistics] {key} = {value!r} must be a number in (0, 1)")
    return AnalysisPlan(**{k: (float(v) if k in ("alpha", "power") else v) for k, v in table.items()})
