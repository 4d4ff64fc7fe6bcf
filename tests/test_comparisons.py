"""The verdict engine (``harness.analysis.comparisons``): every variant against the baseline as the analysis plan
says: pairing by seed, the primary test and its alternatives, the correction's family, effects, power."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_analysis import trials  # a trials frame as the store gives it, from a few fields per row

from harness.analysis import statistics as S
from harness.analysis import study as A
from harness.analysis.comparisons import alternative_tests, compare_with_baseline, primary_test
from harness.analysis.power import detectable_difference
from harness.suites.analysis_plan import AnalysisPlan

WELCH_PER_BLOCK = AnalysisPlan(test="welch", family="block")  # Greff et al.'s test, for comparison with them


def _all(comp: pd.DataFrame) -> pd.DataFrame:
    return comp[comp["selection"] == "all"]


# ------------------------------------------------------------------------------------------------------
# Welch and the families of the correction
# ------------------------------------------------------------------------------------------------------
def test_welch_per_block_applies_holm_across_the_variants_of_a_block():
    base = [1, 2, 3, 4, 5]
    worse = [2, 4, 6, 8, 10, 12]  # Welch's p = 0.0493 alone
    rows = [{"variant": "v", "test_metric": x, "val_metric": x} for x in base]
    rows += [{"variant": "nfg", "test_metric": x, "val_metric": x} for x in worse]
    df = trials(rows)
    alone = _all(compare_with_baseline(df, A.select_top(df), "v", plan=WELCH_PER_BLOCK)).iloc[0]
    assert alone["test"] == "welch" and alone["p_adjusted"] == pytest.approx(0.0492843, rel=1e-5)
    assert alone["direction"] == "worse"  # MSE: higher is worse
    # a second variant equal to the baseline (p = 1) doubles the smaller p: 0.0986 > 0.05
    df2 = trials(rows + [{"variant": "cifg", "test_metric": x, "val_metric": x} for x in base])
    comp2 = _all(compare_with_baseline(df2, A.select_top(df2), "v", plan=WELCH_PER_BLOCK))
    nfg = comp2[comp2["variant"] == "nfg"].iloc[0]
    assert nfg["p_adjusted"] == pytest.approx(2 * 0.0492843, rel=1e-5) and nfg["family_size"] == 2
    assert nfg["direction"] == S.SAME
    # accuracy (higher is better): the same numbers make nfg better
    df3 = trials([{**r, "higher_is_better": 1, "metric": "accuracy"} for r in rows])
    comp3 = _all(compare_with_baseline(df3, A.select_top(df3), "v", plan=WELCH_PER_BLOCK))
    assert comp3.iloc[0]["direction"] == "better"


def _three_blocks() -> pd.DataFrame:
    base, worse = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10, 12]  # Welch's p = 0.0493 in each block
    rows = []
    for length in (10, 20, 40):
        rows += [{"length": length, "variant": "v", "test_metric": x, "val_metric": x} for x in base]
        rows += [{"length": length, "variant": "nfg", "test_metric": x, "val_metric": x} for x in worse]
    return trials(rows)


def test_the_study_family_corrects_across_tasks_and_lengths_and_the_block_family_does_not():
    """Three blocks with p = 0.0493 each: per block each is a family of one and stays significant; over
    the study Holm multiplies the smallest by 3 (0.148) and none is."""
    df = _three_blocks()
    block = _all(compare_with_baseline(df, A.select_top(df), "v", plan=WELCH_PER_BLOCK))
    assert block["p_adjusted"].to_numpy() == pytest.approx([0.0492843] * 3, rel=1e-5)
    assert list(block["direction"]) == ["worse"] * 3 and set(block["family_size"]) == {1}
    study = _all(compare_with_baseline(df, A.select_top(df), "v", plan=AnalysisPlan(test="welch")))
    assert study["p_adjusted"].to_numpy() == pytest.approx([3 * 0.0492843] * 3, rel=1e-5)
    assert list(study["direction"]) == [S.SAME] * 3 and set(study["family_size"]) == {3}


def test_each_framework_is_its_own_family():
    df = _three_blocks()
    df = pd.concat([df, df.assign(framework="tf")], ignore_index=True)
    study = _all(compare_with_baseline(df, df.iloc[0:0], "v", plan=AnalysisPlan(test="welch")))
    assert set(study["family_size"]) == {3}  # not 6: a framework's comparisons are one family


def test_benjamini_hochberg_adjusts_like_statsmodels():
    from statsmodels.stats.multitest import multipletests

    df = _three_blocks()
    bh = _all(compare_with_baseline(df, df.iloc[0:0], "v", plan=AnalysisPlan(test="welch", correction="bh")))
    np.testing.assert_allclose(bh["p_adjusted"], multipletests(bh["p"], method="fdr_bh")[1])
    assert list(bh["direction"]) == ["worse"] * 3  # equal p-values: BH leaves them at 0.049


def test_a_top_selection_under_four_trials_is_not_tested_and_says_so():
    """10 trials per cell: the top 10 % is one trial, which says nothing; 40 per cell: four, tested."""
    rng = np.random.default_rng(0)
    for n, expected in ((10, S.TOO_FEW_SELECTED), (40, None)):
        rows = [{"variant": v, "test_metric": x, "val_metric": x}
                for v, shift in (("v", 0.0), ("nfg", 5.0)) for x in rng.normal(shift, 1.0, n)]  # fmt: skip
        df = trials(rows)
        top = compare_with_baseline(df, A.select_top(df), "v")
        top = top[top["selection"] == "top"].iloc[0]
        if expected:
            assert top["direction"] == expected and math.isnan(top["p_adjusted"]) and top["n"] == 1
        else:
            assert top["n"] == 4 and top["direction"] == "worse" and not top["paired"]


# ------------------------------------------------------------------------------------------------------
# pairing, the primary test and its alternatives
# ------------------------------------------------------------------------------------------------------
def _paired_rows(variant_metric, base_metric, variant="nfg", solved_below=0.05) -> list[dict]:
    """Configuration k (seed k) of both variants; nfg has no forget-gate bias in its hyperparameters, as
    in the catalogue, and still pairs on the seed."""
    rows = []
    for k, (x, b) in enumerate(zip(variant_metric, base_metric)):
        hp = {"learning_rate": 10 ** -(2 + k % 3), "hidden_size": 32}
        rows.append({"variant": "v", "seed": k, "test_metric": b, "val_metric": b, "solved": int(b < solved_below),
                     "hparams": json.dumps({**hp, "forget_bias": 1.0})})  # fmt: skip
        rows.append({"variant": variant, "seed": k, "test_metric": x, "val_metric": x,
                     "solved": int(x < solved_below), "hparams": json.dumps(hp)})  # fmt: skip
    return rows


def test_pairs_by_seed_use_the_signed_rank_and_mcnemar_tests():
    rng = np.random.default_rng(4)
    base = rng.lognormal(-3, 1.0, 16)
    worse = base * rng.lognormal(0.8, 0.3, 16)  # every configuration gets worse, by a varying factor
    df = trials(_paired_rows(worse, base))
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v")).iloc[0]
    assert bool(c["paired"]) and c["pairs"] == 16 and c["test"] == "wilcoxon"
    assert c["p_wilcoxon"] == pytest.approx(stats.wilcoxon(worse - base).pvalue)
    b = int(((worse < 0.05) & ~(base < 0.05)).sum())
    d = int((~(worse < 0.05) & (base < 0.05)).sum())
    expected_mcnemar = min(1.0, 2 * stats.binom.cdf(min(b, d), b + d, 0.5)) if b + d else 1.0
    assert c["p_mcnemar"] == pytest.approx(expected_mcnemar)
    assert c["p_mannwhitney"] == pytest.approx(stats.mannwhitneyu(worse, base).pvalue)
    assert c["direction"] == "worse" and c["shift"] > 0
    d = worse - base
    assert c["shift"] == pytest.approx(np.median([(d[i] + d[j]) / 2 for i in range(16) for j in range(i, 16)]))


def test_repeated_seeds_fall_back_to_the_unpaired_tests():
    rng = np.random.default_rng(5)
    base, worse = rng.lognormal(-3, 1, 8), rng.lognormal(-2, 1, 8)
    rows = [{**r, "seed": 0} for r in _paired_rows(worse, base)]  # every trial seed 0: nothing identifies a pair
    df = trials(rows)
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v")).iloc[0]
    assert not c["paired"] and c["test"] == "mannwhitney" and math.isnan(c["p_wilcoxon"])
    assert c["p"] == pytest.approx(stats.mannwhitneyu(worse, base).pvalue)


def test_a_verdict_welch_does_not_share_is_not_robust():
    """nfg on continual adding in miniature: bimodal MSEs, the variant solving 3 of 20 against 14. The
    rank tests see it; Welch's t on the means, swamped by a few huge errors on the baseline's side, does
    not: the verdict stands (the primary is the paired rank test) but is marked as not robust."""
    base = np.array([0.005] * 14 + [0.08, 0.09, 0.1, 0.12, 40.0, 60.0])
    worse = np.array([0.004] * 3 + list(np.linspace(0.05, 0.09, 11)) + [0.09, 0.1, 0.11, 0.13, 0.1, 0.1])
    df = trials(_paired_rows(worse, base, solved_below=0.01))
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v")).iloc[0]
    assert c["direction"] == "worse" and c["direction_welch"] == S.SAME
    assert c["alternatives"] == 3 and c["agree"] < 3 and not c["robust"]


def test_solved_primary_uses_mcnemar_on_pairs_and_fisher_without():
    assert primary_test(AnalysisPlan(primary="solved"), paired=True) == "mcnemar"
    assert primary_test(AnalysisPlan(primary="solved"), paired=False) == "fisher"
    assert primary_test(AnalysisPlan(), paired=False) == "mannwhitney"
    assert primary_test(AnalysisPlan(test="welch"), paired=True) == "welch"
    assert alternative_tests("wilcoxon", paired=True) == ["mannwhitney", "welch", "mcnemar"]
    assert alternative_tests("fisher", paired=False) == ["mannwhitney", "welch"]
    base = np.array([0.001] * 14 + [0.5] * 6)
    worse = np.array([0.001] * 2 + [0.5] * 18)
    df = trials(_paired_rows(worse, base, solved_below=0.01))
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v", plan=AnalysisPlan(primary="solved"))).iloc[0]
    assert c["test"] == "mcnemar" and c["p"] == pytest.approx(2 * 0.5**12)  # 12 discordant pairs, all one way
    assert c["direction"] == "worse" and c["solved_difference"] == pytest.approx(-0.6)


def test_a_null_verdict_states_what_it_could_have_detected():
    rng = np.random.default_rng(6)
    base = rng.lognormal(-3, 1, 20)
    same = base * rng.lognormal(0, 0.05, 20)
    df = trials(_paired_rows(same, base))
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v")).iloc[0]
    assert c["direction"] == S.SAME
    rate = c["solved_baseline"] / c["finished_baseline"]
    assert c["detectable"] == pytest.approx(detectable_difference(rate, 20, 20, 0.05, 0.8, paired=True), nan_ok=True)
    worse = _all(compare_with_baseline(trials(_paired_rows(base * 5, base)), df.iloc[0:0], "v")).iloc[0]
    assert worse["direction"] == "worse" and math.isnan(worse["detectable"])  # only null verdicts state it


def test_a_configurations_replicate_pairs_count_once_in_the_metric_test():
    """Two replicate seeds (k and k + SEED_STRIDE) of 12 configurations: 24 pairs, but the signed-rank
    test and the shift take the 12 configurations' mean differences, since a configuration's replicates
    share its hyperparameters (treating them as 24 independent pairs overstates the evidence)."""
    from harness.suites.suite import SEED_STRIDE

    rng = np.random.default_rng(7)
    base = rng.lognormal(-3, 1.0, 24)
    worse = base * rng.lognormal(0.3, 0.5, 24)
    rows = _paired_rows(worse, base, solved_below=0.06)
    for r in rows:  # pair i -> configuration i % 12, replicate i // 12
        r["seed"] = r["seed"] % 12 + (r["seed"] // 12) * SEED_STRIDE
    df = trials(rows)
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v")).iloc[0]
    assert (c["pairs"], c["configurations"]) == (24, 12)
    d = (worse - base).reshape(2, 12).mean(axis=0)  # the two replicates of each configuration, averaged
    assert c["p_wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue)
    # every other test takes the same 12 units: each side's configuration means and solved counts
    mx, mb = worse.reshape(2, 12).mean(axis=0), base.reshape(2, 12).mean(axis=0)
    assert (c["units"], c["units_baseline"]) == (12, 12)
    assert c["p_mannwhitney"] == pytest.approx(stats.mannwhitneyu(mx, mb).pvalue)
    assert c["p_welch"] == pytest.approx(stats.ttest_ind(mx, mb, equal_var=False).pvalue)
    sx, sb = (worse < 0.06).reshape(2, 12).sum(axis=0), (base < 0.06).reshape(2, 12).sum(axis=0)
    assert c["p_mcnemar"] == pytest.approx(S.clustered_sign_test(sx - sb)) == 1.0  # 0.5 over the 24 trial pairs
    assert c["p_fisher"] == pytest.approx(S.clustered_fisher_test(sx, sb, [2] * 12, [2] * 12))
    assert c["p_fisher"] != pytest.approx(S.fisher_test(sx.sum(), 24, sb.sum(), 24))  # not the 24 trials a side


def test_configurations_with_fewer_finished_trials_are_not_compared_with_fuller_ones():
    """The variant has both replicates of 12 configurations, the baseline only the first (its second still
    running): equal solved rates, but the variant's configurations count up to 2 solved and the
    baseline's up to 1. The solved test compares configurations of equal size only, so it finds nothing
    (summing counts of unequal size would call the variant better)."""
    from harness.suites.suite import SEED_STRIDE

    rows = []
    for k in range(12):
        rows.append({"variant": "v", "seed": k, "test_metric": 0.01 if k < 6 else 0.2, "val_metric": 0.1,
                     "solved": int(k < 6)})  # fmt: skip
        for r in range(2):
            rows.append({"variant": "nfg", "seed": k + r * SEED_STRIDE, "test_metric": 0.01 if k < 6 else 0.2,
                         "val_metric": 0.1, "solved": int(k < 6)})  # fmt: skip
    df = trials(rows)
    c = _all(compare_with_baseline(df, df.iloc[0:0], "v", plan=AnalysisPlan(primary="solved", test="unpaired")))
    assert c.iloc[0]["p_fisher"] == 1.0 and c.iloc[0]["direction"] == S.SAME


def test_the_primary_p_values_are_corrected_together_when_a_family_mixes_paired_and_unpaired():
    """nfg pairs with v (unique seeds), cifg cannot (its seeds repeat): Wilcoxon for one, Mann-Whitney for
    the other, and Holm over both primary p-values (m = 2), not over each test's own column (m = 1)."""
    rng = np.random.default_rng(8)
    base = rng.lognormal(-3, 1, 12)
    rows = _paired_rows(base * rng.lognormal(0.5, 0.3, 12), base)
    rows += [{**r, "variant": "cifg", "seed": 0} for r in _paired_rows(base * 1.5, base) if r["variant"] == "nfg"]
    c = _all(compare_with_baseline(trials(rows), trials(rows).iloc[0:0], "v")).set_index("variant")
    assert (c.loc["nfg", "test"], c.loc["cifg", "test"]) == ("wilcoxon", "mannwhitney")
    np.testing.assert_allclose(c["p_adjusted"], S.correct(c["p"].to_numpy(float), "holm"))
    assert set(c["family_size"]) == {2}


def test_a_top_selection_of_four_trials_from_two_configurations_is_not_tested():
    """Four selected trials a side, but each the two replicates of two configurations: two units, too few
    for a rank test; four configurations of one replicate each are tested."""
    from harness.suites.suite import SEED_STRIDE

    def selection(seeds):
        rows = [{"variant": v, "seed": s, "test_metric": x + (5.0 if v == "nfg" else 0.0), "val_metric": 0.1}
                for v in ("v", "nfg") for s, x in zip(seeds, (0.1, 0.2, 0.3, 0.4))]  # fmt: skip
        df = trials(rows)
        top = compare_with_baseline(df, df, "v")  # the four trials are the selection
        return top[top["selection"] == "top"].iloc[0]

    replicated = selection([0, SEED_STRIDE, 1, 1 + SEED_STRIDE])
    assert replicated["direction"] == S.TOO_FEW_SELECTED and replicated["units"] == 2
    single = selection([0, 1, 2, 3])
    assert single["direction"] != S.TOO_FEW_SELECTED and single["units"] == 4
