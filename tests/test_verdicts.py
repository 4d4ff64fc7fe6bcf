"""The verdict table: the baseline comparisons laid side by side per framework, and their agreement."""

from __future__ import annotations

import pandas as pd

from harness.analysis.comparisons import COMPARISON_COLUMNS, compare_with_baseline
from harness.analysis.statistics import NOT_TESTED, SAME
from harness.analysis.verdicts import agreement, agreement_summary, verdicts
from harness.report.tables import verdict_cell


def _comparison(variant: str, framework: str, direction: str, selection: str = "all", n: int = 5) -> dict:
    row = dict.fromkeys(COMPARISON_COLUMNS, float("nan"))
    row.update(task="adding", length=20, framework=framework, selection=selection, variant=variant, baseline="v",
               n=n, n_baseline=6, p_adjusted=0.01, direction=direction, robust=True)  # fmt: skip
    return row


def test_agreement():
    assert agreement(["worse", "worse"]) is True
    assert agreement([SAME, SAME]) is True
    assert agreement(["worse", SAME]) is False
    assert agreement(["worse", NOT_TESTED]) is None
    assert agreement(["worse"]) is None


def test_verdicts_lay_the_frameworks_side_by_side_from_the_all_trials_tests():
    c = pd.DataFrame([
        _comparison("nfg", "torch", "worse"), _comparison("nfg", "tf", "worse"),
        _comparison("nfg", "tf", "better", selection="top"),  # the top-10 % selection is not a verdict here
        _comparison("cifg", "torch", "worse"), _comparison("cifg", "tf", SAME),
        _comparison("gru", "torch", SAME),  # no TensorFlow comparison at all
    ])  # fmt: skip
    v = verdicts(c, ["torch", "tf"], ["v", "cifg", "nfg", "gru"])
    assert v["variant"].tolist() == ["cifg", "nfg", "gru"]
    by = v.set_index("variant")
    assert by.loc["nfg", "direction_tf"] == "worse" and bool(by.loc["nfg", "agree"]) is True
    assert bool(by.loc["cifg", "agree"]) is False
    assert by.loc["gru", "direction_tf"] == NOT_TESTED and by.loc["gru", "n_tf"] == 0
    assert pd.isna(by.loc["gru", "agree"]) and by.loc["nfg", "n_baseline"] == 6
    a = agreement_summary(v)
    assert (a.compared, a.agree, a.differ["variant"].tolist()) == (2, 1, ["cifg"])


def test_verdicts_reuse_the_comparisons():
    """A variant clearly worse in both frameworks reads "worse" in both and agrees; one equal to the baseline
    in distribution reads "no significant difference"."""
    rows = []
    for fw, shift in (("torch", 0.0), ("tf", 0.001)):
        for i in range(8):
            noise = 0.01 * ((i * 7) % 5 - 2)
            rows += [
                {"task": "adding", "length": 20, "framework": fw, "variant": "v", "test_metric": 0.1 + noise + shift},
                {"task": "adding", "length": 20, "framework": fw, "variant": "nfg", "test_metric": 0.5 + noise},
                {"task": "adding", "length": 20, "framework": fw, "variant": "cifg", "test_metric": 0.1 - noise},
            ]
    trials = pd.DataFrame(rows).assign(has_metric=True, higher_is_better=False, finished=True, solved=False)
    c = compare_with_baseline(trials, trials.iloc[0:0], "v", ["v", "nfg", "cifg"])
    v = verdicts(c, ["torch", "tf"], ["v", "nfg", "cifg"]).set_index("variant")
    assert (v.loc["nfg", "direction_torch"], v.loc["nfg", "direction_tf"]) == ("worse", "worse")
    assert v.loc["cifg", "direction_torch"] == SAME and bool(v.loc["cifg", "agree"]) is True


def test_verdict_cells():
    assert verdict_cell({"torch": "worse"}) == "worse"
    assert verdict_cell({"torch": "worse", "tf": "worse"}) == "worse (both)"
    assert verdict_cell({"torch": SAME, "tf": SAME}) == "not different (both)"
    assert verdict_cell({"torch": "worse", "tf": SAME}) == "PyTorch worse, TensorFlow not different"
    assert verdict_cell({"torch": "worse", "tf": "worse"}, {"torch": False, "tf": False}) == "worse? (both)"
    mixed = verdict_cell({"torch": "worse", "tf": "worse"}, {"torch": True, "tf": False})
    assert mixed == "PyTorch worse, TensorFlow worse?"
    effects = {"torch": "0.13 (0.092 to 0.15)", "tf": "0.13 (0.093 to 0.15)"}
    assert verdict_cell({"torch": "worse", "tf": "worse"}, None, effects) == "worse (both): 0.13 (0.092 to 0.15)"
    assert verdict_cell({"torch": NOT_TESTED}, {"torch": False}, {"torch": "–"}) == "not tested"
