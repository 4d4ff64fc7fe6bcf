"""The statistics tested as statistics: simulated studies whose truth is known (``harness.simulated_studies``).

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

from harness.analysis_plan import AnalysisPlan
from harness.simulated_studies import Design, detection_rate, error_rate, promised_difference, simulate, solved_effect

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


@pytest.mark.parametrize("plan, n", [(AnalysisPlan(primary="solved", test="unpaired"), 20),
                                     (AnalysisPlan(primary="solved"), 30)], ids=["fisher", "mcnemar"])  # fmt: skip
def test_planted_solved_differences_are_found_at_the_promised_size(plan, n):
    """Two of four variants per block solve 1/2 + Δ where the baseline solves 1/2, Δ the difference the
    power calculation promises to detect with 80 % power at α/m: found in at least 80 % of the cases. No
    configuration noise (σ_config = 0): the trials are independent, as the calculation assumes, so the
    test is tight (correlated pairs would give McNemar power to spare and hide a wrong α)."""
    design = Design(n=n, sigma_config=0.0)
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


#: replicates whose trials nearly repeat each other (σ_trial small) and a variant x configuration effect:
#: each configuration's two trials are almost one observation, so counting them as two finds differences
#: that are not there (the trial-counting tests' rates below); taking configurations as units does not
REPLICATED = Design(blocks=1, n=20, replicates=2, sigma_config=0.0, sigma_interaction=1.0, sigma_trial=0.1)


def test_replicates_are_not_counted_as_independent_units_by_any_test():
    from harness import statistics as S
    from harness.simulated_studies import verdicts

    studies = 150
    trials = simulate(REPLICATED, studies, seed=5)
    for plan in (AnalysisPlan(primary="solved"), AnalysisPlan(primary="solved", test="unpaired")):
        c = verdicts(trials, plan)
        for test in ("wilcoxon", "mannwhitney", "welch", "mcnemar", "fisher"):
            rate = c[f"direction_{test}"].isin(["better", "worse"]).groupby(c["framework"]).any().mean()
            assert rate <= _upper(0.05, studies), (plan, test, rate)
    # the same studies, tested trial by trial (what the engine did before it took configurations as units)
    trial_rates = []
    for _, study in trials.groupby("framework"):
        base = study[study["variant"] == "v"].sort_values("seed")
        p = [S.mcnemar_test(x.sort_values("seed")["solved"], base["solved"])
             for v, x in study.groupby("variant") if v != "v"]  # fmt: skip
        trial_rates.append(bool((S.correct(np.array(p), "holm") < 0.05).any()))
    assert np.mean(trial_rates) > _upper(0.05, studies)  # the design would catch a test that counted trials
