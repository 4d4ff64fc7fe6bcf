"""The report's statistics against hand-computed and published references: Welch's t-test, Holm's and
Benjamini-Hochberg's corrections, verdicts, the tests and effects of a comparison with the baseline,
exact binomial intervals, the paired framework test, the ranking with a configuration's framework trials
counted once, and hyperparameter importance over configurations with its bootstrap."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_analysis import trials  # a trials frame as the store gives it, from a few fields per row

from harness.analysis import importance as I
from harness.analysis import statistics as S
from harness.analysis import study as A


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


def test_correct_matches_statsmodels_for_holm_and_benjamini_hochberg():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.001, 0.04, 0.03, 0.2, 0.011, 0.5, 0.04])
    np.testing.assert_allclose(S.correct(p, "holm"), multipletests(p, method="holm")[1])
    np.testing.assert_allclose(S.correct(p, "bh"), multipletests(p, method="fdr_bh")[1])
    out = S.correct([0.01, np.nan, 0.02], "bh")  # NaN does not count in m = 2
    assert math.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.02, 0.02])


# ------------------------------------------------------------------------------------------------------
# the tests against the baseline, one by one (harness.analysis.comparisons runs them)
# ------------------------------------------------------------------------------------------------------
def test_rank_and_signed_rank_tests_match_scipy():
    x, y = [0.3, 0.1, 0.5, 0.9, 0.2, 0.7], [0.6, 0.8, 1.2, 1.0, 0.95, 1.1]
    assert S.rank_test(x, y) == pytest.approx(stats.mannwhitneyu(x, y).pvalue)
    d = np.array(x) - np.array(y)
    assert S.signed_rank_test(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    assert S.rank_test([1, 1, 1], [1, 1]) == 1.0 and math.isnan(S.rank_test([1.0], [1, 2]))
    assert math.isnan(S.signed_rank_test([0.5]))


def test_mcnemar_counts_only_the_discordant_pairs():
    """8 pairs where x solved and y not, 1 the other way, 11 concordant: the exact p is 2 · P(Bin(9, 1/2)
    ≤ 1) = 2 · 10/512, whatever the concordant pairs."""
    x = [True] * 8 + [False] + [True] * 5 + [False] * 6
    y = [False] * 8 + [True] + [True] * 5 + [False] * 6
    assert S.mcnemar_test(x, y) == pytest.approx(2 * 10 / 512)
    assert S.mcnemar_test([True, False], [True, False]) == 1.0  # no discordant pair
    assert math.isnan(S.mcnemar_test([], []))


def _all_signs(d: list[int]) -> float:
    """The sign-flip p by enumerating every sign pattern (the definition, for small samples)."""
    import itertools

    observed = abs(sum(d))
    sums = [abs(sum(e * v for e, v in zip(signs, d))) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(s >= observed for s in sums) / len(sums)


def test_the_clustered_sign_test_is_mcnemar_without_replicates_and_the_enumerated_test_with_them():
    rng = np.random.default_rng(3)
    for _ in range(50):
        x, y = rng.random(12) < 0.6, rng.random(12) < 0.3
        d = x.astype(int) - y.astype(int)
        assert S.clustered_sign_test(d) == pytest.approx(S.mcnemar_test(x, y), abs=1e-12)
    for _ in range(30):
        d = rng.integers(-3, 4, size=rng.integers(1, 11)).tolist()
        assert S.clustered_sign_test(d) == pytest.approx(_all_signs(d), abs=1e-12), d
    assert S.clustered_sign_test([2, 2, 2, 2, 2]) == pytest.approx(2 / 32)  # 2 patterns of 32 reach |10|
    assert S.clustered_sign_test([0, 0]) == 1.0 and math.isnan(S.clustered_sign_test([]))
    with pytest.raises(ValueError, match="integer differences"):
        S.clustered_sign_test([0.6, 0.6])
    with pytest.raises(ValueError, match="non-negative"):
        S.clustered_fisher_test([-1, 1], [0, 1])


def test_mcnemar_takes_configurations_as_units_where_they_hold_replicates():
    # 4 configurations x 2 replicates: the variant solves both replicates of every configuration, the
    # baseline none. Counted as 8 independent pairs p = 2/2^8; as 4 configurations p = 2/2^4.
    x, y = [True] * 8, [False] * 8
    assert S.mcnemar_test(x, y) == pytest.approx(2 / 256)
    assert S.mcnemar_test(x, y, configurations=[0, 0, 1, 1, 2, 2, 3, 3]) == pytest.approx(2 / 16)
    assert S.mcnemar_test(x, y, configurations=range(8)) == pytest.approx(2 / 256)  # one pair each


def _all_relabellings(x: list[int], y: list[int]) -> float:
    """The permutation p by enumerating every split of the units (Fisher's two-sided rule)."""
    import itertools
    from collections import Counter

    units = x + y
    sums = Counter(sum(units[i] for i in chosen) for chosen in itertools.combinations(range(len(units)), len(x)))
    total = sum(sums.values())
    observed = sums[sum(x)]
    return sum(c for c in sums.values() if c <= observed) / total


def test_the_clustered_fisher_test_is_fisher_without_replicates_and_the_enumerated_test_with_them():
    rng = np.random.default_rng(4)
    for _ in range(50):
        nx, ny = rng.integers(1, 15, size=2)
        x, y = (rng.random(nx) < 0.7).astype(int), (rng.random(ny) < 0.3).astype(int)
        expected = stats.fisher_exact([[x.sum(), nx - x.sum()], [y.sum(), ny - y.sum()]]).pvalue
        assert S.clustered_fisher_test(x, y) == pytest.approx(expected, rel=1e-9)
    for _ in range(20):
        x, y = (rng.integers(0, 3, size=rng.integers(1, 7)).tolist() for _ in range(2))
        assert S.clustered_fisher_test(x, y) == pytest.approx(_all_relabellings(x, y), rel=1e-9), (x, y)
    assert math.isnan(S.clustered_fisher_test([], [1]))


def test_fisher_matches_scipy():
    assert S.fisher_test(3, 20, 14, 20) == pytest.approx(stats.fisher_exact([[3, 17], [14, 6]]).pvalue)
    assert math.isnan(S.fisher_test(1, 0, 2, 3))


def test_unpaired_solved_difference_is_newcombes_hybrid_score_interval():
    """Newcombe (1998), Table II, example (a): 56/70 against 48/80: 0.2 (0.0524 to 0.3339)."""
    e = S.solved_difference(56, 70, 48, 80)
    assert (e.estimate, e.low, e.high) == pytest.approx((0.2, 0.0524, 0.3339), abs=5e-4)


def test_paired_solved_difference_is_newcombes_square_and_add_interval():
    """Fagerland, Lydersen and Laake (2017), ch. 8, Cavo et al. (2012): a = 59, b = 6, c = 16, d = 80
    (n = 161): −0.0621 (95 % CI −0.1186 to −0.0046), the value the book's R package prints."""
    x = [True] * 59 + [True] * 6 + [False] * 16 + [False] * 80
    y = [True] * 59 + [False] * 6 + [True] * 16 + [False] * 80
    e = S.paired_solved_difference(x, y)
    assert (e.estimate, e.low, e.high) == pytest.approx((-0.0621, -0.1186, -0.0046), abs=5e-5)


def test_paired_solved_difference_with_phi_zero_is_the_unpaired_interval():
    """A table with ad = bc has φ = 0: the paired interval is then the unpaired hybrid score interval."""
    x = [True] * 4 + [True] * 4 + [False] * 2 + [False] * 2  # a = 4, b = 4, c = 2, d = 2: ad = bc = 8
    y = [True] * 4 + [False] * 4 + [True] * 2 + [False] * 2
    paired, unpaired = S.paired_solved_difference(x, y), S.solved_difference(8, 12, 6, 12)
    assert (paired.estimate, paired.low, paired.high) == pytest.approx((unpaired.estimate, unpaired.low, unpaired.high))


def test_shift_is_hodges_lehmann_with_a_seeded_bootstrap_interval():
    rng = np.random.default_rng(3)
    base = rng.normal(0, 1, 30)
    x = base + 0.5 + rng.normal(0, 0.1, 30)
    paired = S.shift(x, base, paired=True)
    d = x - base
    walsh = [(d[i] + d[j]) / 2 for i in range(30) for j in range(i, 30)]
    assert paired.estimate == pytest.approx(np.median(walsh))
    assert paired.low < 0.5 < paired.high and paired.high - paired.low < 0.2  # pairs remove the spread of base
    unpaired = S.shift(x, base, paired=False)
    assert unpaired.estimate == pytest.approx(np.median(np.subtract.outer(x, base)))
    assert unpaired.high - unpaired.low > 2 * (paired.high - paired.low)
    assert S.shift(x, base, paired=True) == paired  # seeded: a report rebuilds exactly
    assert math.isnan(S.shift([1.0], [2.0], paired=True).low)  # one pair: the estimate alone
    assert math.isnan(S.shift(x, base, paired=True, resamples=0).low)


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
