"""Simulated studies whose truth is known: the verdict engine's error rate and power
(``python -m harness.analysis.simulated_studies``, ``make error-rates``; the tests run small versions).

A simulated study has the shape of a real one in one framework: ``blocks`` task-length blocks, a
baseline and ``variants`` other variants, ``n`` configurations per block, every variant trained on the
same configurations. Configuration k of a block has a difficulty z_k that every variant shares (the
same learning rate, hidden size and data: what makes the design paired), and each trial its own noise:

    log metric = σ_config · z_k + σ_interaction · u_vk + effect(variant, block) + σ_trial · ε,
    z_k, u_vk, ε ~ N(0, 1) independent,   solved  ⇔  log metric < 0,   lower is better,

where u_vk is what variant v does differently at configuration k (shared by its ``replicates`` trials of
k, seeds k + r · SEED_STRIDE). With replicates and σ_interaction > 0 a configuration's trials are
correlated, and a test that counted them as independent units would find differences that are not there;
the engine's tests take configurations as units, which the tests check on such studies.

The metrics are log-normal (skewed, with a long right tail, like the tasks' MSEs) and the baseline
solves half its trials. A **null** study has every effect 0: each significant verdict is false. A
**planted** study gives the first ``planted`` variants of every block an effect, the rest 0.

Measured over many studies (each study one family: it is one "framework" of the engine's input):

* ``error_rate``: the share of null studies with at least one significant verdict (the family-wise
  error rate; under a complete null it is also the false discovery rate Benjamini-Hochberg controls).
  The engine is calibrated when it stays at or below the plan's alpha within simulation error.
* ``detection_rate``: the share of planted comparisons the engine finds in the planted direction.

The effect that moves a solved rate from 1/2 to 1/2 + Δ is ``solved_effect(Δ)``; the smallest Δ the
design detects with the plan's power is ``harness.analysis.power.detectable_difference``, which is what a
"no significant difference" verdict promises. Benchmarks, not tests: the tests assert the bounds on a
few hundred studies; this command measures every plan on more, and prints its table for the docs.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.comparisons import compare_with_baseline
from harness.analysis.power import detectable_difference
from harness.suites.analysis_plan import AnalysisPlan
from harness.suites.suite import SEED_STRIDE


@dataclass(frozen=True)
class Design:
    """The shape of one simulated study and its noise (log-metric units)."""

    blocks: int = 2
    variants: int = 4
    n: int = 20
    sigma_config: float = 1.0
    sigma_trial: float = 0.5
    replicates: int = 1
    sigma_interaction: float = 0.0

    @property
    def comparisons(self) -> int:
        """m: the comparisons of one study, its family under ``family = "study"``."""
        return self.blocks * self.variants


def solved_effect(difference: float, design: Design) -> float:
    """The log-metric effect that moves the solved rate from 1/2 to 1/2 + ``difference``:
    P(solved) = Φ(−effect / s) with s = √(σ_config² + σ_interaction² + σ_trial²)."""
    from scipy.stats import norm

    s = math.hypot(design.sigma_config, design.sigma_interaction, design.sigma_trial)
    return float(-s * norm.ppf(0.5 + difference))


def simulate(design: Design, studies: int, effect: float = 0.0, planted: int = 0, seed: int = 0) -> pd.DataFrame:
    """``studies`` simulated studies as one trials frame in the engine's shape (each study its own
    ``framework``, "s0", "s1", ...): baseline "v" and variants "x0", "x1", ...; the first ``planted`` of
    them get ``effect`` in every block. Seeded: the same arguments give the same frame."""
    rng = np.random.default_rng(seed)
    names = ["v", *[f"x{i}" for i in range(design.variants)]]
    shape = (studies, design.blocks, len(names), design.n, design.replicates)
    z = rng.standard_normal((studies, design.blocks, 1, design.n, 1))  # shared by every variant of a configuration
    u = rng.standard_normal((studies, design.blocks, len(names), design.n, 1))  # by a variant's replicates
    effects = np.array([0.0] + [effect if i < planted else 0.0 for i in range(design.variants)])
    noise = rng.standard_normal(shape)
    log_metric = (design.sigma_config * z + design.sigma_interaction * u + effects[None, None, :, None, None]
                  + design.sigma_trial * noise)  # fmt: skip
    study, block, variant, k, r = np.meshgrid(*(np.arange(d) for d in shape), indexing="ij")
    flat = log_metric.ravel()
    return pd.DataFrame({
        "task": "simulated", "length": block.ravel(), "framework": [f"s{i}" for i in study.ravel()],
        "variant": np.array(names)[variant.ravel()], "seed": k.ravel() + r.ravel() * SEED_STRIDE,
        "test_metric": np.exp(flat), "solved": flat < 0, "finished": True, "has_metric": True,
        "higher_is_better": False,
    })  # fmt: skip


def verdicts(trials: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    """The engine's comparisons of every simulated study (all trials; no bootstrap intervals)."""
    out = compare_with_baseline(trials, trials.iloc[0:0], "v", plan=plan, intervals=False)
    return out[out["selection"] == "all"]


def error_rate(design: Design, plan: AnalysisPlan, studies: int, seed: int = 0,
               corrected: bool = True) -> float:  # fmt: skip
    """The share of null studies with at least one significant verdict (family-wise error rate);
    ``corrected=False`` counts the primary test's raw p below alpha instead (what no correction gives)."""
    c = verdicts(simulate(design, studies, seed=seed), plan)
    significant = c["direction"].isin(["better", "worse"]) if corrected else c["p"] < plan.alpha
    return float(significant.groupby(c["framework"]).any().mean())


def detection_rate(design: Design, plan: AnalysisPlan, studies: int, effect: float, planted: int,
                   seed: int = 0) -> float:  # fmt: skip
    """The share of planted comparisons found significant in the planted direction (a negative effect
    lowers the metric: "better")."""
    c = verdicts(simulate(design, studies, effect=effect, planted=planted, seed=seed), plan)
    planted_names = {f"x{i}" for i in range(planted)}
    hits = c.loc[c["variant"].isin(planted_names), "direction"] == ("better" if effect < 0 else "worse")
    return float(hits.mean())


def promised_difference(design: Design, plan: AnalysisPlan) -> float:
    """The difference in solved rate from 1/2 the power calculation promises to detect in this design:
    ``detectable_difference`` at n per side and the strictest threshold of its family, alpha / m."""
    m = design.comparisons if plan.family == "study" else design.variants
    return detectable_difference(0.5, design.n, design.n, plan.alpha / m, plan.power, paired=plan.test == "paired")


PLANS = {
    "paired Wilcoxon, Holm over the study (default)": AnalysisPlan(),
    "paired, Benjamini-Hochberg over the study": AnalysisPlan(correction="bh"),
    "paired McNemar on solved, Holm over the study": AnalysisPlan(primary="solved"),
    "Mann-Whitney U (unpaired), Holm over the study": AnalysisPlan(test="unpaired"),
    "Welch's t, Holm over the study": AnalysisPlan(test="welch"),
    "paired Wilcoxon, Holm per block": AnalysisPlan(family="block"),
    "Welch's t, Holm per block (Greff et al.)": AnalysisPlan(test="welch", family="block"),
}
UNCORRECTED = "paired Wilcoxon, no correction (not offered: shown for scale)"


def table(design: Design, studies: int, seed: int = 0) -> pd.DataFrame:
    """Per plan: the null family-wise error rate with its binomial standard error, the detection rate
    of a metric shift (a log-metric effect of −0.5 on half the variants) and of the promised solved-rate
    difference (the same half; NaN where the design promises none), each over ``studies`` studies, all
    by the plan's primary test."""
    rows = []
    for name, plan in PLANS.items():
        fwer = error_rate(design, plan, studies, seed)
        delta = promised_difference(design, plan)
        solved = (detection_rate(design, plan, studies, solved_effect(delta, design), design.variants // 2, seed + 2)
                  if math.isfinite(delta) else float("nan"))  # fmt: skip
        rows.append({
            "plan": name, "fwer": fwer, "fwer_se": math.sqrt(max(fwer * (1 - fwer), 1e-12) / studies),
            "shift_detected": detection_rate(design, plan, studies, -0.5, design.variants // 2, seed + 1),
            "promised_solved_difference": delta, "solved_detected": solved,
        })  # fmt: skip
    fwer = error_rate(design, AnalysisPlan(), studies, seed, corrected=False)
    rows.append({"plan": UNCORRECTED, "fwer": fwer, "fwer_se": math.sqrt(max(fwer * (1 - fwer), 1e-12) / studies)})
    return pd.DataFrame(rows)


#: replicates that nearly repeat each other (σ_trial small) with a variant x configuration effect: each
#: configuration's two trials are almost one observation, the hardest case for a test that counts trials
REPLICATED = Design(blocks=1, n=20, replicates=2, sigma_config=0.0, sigma_interaction=1.0, sigma_trial=0.1)


def unit_error_rates(design: Design, studies: int, seed: int = 0) -> pd.DataFrame:
    """Per test, the share of null studies with any significant verdict (Holm over the study) when the
    test takes configurations as units (``engine``: the verdict engine's p-values) and when it takes every
    trial as one (``trials``: what the engine must not do, computed here with the same tests on the
    trials, McNemar on the trial pairs). The gap is what counting replicates as units costs."""
    from harness.analysis import statistics as S

    trials = simulate(design, studies, seed=seed)
    c = verdicts(trials, AnalysisPlan())
    by_trial: dict[str, list[bool]] = {t: [] for t in ("mannwhitney", "welch", "mcnemar", "fisher")}
    for _, study in trials.groupby("framework"):
        p: dict[str, list[float]] = {t: [] for t in by_trial}
        for _, block in study.groupby("length"):
            base = block[block["variant"] == "v"].sort_values("seed")
            for variant, x in block.groupby("variant"):
                if variant == "v":
                    continue
                x = x.sort_values("seed")
                p["mannwhitney"].append(S.rank_test(x["test_metric"], base["test_metric"]))
                p["welch"].append(S.welch(x["test_metric"], base["test_metric"]).p)
                p["mcnemar"].append(S.mcnemar_test(x["solved"], base["solved"]))
                p["fisher"].append(S.fisher_test(int(x["solved"].sum()), len(x), int(base["solved"].sum()), len(base)))
        for t in by_trial:
            by_trial[t].append(bool((S.correct(np.array(p[t]), "holm") < 0.05).any()))
    rows = []
    for t in ("wilcoxon", "mannwhitney", "welch", "mcnemar", "fisher"):
        significant = c[f"p_adjusted_{t}"] < 0.05
        rows.append({"test": t, "engine": float(significant.groupby(c["framework"]).any().mean()),
                     "trials": float(np.mean(by_trial[t])) if t in by_trial else float("nan")})  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.analysis.simulated_studies", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--studies", type=int, default=200, help="simulated studies per plan and measure (200)")
    parser.add_argument("--n", type=int, default=20, help="configurations per block (20, as greff)")
    parser.add_argument("--replicates", type=int, default=2, help="trials per configuration and variant (2, as "
                        "greff)")
    parser.add_argument("--interaction", type=float, default=0.5, help="σ_interaction, the spread of what a "
                        "variant does differently at a configuration, shared by its replicates (0.5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    design = Design(n=args.n, replicates=args.replicates, sigma_interaction=args.interaction)
    start = time.perf_counter()
    out = table(design, args.studies, args.seed)
    print(f"{args.studies} simulated studies per plan and measure; {design}; alpha = 0.05, m = "
          f"{design.comparisons} comparisons per study; {time.perf_counter() - start:.0f} s")
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    start = time.perf_counter()
    units = unit_error_rates(REPLICATED, args.studies, args.seed)
    print(f"\nnull family-wise error rate by unit, {args.studies} studies of {REPLICATED}, Holm over "
          f"m = {REPLICATED.comparisons}; {time.perf_counter() - start:.0f} s")
    print(units.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
