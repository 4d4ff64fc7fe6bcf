"""The analysis's tables against hand-computed references: configurations and their replicates, the
top-10 % selection and when it is shown, solved rates with their intervals, the summary, learning-curve
aggregation, framework pairs, the forget-gate-bias rates and speeds (the tests themselves:
test_statistics.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness.analysis import statistics as S
from harness.analysis import study as A


def trials(rows: list[dict]) -> pd.DataFrame:
    """A trials frame as the store gives it, from a few fields per row."""
    base = {
        "task": "adding",
        "length": 10,
        "variant": "v",
        "framework": "torch",
        "status": "ok",
        "metric": "mse",
        "higher_is_better": 0,
        "baseline_metric": 1 / 6,
        "val_metric": np.nan,
        "val_loss": np.nan,
        "test_metric": np.nan,
        "solved": 0,
        "steps_to_solve": None,
        "steps_per_second": 100.0,
        "param_count": 100,
        "seed": 0,
        "device": "cpu",
    }
    out = []
    for i, r in enumerate(rows):
        row = {**base, **r}
        row.setdefault("trial_id", f"t{i:03d}")
        row.setdefault("hparams", json.dumps({"learning_rate": 1e-3, "hidden_size": 32, "seed_tag": i}))
        out.append(row)
    return A.prepare(pd.DataFrame(out))


# ------------------------------------------------------------------------------------------------------
# top 10 %, solved rates, verdicts
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, k", [(0, 0), (1, 1), (5, 1), (10, 1), (11, 2), (20, 2), (21, 3), (30, 3), (200, 20)])
def test_top_count(n, k):
    assert A.top_count(n) == k


def test_select_top_uses_the_validation_metric_in_the_metrics_direction():
    vals = [0.5, 0.1, 0.3, 0.05, 0.9, 0.2, 0.7, 0.6, 0.4, 0.8, 0.15, 0.25]  # 12 trials -> top 2
    rows = [{"val_metric": v, "test_metric": 1 - v, "val_loss": v} for v in vals]
    lower = A.select_top(trials(rows))
    assert sorted(lower["val_metric"]) == [0.05, 0.1]
    higher = A.select_top(trials([{**r, "higher_is_better": 1, "metric": "accuracy"} for r in rows]))
    assert sorted(higher["val_metric"]) == [0.8, 0.9]


def test_select_top_ties_excluded_trials_and_cells():
    rows = [
        {"trial_id": "b", "val_metric": 0.1, "val_loss": 0.3, "test_metric": 0.2},
        {"trial_id": "a", "val_metric": 0.1, "val_loss": 0.3, "test_metric": 0.2},  # same loss: id decides
        {"trial_id": "c", "val_metric": 0.1, "val_loss": 0.2, "test_metric": 0.2},  # lower loss wins the tie
        {"trial_id": "d", "val_metric": 0.01, "val_loss": 0.1, "test_metric": np.nan, "status": "failed"},
        {"trial_id": "e", "val_metric": 0.5, "test_metric": 0.5, "variant": "nfg"},
    ]
    top = A.select_top(trials(rows))
    assert dict(zip(top["variant"], top["trial_id"])) == {"v": "c", "nfg": "e"}  # d has no test metric
    top = A.select_top(trials(rows[:2]))
    assert list(top["trial_id"]) == ["a"]


def test_solved_rate_counts_only_trials_that_trained():
    statuses = ["ok", "ok", "diverged", "failed", "timeout"]
    assert A.solved_rate(statuses, [True, False, False, False, False]) == pytest.approx(1 / 3)
    assert math.isnan(A.solved_rate(["failed"], [False]))
    assert A.solved_rate(["ok", "ok"], [True, True]) == 1.0


def test_summary_counts_every_status():
    rows = [
        {"variant": "v", "test_metric": 0.005, "val_metric": 0.004, "solved": 1, "steps_to_solve": 300},
        {"variant": "v", "test_metric": 0.007, "val_metric": 0.006, "solved": 1, "steps_to_solve": 500},
        {"variant": "v", "test_metric": 0.1, "val_metric": 0.1, "status": "diverged"},
        {"variant": "v", "status": "failed", "param_count": 0},
        {"variant": "v", "status": "timeout"},
    ]
    df = trials(rows)
    an = A.analyse(df)
    s = an.summary.iloc[0]
    assert (s["trials"], s["ok"], s["diverged"], s["failed"], s["timeout"]) == (5, 2, 1, 1, 1)
    assert s["with_metric"] == 3 and s["solved"] == 2
    assert s["solved_rate"] == pytest.approx(2 / 3) and s["finished"] == 3
    assert (s["solved_low"], s["solved_high"]) == pytest.approx(S.solved_interval(2, 3))
    assert s["mean"] == pytest.approx(np.mean([0.005, 0.007, 0.1]))
    assert s["median"] == pytest.approx(0.007) and s["best"] == pytest.approx(0.005)
    assert s["top_n"] == 1 and math.isnan(s["top_best"])  # a top 10 % of one trial is counted, not shown
    assert s["median_steps_to_solve"] == 400
    assert s["params"] == 100  # failed trials (0 parameters recorded) do not pull the mean down
    assert s["direction"] == "baseline"


def test_the_top_10_percent_is_shown_only_where_it_holds_four_trials():
    """31 trials make a top 10 % of 4 (shown, with statistics); 30 make 3 (counted, not shown: a rank test
    of 3 against 3 cannot reach p < 0.05)."""
    assert A.trials_for_top() == 31
    rows = [{"variant": "v", "test_metric": x, "val_metric": x} for x in np.linspace(0.1, 1.0, 31)]
    rows += [{"variant": "nfg", "test_metric": x, "val_metric": x} for x in np.linspace(0.1, 1.0, 30)]
    an = A.analyse(trials(rows), baseline="v")
    s = an.summary.set_index("variant")
    assert (s.loc["v", "top_n"], s.loc["nfg", "top_n"]) == (4, 3)
    assert s.loc["v", "top_mean"] == pytest.approx(np.mean(np.linspace(0.1, 1.0, 31)[:4]))
    assert math.isnan(s.loc["nfg", "top_mean"])
    assert set(an.top["variant"]) == {"v"} and len(an.top) == 4
    assert s.loc["nfg", "direction_top"] == S.TOO_FEW_SELECTED


# ------------------------------------------------------------------------------------------------------
# configurations: a configuration's framework trials
# ------------------------------------------------------------------------------------------------------
def test_configuration_ids_pair_the_frameworks_and_ignore_run_only_settings():
    hp = {"learning_rate": 0.01, "hidden_size": 32}
    rows = [
        {"framework": "torch", "seed": 3, "hparams": json.dumps({**hp, "fused": True})},
        {"framework": "tf", "seed": 3, "hparams": json.dumps({**hp, "fused": False, "xla": True})},
        {"framework": "tf", "seed": 4, "hparams": json.dumps(hp)},  # another seed
        {"framework": "tf", "seed": 3, "hparams": json.dumps({**hp, "hidden_size": 64})},  # other hyperparameters
        {"framework": "tf", "seed": 3, "hparams": json.dumps(hp), "length": 20},  # another length
    ]
    ids = trials(rows).set_index("trial_id")["configuration"]
    assert ids["t000"] == ids["t001"]
    assert len({ids["t001"], ids["t002"], ids["t003"], ids["t004"]}) == 4


def test_configurations_pool_replicates_once():
    hp = json.dumps({"learning_rate": 0.01})
    rows = [
        # configuration 0: both frameworks solve; metrics averaged
        {"framework": "torch", "seed": 0, "hparams": hp, "test_metric": 0.01, "val_metric": 0.02, "solved": 1},
        {"framework": "tf", "seed": 0, "hparams": hp, "test_metric": 0.03, "val_metric": 0.04, "solved": 1},
        # configuration 1: the frameworks disagree on solved
        {"framework": "torch", "seed": 1, "hparams": hp, "test_metric": 0.01, "val_metric": 0.01, "solved": 1},
        {"framework": "tf", "seed": 1, "hparams": hp, "test_metric": 0.2, "val_metric": 0.2, "solved": 0},
        # configuration 2: TensorFlow failed; PyTorch's run alone decides
        {"framework": "torch", "seed": 2, "hparams": hp, "test_metric": 0.005, "val_metric": 0.01, "solved": 1},
        {"framework": "tf", "seed": 2, "hparams": hp, "status": "failed"},
    ]
    c = A.configurations(trials(rows)).sort_values("seed")
    assert len(c) == 3
    first, second, third = (c.iloc[i] for i in range(3))
    assert first["test_metric"] == pytest.approx(0.02) and first["val_metric"] == pytest.approx(0.03)
    assert (first["runs"], first["measured"], first["frameworks"]) == (2, 2, "torch,tf")
    assert first["solved"] and not first["split"]
    assert not second["solved"] and second["split"]
    assert third["solved"] and third["measured"] == 1 and third["test_metric"] == pytest.approx(0.005)


def test_ranking_scores_use_the_top_10_percent_only_where_it_holds_four_configurations():
    def rows(n: int) -> list[dict]:
        return [{"variant": v, "seed": k, "test_metric": level + k, "val_metric": level + k}
                for v, level in (("v", 0.0), ("gru", 0.5)) for k in range(n)]  # fmt: skip

    scores, words = A.ranking_scores(A.configurations(trials(rows(40))))  # top 10 %: 4 configurations
    assert words.startswith("top-10 % mean") and scores.set_index("variant")["score"].to_dict() == {"v": 1.5,
                                                                                                     "gru": 2.0}
    scores, words = A.ranking_scores(A.configurations(trials(rows(10))))
    assert words.startswith("median") and scores.set_index("variant")["score"]["v"] == pytest.approx(4.5)
    assert set(scores["configurations"]) == {10}


def test_forget_bias_rates_count_configurations_with_exact_intervals():
    rows = []
    for k, (setting, solved_torch, solved_tf) in enumerate(
        [(1.0, 1, 1), (1.0, 0, 0), (1.0, 1, 0), ("chrono", 1, 1), ("chrono", 1, 1)]
    ):
        hp = json.dumps({"forget_bias": setting})
        for framework, solved in (("torch", solved_torch), ("tf", solved_tf)):
            rows.append({"framework": framework, "seed": k, "hparams": hp, "hp.forget_bias": setting,
                         "test_metric": 0.1, "solved": solved})  # fmt: skip
    rows.append({"variant": "gru", "seed": 9, "test_metric": 0.1, "solved": 1})  # no forget gate: not counted
    fb = A.forget_bias_rates(A.configurations(trials(rows))).set_index("setting")
    assert list(fb.index) == [1.0, "chrono"]  # numbers first
    assert (fb.loc[1.0, "solved"], fb.loc[1.0, "finished"], fb.loc[1.0, "split"]) == (1, 3, 1)
    assert (fb.loc["chrono", "solved"], fb.loc["chrono", "finished"]) == (2, 2)
    assert (fb.loc[1.0, "solved_low"], fb.loc[1.0, "solved_high"]) == pytest.approx(S.solved_interval(1, 3))


def test_learning_curves_use_all_trials_where_the_top_10_percent_is_not_shown():
    df = trials([{"trial_id": t, "val_metric": m, "test_metric": m} for t, m in (("a", 0.1), ("b", 0.2))])
    curves = pd.DataFrame([(t, "validation", 0, 1.0, m) for t, m in (("a", 0.4), ("b", 0.6))],
                          columns=["trial_id", "split", "step", "loss", "metric"])  # fmt: skip
    lc = A.learning_curves(curves, df.iloc[0:0], df)
    assert list(lc["selection"]) == ["all"] and lc.iloc[0]["n"] == 2 and lc.iloc[0]["median"] == pytest.approx(0.5)
    lc = A.learning_curves(curves, df.iloc[:1], df)
    assert list(lc["selection"]) == ["top"] and lc.iloc[0]["n"] == 1


def test_dependency_gives_every_solved_rate_its_interval():
    rows = [{"test_metric": 0.1, "solved": int(i < 2)} for i in range(5)] + [{"status": "failed"}]
    d = A.dependency_curves(trials(rows)).iloc[0]
    assert (d["solved"], d["finished"], d["trials"]) == (2, 5, 6)
    assert (d["solved_low"], d["solved_high"]) == pytest.approx((0.05274, 0.85336), abs=1e-5)


# ------------------------------------------------------------------------------------------------------
# orders, ranking
# ------------------------------------------------------------------------------------------------------
def test_variant_order_and_baseline():
    from harness.plugins.catalogue import catalogue_rank

    ranks = {v: catalogue_rank(v) for v in ("rnn", "gru", "v", "nfg", "zzz", "aaa")}  # as a run records them
    assert A.variant_order(["rnn", "gru", "v", "nfg", "zzz", "aaa"], "v", ranks) == ["v", "nfg", "gru", "rnn", "aaa",
                                                                                      "zzz"]  # fmt: skip
    assert A.variant_order(["rnn", "gru", "v"], "rnn", ranks) == ["rnn", "v", "gru"]
    assert A.variant_order(["rnn", "gru", "v"], None, {"rnn": 0, "gru": 5}) == ["rnn", "gru", "v"]  # the ranks given
    assert A.choose_baseline(["gru", "v"], ranks=ranks) == ("v", None)
    assert A.choose_baseline(["rnn", "gru"], ranks=ranks) == ("gru", None)
    assert A.choose_baseline(["rnn", "gru"], ranks={"rnn": 0, "gru": 1}) == ("rnn", None)
    assert A.choose_baseline(["rnn", "gru"], "rnn", ranks) == ("rnn", None)
    assert A.choose_baseline(["v", "gru"], "peephole", ranks, aliases={"peephole": "v"}) == ("v", None)
    base, note = A.choose_baseline(["rnn", "gru"], "v", ranks)
    assert base == "gru" and "no trials" in note


# ------------------------------------------------------------------------------------------------------
# curves, pairs, importance
# ------------------------------------------------------------------------------------------------------
def test_learning_curves_carry_early_stopped_trials_forward():
    top = trials(
        [
            {"trial_id": "a", "val_metric": 0.1, "test_metric": 0.1},
            {"trial_id": "b", "val_metric": 0.2, "test_metric": 0.2},
        ]
    )
    curves = pd.DataFrame(
        [
            ("a", "validation", 0, 1.0, 1.0),
            ("a", "validation", 100, 0.5, 0.5),  # stopped (solved) at 100
            ("b", "validation", 0, 1.0, 0.8),
            ("b", "validation", 100, 0.7, 0.7),
            ("b", "validation", 200, 0.3, 0.3),
            ("b", "train", 100, 0.9, np.nan),
        ],
        columns=["trial_id", "split", "step", "loss", "metric"],
    )
    lc = A.learning_curves(curves, top).set_index("step")
    assert set(lc["selection"]) == {"top"}
    assert lc.loc[0, "median"] == pytest.approx(0.9)
    assert lc.loc[200, "median"] == pytest.approx((0.5 + 0.3) / 2)  # a keeps 0.5
    assert lc.loc[200, "q25"] == pytest.approx(0.35) and lc.loc[200, "q75"] == pytest.approx(0.45)
    assert (lc["n"] == 2).all()


def test_framework_pairs_match_configurations():
    hp = json.dumps({"learning_rate": 0.01, "hidden_size": 32, "fused": True})
    rows = [
        {"framework": "torch", "test_metric": 0.1, "hparams": hp},
        {"framework": "tf", "test_metric": 0.12, "hparams": hp.replace("true", "false")},  # fused is not a config
        {"framework": "tf", "test_metric": 0.3, "hparams": json.dumps({"learning_rate": 0.1})},
    ]
    pairs = A.framework_pairs(trials(rows))
    assert len(pairs) == 1 and pairs.iloc[0]["torch"] == 0.1 and pairs.iloc[0]["tf"] == 0.12
    assert pairs.iloc[0]["configuration"] == trials(rows).iloc[0]["configuration"]
    assert A.framework_pairs(trials(rows[:1])).empty


def test_speeds_compare_as_trial_steps_per_second_across_population_sizes():
    """A population of 10 at 5 steps/s trains 50 trial-steps/s: faster than a solo trial at 20 steps/s."""
    from harness.analysis.study import prepare, speed_table

    rows = [{"trial_id": f"{fw}{i}", "task": "adding", "length": 10, "variant": "np", "framework": fw,
             "status": "ok", "test_metric": 0.1, "val_metric": 0.1, "val_loss": 0.1, "steps_to_solve": None,
             "param_count": 10, "solved": 0, "higher_is_better": 0, "steps_per_second": sps, "population": pop}
            for i, (fw, sps, pop) in enumerate([("torch", 20.0, 1), ("tf", 5.0, 10), ("tf", 5.0, None)])]  # fmt: skip
    table = speed_table(prepare(pd.DataFrame(rows))).set_index("framework")["steps_per_second"]
    assert table["torch"] == 20.0 and table["tf"] == pytest.approx((50.0 + 5.0) / 2)  # no population: 1
