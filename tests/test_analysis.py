"""The report's statistics against hand-computed references: Welch's t-test, Holm's correction, the
top-10 % selection, solved rates, verdicts, ranking, learning-curve aggregation and importance."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from harness import analysis as A


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
# Welch and Holm
# ------------------------------------------------------------------------------------------------------
def test_welch_matches_the_hand_computed_statistic():
    # a: mean 3, sample variance 2.5, n 5; b: mean 7, sample variance 14, n 6
    res = A.welch([1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12])
    se2 = 2.5 / 5 + 14 / 6  # 17/6
    assert res.t == pytest.approx(-4 / math.sqrt(se2), rel=1e-12)
    assert res.df == pytest.approx(se2**2 / ((2.5 / 5) ** 2 / 4 + (14 / 6) ** 2 / 5), rel=1e-12)  # 6.97226
    assert res.p == pytest.approx(0.0492843, rel=1e-5)  # two-sided, t = -2.37635 on 6.97226 df


def test_welch_is_symmetric_and_handles_degenerate_samples():
    a, b = [0.1, 0.4, 0.35, 0.2], [0.5, 0.55, 0.7]
    assert A.welch(a, b).p == pytest.approx(A.welch(b, a).p)
    assert A.welch(a, b).t == pytest.approx(-A.welch(b, a).t)
    assert math.isnan(A.welch([1.0], [1.0, 2.0]).p)  # too few values
    assert A.welch([1, 1, 1], [2, 2, 2]).p == 0.0  # zero variance, different means
    assert A.welch([1, 1], [1, 1, 1]).p == 1.0  # zero variance, equal means
    assert math.isnan(A.welch([1.0, np.nan], [1.0, 2.0]).p)  # NaNs are dropped before counting


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(A.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(A.holm([0.001, 0.2]), [0.002, 0.2])
    np.testing.assert_allclose(A.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    out = A.holm([0.02, np.nan, 0.04])  # NaN does not count in m = 2
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.04, 0.04])
    assert A.holm([]).shape == (0,)


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


def test_direction():
    assert A.direction(+0.3, 0.01) == "better"
    assert A.direction(-0.3, 0.01) == "worse"
    assert A.direction(-0.3, 0.2) == "no significant difference"
    assert A.direction(0.0, 0.0) == "no significant difference"
    assert A.direction(1.0, float("nan")) == "not tested"


def test_comparisons_apply_holm_across_the_variants_of_a_block():
    base = [1, 2, 3, 4, 5]
    worse = [2, 4, 6, 8, 10, 12]  # p = 0.0493 alone
    rows = [{"variant": "v", "test_metric": x, "val_metric": x} for x in base]
    rows += [{"variant": "nfg", "test_metric": x, "val_metric": x} for x in worse]
    df = trials(rows)
    comp = A.compare_with_baseline(df, A.select_top(df), "v")
    alone = comp[comp["selection"] == "all"].iloc[0]
    assert alone["p_holm"] == pytest.approx(0.0492843, rel=1e-5)
    assert alone["direction"] == "worse"  # MSE: higher is worse
    # a second variant equal to the baseline (p = 1) doubles the smaller p: 0.0986 > 0.05
    df2 = trials(rows + [{"variant": "cifg", "test_metric": x, "val_metric": x} for x in base])
    comp2 = A.compare_with_baseline(df2, A.select_top(df2), "v")
    nfg = comp2[(comp2["selection"] == "all") & (comp2["variant"] == "nfg")].iloc[0]
    assert nfg["p_holm"] == pytest.approx(2 * 0.0492843, rel=1e-5)
    assert nfg["direction"] == "no significant difference"
    # accuracy (higher is better): the same numbers make nfg better
    df3 = trials([{**r, "higher_is_better": 1, "metric": "accuracy"} for r in rows])
    comp3 = A.compare_with_baseline(df3, A.select_top(df3), "v")
    assert comp3[comp3["selection"] == "all"].iloc[0]["direction"] == "better"


def test_holm_corrects_within_each_block_not_across_tasks_lengths_and_frameworks():
    """One comparison per (task, T, framework) block: each is its own family of m = 1, so Holm leaves its
    p unchanged; pooling the three blocks would triple it (0.148) and hide the difference."""
    base, worse = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12]  # p = 0.0493
    rows = []
    for length, framework in ((10, "torch"), (20, "torch"), (10, "tf")):
        at = {"length": length, "framework": framework}
        rows += [{**at, "variant": "v", "test_metric": x, "val_metric": x} for x in base]
        rows += [{**at, "variant": "nfg", "test_metric": x, "val_metric": x} for x in worse]
    df = trials(rows)
    comp = A.compare_with_baseline(df, A.select_top(df), "v")
    tested = comp[comp["selection"] == "all"]
    assert len(tested) == 3
    assert tested["p_holm"].to_numpy() == pytest.approx([0.0492843] * 3, rel=1e-5)
    assert list(tested["direction"]) == ["worse"] * 3


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
    assert s["solved_rate"] == pytest.approx(2 / 3)
    assert s["mean"] == pytest.approx(np.mean([0.005, 0.007, 0.1]))
    assert s["median"] == pytest.approx(0.007) and s["best"] == pytest.approx(0.005)
    assert s["top_n"] == 1 and s["top_best"] == pytest.approx(0.005)
    assert s["median_steps_to_solve"] == 400
    assert s["params"] == 100  # failed trials (0 parameters recorded) do not pull the mean down
    assert s["direction"] == "baseline"


# ------------------------------------------------------------------------------------------------------
# orders, ranking
# ------------------------------------------------------------------------------------------------------
def test_variant_order_and_baseline():
    from harness.catalogue import catalogue_rank

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


def test_ranking_mean_ranks_and_critical_difference():
    # three blocks; lower is better; means per variant
    blocks = {
        ("adding", 10): {"v": 0.1, "gru": 0.2, "rnn": 0.3},
        ("adding", 20): {"v": 0.2, "gru": 0.1, "rnn": 0.3},
        ("adding", 40): {"v": 0.1, "gru": 0.1, "rnn": 0.5},
    }
    rows = [
        {"task": t, "length": T, "framework": "torch", "variant": v, "top_mean": m, "higher_is_better": False}
        for (t, T), ms in blocks.items()
        for v, m in ms.items()
    ]
    r = A.rank_variants(pd.DataFrame(rows), "v")
    ranks = dict(zip(r.table["variant"], r.table["mean_rank"]))
    assert ranks == pytest.approx({"v": (1 + 2 + 1.5) / 3, "gru": (2 + 1 + 1.5) / 3, "rnn": 3.0})
    assert r.complete_blocks == 3
    # Nemenyi: q_0.05(k=3) = 2.343 (Demšar 2006, Table 5), CD = q sqrt(k(k+1)/(6N))
    assert r.critical_difference == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 3)), rel=1e-3)
    assert 0 < r.friedman_p < 1


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
    assert A.framework_pairs(trials(rows[:1])).empty


def _importance_rows(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        hidden = int(rng.choice([16, 32, 64]))
        metric = (math.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.01)  # only the learning rate matters
        rows.append(
            {
                "test_metric": metric,
                "val_metric": metric,
                "hparams": json.dumps({"learning_rate": lr, "hidden_size": hidden, "fused": True}),
            }
        )
    df = pd.DataFrame(rows)
    hp = pd.json_normalize([json.loads(h) for h in df["hparams"]]).add_prefix("hp.")
    return trials(pd.concat([df, hp], axis=1).to_dict("records"))


def test_importance_fallback_finds_the_hyperparameter_that_matters():
    imp, method = A.importance(_importance_rows(), {"v": "lstm"}, method="eta2")
    assert method == "eta2"
    got = dict(zip(imp["hyperparameter"], imp["importance"]))
    assert set(got) == {"learning_rate", "hidden_size"}  # "fused" is a run setting, not searched
    assert got["learning_rate"] > 0.6 and got["hidden_size"] < 0.2


@pytest.mark.skipif(not A.fanova_available(), reason="Optuna's fANOVA needs scikit-learn, which is not installed")
def test_importance_fanova_finds_the_hyperparameter_that_matters():
    imp, method = A.importance(_importance_rows(), {"v": "lstm"}, method="fanova")
    got = dict(zip(imp["hyperparameter"], imp["importance"]))
    assert method == "fanova" and got["learning_rate"] > 0.7 and got["hidden_size"] < 0.2
    again, _ = A.importance(_importance_rows(), {"v": "lstm"}, method="fanova")
    pd.testing.assert_frame_equal(imp, again)  # seeded


def test_importance_needs_enough_trials():
    imp, _ = A.importance(_importance_rows(5), {"v": "lstm"}, method="eta2")
    assert imp.empty


def test_binned_median():
    x = np.array([16, 16, 32, 32, 32, 64])
    y = np.array([1.0, 3.0, 2.0, 4.0, 6.0, 5.0])
    cx, cy = A.binned_median(x, y)
    np.testing.assert_array_equal(cx, [16, 32, 64])
    np.testing.assert_array_equal(cy, [2.0, 4.0, 5.0])
    x = np.logspace(-4, -1, 40)
    cx, cy = A.binned_median(x, np.log10(x), bins=3, log=True)
    assert len(cx) == 3 and np.all(np.diff(cy) > 0) and cx[0] > 1e-4 and cx[-1] < 1e-1


def test_speeds_compare_as_trial_steps_per_second_across_population_sizes():
    """A population of 10 at 5 steps/s trains 50 trial-steps/s: faster than a solo trial at 20 steps/s."""
    from harness.analysis import prepare, speed_table

    rows = [{"trial_id": f"{fw}{i}", "task": "adding", "length": 10, "variant": "np", "framework": fw,
             "status": "ok", "test_metric": 0.1, "val_metric": 0.1, "val_loss": 0.1, "steps_to_solve": None,
             "param_count": 10, "solved": 0, "higher_is_better": 0, "steps_per_second": sps, "population": pop}
            for i, (fw, sps, pop) in enumerate([("torch", 20.0, 1), ("tf", 5.0, 10), ("tf", 5.0, None)])]  # fmt: skip
    table = speed_table(prepare(pd.DataFrame(rows))).set_index("framework")["steps_per_second"]
    assert table["torch"] == 20.0 and table["tf"] == pytest.approx((50.0 + 5.0) / 2)  # no population: 1
