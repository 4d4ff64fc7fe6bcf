"""The statistics tested as statistics: simulated studies whose truth is known (``harness.analysis.simulated_studies``).

Over many null studies the verdict engine's family-wise error rate stays at or below alpha; planted
differences of the size the power calculation promises are found at least as often as promised; and a
shift that only the pairing can see is found. Removing the correction breaks the first (its rate is
0.3 without it), breaking the pairing the third (the unpaired test finds about 2 %). The bounds allow
2.33 binomial standard errors (one-sided 99 %); ``make error-rates`` measures every plan on more studies.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.analysis.simulated_studies import (
    Design,
    detection_rate,
    error_rate,
    promised_difference,
    simulate,
    solved_effect,
)
from harness.suites.analysis_plan import AnalysisPlan

DESIGN = Design()  # 2 blocks × 4 variants against the baseline (m = 8), 20 configurations per block
Z = 2.33  # one-sided 99 %


def _upper(p: float, n: int) -> float:
    return p + Z * math.sqrt(p * (1 - p) / n)


def _lower(p: float, n: int) -> float:
    return p - Z * math.sqrt(p * (1 - p) / n)


def test_a_simulated_study_has_the_designs_shape_and_is_seeded():
    df = simulate(DESIGN, studies=3, seed=1)
    assert len(df) == 3 * DESIGN.blocks * (DESIGN.variants + 1) * DESIGN.n
    assert df.groupby(["framework", "length", "variant"])["seed"].nunique().eq(DESIGN.n).all()
    assert df.equals(simulate(DESIGN, studies=3, seed=1))


def test_solved_effect_moves_the_solved_rate_as_asked():
    big = Design(n=4000, variants=1, blocks=1)
    df = simulate(big, studies=1, effect=solved_effect(0.3, big), planted=1, seed=2)
    rates = df.groupby("variant")["solved"].mean()
    assert rates["v"] == pytest.approx(0.5, abs=0.025) and rates["x0"] == pytest.approx(0.8, abs=0.025)


@pytest.mark.parametrize("plan", [AnalysisPlan(), AnalysisPlan(correction="bh")], ids=["holm", "bh"])
def test_null_studies_keep_the_family_wise_error_at_alpha(plan):
    """100 null studies of m = 8 comparisons: at most α (+ simulation error) of them with any significant
    verdict. Under a complete null the false discovery rate BH controls is this same rate."""
    studies = 100
    assert error_rate(DESIGN, plan, studies, seed=10) <= _upper(plan.alpha, studies)


def test_without_the_correction_the_error_rate_is_far_above_alpha():
    """The check above can fail: the same studies judged by the raw p-values err in about a third."""
    assert error_rate(DESIGN, AnalysisPlan(), 60, seed=10, corrected=False) > 0.15


@pytest.mark.parametrize("plan, n, replicates", [
    (AnalysisPlan(primary="solved", test="unpaired"), 20, 1), (AnalysisPlan(primary="solved"), 30, 1),
    (AnalysisPlan(primary="solved", test="unpaired"), 20, 2), (AnalysisPlan(primary="solved"), 30, 2),
], ids=["fisher", "mcnemar", "fisher-replicated", "mcnemar-replicated"])  # fmt: skip
def test_planted_solved_differences_are_found_at_the_promised_size(plan, n, replicates):
    """Two of four variants per block solve 1/2 + Δ where the baseline solves 1/2, Δ the difference the
    power calculation promises to detect with 80 % power at α/m: found in at least 80 % of the cases. No
    configuration noise (σ_config = 0): the trials are independent, as the calculation assumes, so the
    test is tight (correlated pairs would give McNemar power to spare and hide a wrong α). Replicated:
    two seeds per configuration sharing a variant x configuration effect, where the promise counts one
    trial per configuration and the clustered tests must keep it."""
    design = Design(n=n, sigma_config=0.0, replicates=replicates, sigma_interaction=0.5 if replicates > 1 else 0.0)
    delta = promised_difference(design, plan)
    assert 0 < delta < 0.5
    studies = 40
    found = detection_rate(design, plan, studies, solved_effect(delta, design), planted=2, seed=11)
    assert found >= _lower(plan.power, studies * design.blocks * 2)


def test_pairing_finds_a_shift_the_unpaired_test_cannot_see():
    """A log-metric shift of 0.8 against configuration noise of 1.0: the paired signed-rank test finds it
    in most planted comparisons, Mann-Whitney on the same trials in few. A broken pairing (the engine
    falling back to the unpaired test, or matching the wrong trials) fails this test."""
    studies = 40
    paired = detection_rate(DESIGN, AnalysisPlan(), studies, -0.8, planted=2, seed=12)
    unpaired = detection_rate(DESIGN, AnalysisPlan(test="unpaired"), studies, -0.8, planted=2, seed=12)
    assert paired >= 0.8 and unpaired <= 0.3
    assert np.isfinite(paired) and np.isfinite(unpaired)



def test_replicates_are_not_counted_as_independent_units_by_any_test():
    """On null studies whose two replicates nearly repeat each other, every test of the engine stays at α
    (configurations as units); the same tests counting trials err far more often, so the check can fail."""
    from harness.analysis.simulated_studies import REPLICATED, unit_error_rates

    studies = 150
    rates = unit_error_rates(REPLICATED, studies, seed=5).set_index("test")
    assert (rates["engine"] <= _upper(0.05, studies)).all(), rates
    assert rates.loc["mcnemar", "trials"] > _upper(0.05, studies), rates
    assert rates.loc["mannwhitney", "trials"] > _upper(0.05, studies), rates


def test_a_replicated_study_has_one_seed_per_replicate_of_each_configuration():
    from harness.suites.suite import split_seed

    design = Design(n=5, replicates=3, sigma_interaction=0.5)
    df = simulate(design, studies=2, seed=1)
    assert len(df) == 2 * design.blocks * (design.variants + 1) * 5 * 3
    k_r = np.array([split_seed(s) for s in df["seed"]])
    assert set(k_r[:, 0]) == set(range(5)) and set(k_r[:, 1]) == {0, 1, 2}
    # replicates of one configuration share the variant's interaction: they correlate
    one = df[(df["framework"] == "s0") & (df["length"] == 0) & (df["variant"] == "x0")]
    logs = np.log(one.sort_values("seed")["test_metric"].to_numpy()).reshape(3, 5).T  # seed = k + r * stride
    assert np.corrcoef(logs[:, 0], logs[:, 1])[0, 1] > 0.5
