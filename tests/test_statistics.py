"""The report's statistics against hand-computed references: Welch's t-test, Holm's correction, verdicts,
the tests against the baseline, exact binomial intervals, the paired framework test, the ranking with
framework replicates counted once, and hyperparameter importance over configurations with its bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_analysis import trials  # a trials frame as the store gives it, from a few fields per row

from harness import analysis as A
from harness import importance as I
from harness import statistics as S


# ------------------------------------------------------------------------------------------------------
# Welch, Holm, verdicts
# ------------------------------------------------------------------------------------------------------
def test_welch_matches_the_hand_computed_statistic():
    # a: mean 3, sample variance 2.5, n 5; b: mean 7, sample variance 14, n 6
    res = S.welch([1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12])
    se2 = 2.5 / 5 + 14 / 6  # 17/6
    assert res.t == pytest.approx(-4 / math.sqrt(se2), rel=1e-12)
    assert res.df == pytest.approx(se2**2 / ((2.5 / 5) ** 2 / 4 + (14 / 6) ** 2 / 5), rel=1e-12)  # 6.97226
    assert res.p == pytest.approx(0.0492843, rel=1e-5)  # two-sided, t = -2.37635 on 6.97226 df


def test_welch_is_symmetric_and_handles_degenerate_samples():
    a, b = [0.1, 0.4, 0.35, 0.2], [0.5, 0.55, 0.7]
    assert S.welch(a, b).p == pytest.approx(S.welch(b, a).p)
    assert S.welch(a, b).t == pytest.approx(-S.welch(b, a).t)
    assert math.isnan(S.welch([1.0], [1.0, 2.0]).p)  # too few values
    assert S.welch([1, 1, 1], [2, 2, 2]).p == 0.0  # zero variance, different means
    assert S.welch([1, 1], [1, 1, 1]).p == 1.0  # zero variance, equal means
    assert math.isnan(S.welch([1.0, np.nan], [1.0, 2.0]).p)  # NaNs are dropped before counting


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(S.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(S.holm([0.001, 0.2]), [0.002, 0.2])
    np.testing.assert_allclose(S.holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    out = S.holm([0.02, np.nan, 0.04])  # NaN does not count in m = 2
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [0.04, 0.04])
    assert S.holm([]).shape == (0,)


def test_direction():
    assert S.direction(+0.3, 0.01) == "better"
    assert S.direction(-0.3, 0.01) == "worse"
    assert S.direction(-0.3, 0.2) == "no significant difference"
    assert S.direction(0.0, 0.0) == "no significant difference"
    assert S.direction(1.0, float("nan")) == "not tested"


# ------------------------------------------------------------------------------------------------------
# tests against the baseline
# ------------------------------------------------------------------------------------------------------
def test_comparisons_apply_holm_across_the_variants_of_a_block():
    base = [1, 2, 3, 4, 5]
    worse = [2, 4, 6, 8, 10, 12]  # p = 0.0493 alone
    rows = [{"variant": "v", "test_metric": x, "val_metric": x} for x in base]
    rows += [{"variant": "nfg", "test_metric": x, "val_metric": x} for x in worse]
    df = trials(rows)
    comp = S.compare_with_baseline(df, A.select_top(df), "v")
    alone = comp[comp["selection"] == "all"].iloc[0]
    assert alone["p_holm"] == pytest.approx(0.0492843, rel=1e-5)
    assert alone["direction"] == "worse"  # MSE: higher is worse
    # a second variant equal to the baseline (p = 1) doubles the smaller p: 0.0986 > 0.05
    df2 = trials(rows + [{"variant": "cifg", "test_metric": x, "val_metric": x} for x in base])
    comp2 = S.compare_with_baseline(df2, A.select_top(df2), "v")
    nfg = comp2[(comp2["selection"] == "all") & (comp2["variant"] == "nfg")].iloc[0]
    assert nfg["p_holm"] == pytest.approx(2 * 0.0492843, rel=1e-5)
    assert nfg["direction"] == "no significant difference"
    # accuracy (higher is better): the same numbers make nfg better
    df3 = trials([{**r, "higher_is_better": 1, "metric": "accuracy"} for r in rows])
    comp3 = S.compare_with_baseline(df3, A.select_top(df3), "v")
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
    comp = S.compare_with_baseline(df, A.select_top(df), "v")
    tested = comp[comp["selection"] == "all"]
    assert len(tested) == 3
    assert tested["p_holm"].to_numpy() == pytest.approx([0.0492843] * 3, rel=1e-5)
    assert list(tested["direction"]) == ["worse"] * 3


def test_a_top_selection_under_three_trials_is_not_tested_and_says_so():
    """10 trials per cell: the top 10 % is one trial, which says nothing; 30 per cell: three, tested."""
    rng = np.random.default_rng(0)
    for n, expected in ((10, S.TOO_FEW_SELECTED), (30, None)):
        rows = [{"variant": v, "test_metric": x, "val_metric": x}
                for v, shift in (("v", 0.0), ("nfg", 5.0)) for x in rng.normal(shift, 1.0, n)]  # fmt: skip
        df = trials(rows)
        top = S.compare_with_baseline(df, A.select_top(df), "v")
        top = top[top["selection"] == "top"].iloc[0]
        if expected:
            assert top["direction"] == expected and math.isnan(top["p_holm"]) and top["n"] == 1
        else:
            assert top["n"] == 3 and top["direction"] == "worse"


# ------------------------------------------------------------------------------------------------------
# intervals
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k, n", [(2, 5), (0, 10), (10, 10), (6, 18), (12, 12)])
def test_solved_interval_is_clopper_pearson(k, n):
    """The exact interval: the beta quantiles B(α/2; k, n - k + 1) and B(1 - α/2; k + 1, n - k)."""
    low, high = S.solved_interval(k, n)
    assert low == pytest.approx(stats.beta.ppf(0.025, k, n - k + 1) if k else 0.0, abs=1e-9)
    assert high == pytest.approx(stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0, abs=1e-9)


def test_solved_interval_known_values_and_empty():
    assert S.solved_interval(2, 5) == pytest.approx((0.05274, 0.85336), abs=1e-5)  # a textbook value
    assert S.solved_interval(12, 12)[0] == pytest.approx(0.7354, abs=1e-4)  # "12 of 12": at least 74 %
    assert all(math.isnan(x) for x in S.solved_interval(0, 0))


# ------------------------------------------------------------------------------------------------------
# frameworks: the paired test
# ------------------------------------------------------------------------------------------------------
def test_paired_test_by_hand():
    """Differences 1, -2, 3, 4, 5: W- = 2, W+ = 13; the exact two-sided p counts the sign patterns with a
    rank sum of at most 2 ({}, {1}, {2}): 2 · 3 / 32 = 0.1875."""
    x = np.array([1.0, 0.0, 3.0, 4.0, 5.0]) + 10
    y = np.array([0.0, 2.0, 0.0, 0.0, 0.0]) + 10
    res = S.paired_test(x, y)
    assert (res.n, res.nonzero, res.statistic) == (5, 5, 2.0)
    assert res.p == pytest.approx(0.1875, abs=1e-12)


def test_paired_test_degenerate_cases():
    assert S.paired_test([0.1, 0.2], [0.1, 0.2]).p == 1.0  # every pair agrees exactly
    assert math.isnan(S.paired_test([], []).p)
    res = S.paired_test([0.1, np.nan, 0.3], [0.2, 0.5, np.nan])  # pairs with a NaN are dropped
    assert res.n == 1


def test_framework_tests_pair_configurations_and_find_a_real_difference():
    """12 configurations per length; at T = 20 TensorFlow is 0.05-0.06 worse on every one (MSE: higher
    is worse): the signed-rank test finds it (exact p = 2 / 2^12, times 2 for Holm); at T = 10 the
    differences are symmetric noise."""
    rng = np.random.default_rng(1)
    rows = []
    for length, shift in ((10, 0.0), (20, 0.05)):
        for k in range(12):
            m = float(rng.uniform(0.1, 0.5))
            noise = float(rng.normal(0, 0.01)) if shift == 0 else 0.001 * k  # no tied differences
            hp = json.dumps({"learning_rate": 1e-3, "k": k})
            rows += [{"length": length, "framework": "torch", "seed": k, "hparams": hp, "test_metric": m},
                     {"length": length, "framework": "tf", "seed": k, "hparams": hp, "test_metric": m + shift + noise}]
    df = trials(rows)
    pairs = A.framework_pairs(df)
    assert len(pairs) == 24 and pairs["configuration"].nunique() == 24
    t = S.framework_tests(pairs, {"adding": False}).set_index("length")
    assert t.loc[20, "pairs"] == 12 and t.loc[20, "torch_better"] == 12 and t.loc[20, "tf_better"] == 0
    assert t.loc[20, "p"] == pytest.approx(2 / 2**12)
    assert t.loc[20, "p_holm"] == pytest.approx(min(1.0, 2 * t.loc[20, "p"]))  # T = 10's p is larger
    assert t.loc[20, "direction"] == "PyTorch better"
    assert t.loc[10, "direction"] == "no significant difference"
    assert t.loc[20, "median_difference"] == pytest.approx(0.0555)


# ------------------------------------------------------------------------------------------------------
# ranking
# ------------------------------------------------------------------------------------------------------
def test_ranking_mean_ranks_and_critical_difference():
    # three blocks; lower is better; one score per variant
    blocks = {
        ("adding", 10): {"v": 0.1, "gru": 0.2, "rnn": 0.3},
        ("adding", 20): {"v": 0.2, "gru": 0.1, "rnn": 0.3},
        ("adding", 40): {"v": 0.1, "gru": 0.1, "rnn": 0.5},
    }
    rows = [
        {"task": t, "length": T, "variant": v, "score": m, "higher_is_better": False}
        for (t, T), ms in blocks.items()
        for v, m in ms.items()
    ]
    r = S.rank_variants(pd.DataFrame(rows), ["task", "length"], ["v", "gru", "rnn"])
    ranks = dict(zip(r.table["variant"], r.table["mean_rank"]))
    assert ranks == pytest.approx({"v": (1 + 2 + 1.5) / 3, "gru": (2 + 1 + 1.5) / 3, "rnn": 3.0})
    assert r.complete_blocks == 3
    # Nemenyi: q_0.05(k=3) = 2.343 (Demšar 2006, Table 5), CD = q sqrt(k(k+1)/(6N))
    assert r.critical_difference == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 3)), rel=1e-3)
    assert r.friedman_p == pytest.approx(stats.friedmanchisquare([1, 2, 1.5], [2, 1, 1.5], [3, 3, 3]).pvalue)


def test_ranking_counts_a_configuration_once_not_once_per_framework():
    """Three variants on three (task, T) blocks, each configuration run in both frameworks: the ranking
    has 3 blocks (not 6), so the Nemenyi CD is that of N = 3, and Friedman sees 3 blocks."""
    rows = []
    for length in (10, 20, 40):
        for variant, level in (("v", 0.1), ("gru", 0.2), ("rnn", 0.3)):
            for k in range(4):
                hp = json.dumps({"learning_rate": 1e-3, "k": k})
                m = level + 0.01 * k
                for framework, wobble in (("torch", 0.0), ("tf", 0.001)):
                    rows.append({"length": length, "variant": variant, "framework": framework, "seed": k,
                                 "hparams": hp, "test_metric": m + wobble, "val_metric": m + wobble})  # fmt: skip
    an = A.analyse(trials(rows), baseline="v")
    r = an.ranking
    assert len(r.ranks) == 3 and r.complete_blocks == 3 and list(r.ranks.index.names) == ["task", "length"]
    assert dict(zip(r.table["variant"], r.table["mean_rank"])) == {"v": 1.0, "gru": 2.0, "rnn": 3.0}
    assert r.critical_difference == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 3)), rel=1e-3)
    assert r.friedman_p == pytest.approx(stats.friedmanchisquare([1] * 3, [2] * 3, [3] * 3).pvalue)
    assert set(r.table["blocks"]) == {3}
    # 4 configurations per variant: a top 10 % of 1 is too small, so the median of the configurations ranks
    assert r.score == "median test metric of the configurations"


# ------------------------------------------------------------------------------------------------------
# hyperparameter importance
# ------------------------------------------------------------------------------------------------------
def _importance_rows(n: int = 40, frameworks: tuple[str, ...] = ("torch",)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        hidden = int(rng.choice([16, 32, 64]))
        metric = (math.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.01)  # only the learning rate matters
        hp = {"learning_rate": lr, "hidden_size": hidden, "fused": True}
        for framework in frameworks:
            rows.append({"test_metric": metric, "val_metric": metric, "hparams": json.dumps(hp), "seed": k,
                         "framework": framework, **{f"hp.{key}": v for key, v in hp.items()}})  # fmt: skip
    return A.configurations(trials(rows))


def test_importance_fallback_finds_the_hyperparameter_that_matters():
    imp, method = I.importance(_importance_rows(), {"v": "lstm"}, method="eta2")
    assert method == "eta2"
    got = dict(zip(imp["hyperparameter"], imp["importance"]))
    assert set(got) == {"learning_rate", "hidden_size"}  # "fused" is a run setting, not searched
    assert got["learning_rate"] > 0.6 and got["hidden_size"] < 0.2


def test_importance_has_a_seeded_bootstrap_interval_around_it():
    imp, _ = I.importance(_importance_rows(), {"v": "lstm"}, method="eta2")
    assert (imp["low"] <= imp["importance"] + 1e-12).all() and (imp["importance"] <= imp["high"] + 1e-12).all()
    lr = imp.set_index("hyperparameter").loc["learning_rate"]
    assert 0.3 < lr["low"] < lr["high"] <= 1.0
    again, _ = I.importance(_importance_rows(), {"v": "lstm"}, method="eta2")
    pd.testing.assert_frame_equal(imp, again)
    none, _ = I.importance(_importance_rows(), {"v": "lstm"}, method="eta2", resamples=0)
    assert none["low"].isna().all() and (none["importance"] == imp["importance"]).all()


def test_importance_counts_configurations_not_framework_replicates():
    """The same 40 configurations run in two frameworks are 40 samples, not 80: the same numbers as one
    framework alone."""
    one, _ = I.importance(_importance_rows(), {"v": "lstm"}, method="eta2")
    both, _ = I.importance(_importance_rows(frameworks=("torch", "tf")), {"v": "lstm"}, method="eta2")
    assert set(both["configurations"]) == {40}
    pd.testing.assert_frame_equal(one, both)


@pytest.mark.skipif(not I.fanova_available(), reason="Optuna's fANOVA needs scikit-learn, which is not installed")
def test_importance_fanova_finds_the_hyperparameter_that_matters():
    imp, method = I.importance(_importance_rows(), {"v": "lstm"}, method="fanova", resamples=4)
    got = dict(zip(imp["hyperparameter"], imp["importance"]))
    assert method == "fanova" and got["learning_rate"] > 0.7 and got["hidden_size"] < 0.2
    assert imp["low"].notna().all()
    again, _ = I.importance(_importance_rows(), {"v": "lstm"}, method="fanova", resamples=4)
    pd.testing.assert_frame_equal(imp, again)  # seeded


def test_importance_needs_enough_configurations():
    imp, _ = I.importance(_importance_rows(5), {"v": "lstm"}, method="eta2")
    assert imp.empty


def test_importance_by_task_orders_the_means():
    imp = pd.DataFrame({"task": ["a"] * 4, "length": [1, 1, 2, 2], "family": ["f"] * 4,
                        "hyperparameter": ["lr", "h", "lr", "h"], "importance": [0.6, 0.1, 0.4, 0.3]})  # fmt: skip
    out = I.importance_by_task(imp)
    assert list(out["hyperparameter"]) == ["lr", "h"] and out["importance"].tolist() == pytest.approx([0.5, 0.2])
