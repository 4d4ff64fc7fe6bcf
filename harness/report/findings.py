"""The report's findings: plain sentences that phrase the numbers the analysis computed, one on what the
report covers, the headline findings, one list per section, and the method's paragraphs. Both pages
(``index.html``, ``report.md``) print them unchanged.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.analysis.comparisons import TEST_NAMES as TEST_NAME
from harness.analysis.comparisons import alternative_tests, primary_test
from harness.analysis.equivalence import TOLERANCE
from harness.analysis.importance import RESAMPLES
from harness.analysis.statistics import MIN_SELECTION, NOT_TESTED, SAME
from harness.analysis.study import Analysis, framework_name, trials_for_top
from harness.analysis.verdicts import agreement_summary
from harness.diagnostics.probes import GradientFlow
from harness.report.context import Context
from harness.report.tables import num, pct, pval


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def fw_list(frameworks: list[str]) -> str:
    return _join([framework_name(f) for f in frameworks])


MAX_HEADLINES = 5
MAX_FINDINGS_PER_KIND = 12  # sentences of one kind before '… and N more'


@dataclass
class Findings:
    """The report's sentences: one on what it covers, at most ``MAX_HEADLINES`` headline findings (robust
    verdicts first), and the rest, each in the section whose figures and tables it summarises."""

    coverage: str
    headlines: list[str]
    sections: dict[str, list[str]]

    def all(self) -> list[str]:
        return [self.coverage, *self.headlines, *(s for key in self.sections for s in self.sections[key])]


def findings(an: Analysis, ctx: Context, gradient: GradientFlow | None) -> Findings:
    """Plain sentences that phrase the numbers the analysis computed (``harness.analysis.study``)."""
    sections = {
        "variants": significance_sentences(an) + selection_sentences(an) + failure_sentences(an),
        "ranking": ranking_sentences(an),
        "dependency": dependency_sentences(an),
        "importance": importance_sentences(an) + forget_bias_sentences(an) + marginal_sentences(an),
        "frameworks": replicate_sentences(an) + verdict_sentences(an) + framework_sentences(an),
        "gradient": gradient_sentences(gradient),
    }
    sections = {k: [s for s in v if s] for k, v in sections.items()}
    return Findings(coverage_sentence(an, ctx), headline_findings(an), {k: v for k, v in sections.items() if v})


def headline_findings(an: Analysis) -> list[str]:
    """At most ``MAX_HEADLINES`` sentences: the variants with the most robust significant verdicts (each
    with its strongest comparison's effects, n, test and correction), then how many verdicts hold under
    every alternative test, then what the null verdicts can rule out."""
    c = an.comparisons
    if c.empty or len(an.variants) < 2:
        return []
    c = c[c["selection"] == "all"]
    out = robust_verdict_sentences(an, c, MAX_HEADLINES - 2)
    out += [robustness_sentence(an, c), power_sentence(an, c)]
    return [s for s in out if s][:MAX_HEADLINES]


def _solved_words(r: Any) -> str:
    """``r``: one comparison row as a Series or dict (item access: ``r.median`` would be the Series method)."""
    return (f"solved {r['solved']} of {r['finished']} vs {r['solved_baseline']} of {r['finished_baseline']}, Δ "
            f"{100 * r['solved_difference']:+.0f} points (95 % CI {100 * r['solved_difference_low']:+.0f} to "
            f"{100 * r['solved_difference_high']:+.0f})")  # fmt: skip


def _shift_words(r: Any, metric: str) -> str:
    interval = (f" (95 % CI {num(r['shift_low'], 2)} to {num(r['shift_high'], 2)})"
                if pd.notna(r["shift_low"]) else "")  # fmt: skip
    return (f"median {metric} {num(r['median'], 3)} vs {num(r['median_baseline'], 3)}, shift "
            f"{num(r['shift'], 2)}{interval}")  # fmt: skip


def _n_words(r: Any) -> str:
    """A comparison's n as its tests count it: '40 pairs of 20 configurations', '10 pairs', '20 vs 20
    configurations (40 vs 40 trials)', '12 vs 12 trials'."""
    if r.paired:
        return f"{r.pairs} pairs" + (f" of {r.configurations} configurations" if r.configurations < r.pairs else "")
    if r.units < r.n or r.units_baseline < r.n_baseline:
        return f"{r.units} vs {r.units_baseline} configurations ({r.n} vs {r.n_baseline} trials)"
    return f"{r.n} vs {r.n_baseline} trials"


def robust_verdict_sentences(an: Analysis, c: pd.DataFrame, most: int) -> list[str]:
    """One sentence per variant with robust significant verdicts (every framework that ran reaches it and
    every alternative test agrees), most such cells first: where, and its strongest cell's numbers."""
    sig = c[c["direction"].isin(["better", "worse"]) & c["robust"]]
    if sig.empty:
        return []
    n_fw = c.groupby(["task", "length", "variant"])["framework"].nunique()
    cells = sig.groupby(["variant", "task", "length", "direction"])
    keep = [key for key, g in cells if len(g) == n_fw.get((key[1], key[2], key[0]), 0)]
    if not keep:
        return []
    by_variant: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for variant, task, length, verdict in keep:
        by_variant[(variant, verdict)].append((task, int(length)))
    ranked = sorted(by_variant.items(), key=lambda kv: (-len(kv[1]), an.variants.index(kv[0][0])
                                                         if kv[0][0] in an.variants else 99, kv[0][1]))  # fmt: skip
    out = []
    both = "in every framework" if len(an.frameworks) > 1 else f"in {fw_list(an.frameworks)}"
    for (variant, verdict), where in ranked[:most]:
        cell = pd.Series(list(zip(c["task"], c["length"].astype(int))), index=c.index)
        rows = c[(c["variant"] == variant) & cell.isin(where)]
        r = rows.sort_values(["p_adjusted", "framework"]).iloc[0]
        metric = an.tasks[r.task].metric if r.task in an.tasks else "metric"
        places = _join([f"{t}, T = {T}" for t, T in sorted(where)])
        compared = c.loc[c["variant"] == variant, ["task", "length"]].drop_duplicates().shape[0]
        out.append(
            f"{variant} is {verdict} than {an.baseline} on {places} ({len(where)} of {compared} "
            f"task-length cells), {both} and under every "
            f"alternative test. Strongest: {r.task}, T = {r.length}, {framework_name(r.framework)}: "
            f"{_solved_words(r)}; {_shift_words(r, metric)} (n = {_n_words(r)}, "
            f"adjusted p = {pval(r.p_adjusted)}, {TEST_NAME[r.test]}, "
            f"{an.plan.correction_words(per_framework=False)})."
        )
    return out


def robustness_sentence(an: Analysis, c: pd.DataFrame) -> str:
    """How many verdicts are significant, how many of those and of the null verdicts hold under every
    alternative test, and which alternative disagrees most often."""
    tested = c[c["direction"] != NOT_TESTED]
    if tested.empty:
        return (f"No comparison with {an.baseline} could be tested yet (too few trials with a test metric on a "
                "side).")  # fmt: skip
    sig = tested[tested["direction"] != SAME]
    fragile = sig[~sig["robust"]]
    null_fragile = tested[(tested["direction"] == SAME) & ~tested["robust"]]
    paired = bool(tested["paired"].any())
    alternatives = alternative_tests(primary_test(an.plan, paired), paired)
    held = len(sig) - len(fragile)
    text = (f"Of {len(tested)} comparisons with {an.baseline} ({fw_list(an.frameworks)} counted apart; "
            f"{an.plan.short()}), {len(sig)} are significant and {held} of those "
            f"{'holds' if held == 1 else 'hold'} under every alternative test "
            f"({_join([TEST_NAME[t] for t in alternatives])})")  # fmt: skip
    if len(fragile):
        against = {t: int((fragile[f"direction_{t}"] != fragile["direction"]).sum()) for t in alternatives
                   if f"direction_{t}" in fragile}  # fmt: skip
        most = max(against, key=against.get)
        text += (f"; {len(fragile)} are marked '?' in the verdict table, most often because {TEST_NAME[most]} "
                 f"disagrees ({against[most]} of them)")  # fmt: skip
    if len(null_fragile):
        text += (f"; {len(null_fragile)} of the {len(tested) - len(sig)} null verdicts "
                 f"{'is' if len(null_fragile) == 1 else 'are'} contradicted by at least one alternative")  # fmt: skip
    return text + "."


def power_sentence(an: Analysis, c: pd.DataFrame) -> str:
    """What "no significant difference" rules out: the range of the detectable difference in solved rate
    (``harness.analysis.power``), and how many null verdicts could not have detected any difference."""
    null = c[c["direction"] == SAME]
    if null.empty:
        return ""
    known = null[null["detectable"].notna()]
    m = int(null["family_size"].max())
    paired = null["paired"].astype(bool)
    # with replicates the tests' units are configurations, and the power is computed per configuration
    replicated = bool(((null["configurations"] < null["pairs"]) | (null["units"] < null["n"])).any())
    if paired.all():
        n = int(null["configurations" if replicated else "pairs"].median())
        units = "configurations (counted as one pair each, cautiously)" if replicated else "pairs"
        test = ("McNemar's exact test with one pair per configuration: a configuration's replicates add less "
                "than independent pairs would" if replicated else "McNemar's exact test on the pairs, their "
                "outcomes taken as independent: correlated pairs only make it stronger")  # fmt: skip
    else:
        n = int(null["units" if replicated else "n"].median())
        units = ("configurations per side (counted as one trial each, cautiously)" if replicated
                 else "trials per side")  # fmt: skip
        test = ("Fisher's exact test" if not paired.any()
                else "McNemar's exact test where the trials pair, Fisher's where they do not")
    text = (f"'No significant difference' ({len(null)} comparisons) rules out only large effects: at about {n} "
            f"{units} and the strictest threshold of a family of {m} (α/m = {an.plan.alpha / max(m, 1):.2g}), ")
    if len(known):
        lo, hi = (f"{100 * v:.0f}" for v in (known["detectable"].min(), known["detectable"].max()))
        text += (f"the design detects a difference in solved rate of {lo if lo == hi else f'{lo}–{hi}'} percentage "
                 f"points with {an.plan.power:.0%} power")  # fmt: skip
        if len(known) < len(null):
            text += f", and in {len(null) - len(known)} of them no difference in solved rate reaches that power"
    else:
        text += f"no difference in solved rate is detectable with {an.plan.power:.0%} power"
    return text + f" ({test}; exact)."


def _status_counts(an: Analysis) -> dict[str, int]:
    o = an.outcomes
    return {str(k): int(v) for k, v in o.groupby("status")["trials"].sum().items()} if len(o) else {}


def coverage_sentence(an: Analysis, ctx: Context) -> str:
    st = _status_counts(an)
    words = {"ok": "ok", "diverged": "diverged", "failed": "failed", "timeout": "timed out"}
    counts = ", ".join(f"{st[k]} {w}" for k, w in words.items() if st.get(k, 0))
    tasks = "; ".join(f"{t} (T = {', '.join(map(str, an.lengths(t)))})" for t in an.tasks)
    text = (
        f"This report covers {len(an.trials)} trials ({counts}) of {len(an.variants)} variant"
        f"{'s' if len(an.variants) != 1 else ''} ({', '.join(an.variants)}) in {fw_list(an.frameworks)} on {tasks}."
    )
    if len(an.configs) < len(an.trials):
        text += (f" They are {len(an.configs)} configurations: a configuration's runs in different frameworks are "
                 "two measurements of it and count once wherever trials are pooled.")  # fmt: skip
    remaining, running = ctx.progress.get("remaining", 0), len(an.running)
    busy = f" ({running} of them running as this report was built)" if running else ""
    if remaining:
        text += (
            f" The benchmark is not finished: {remaining} of {ctx.progress.get('planned', 0)} planned trials have "
            f"no result yet{busy}, so every number below may still change."
        )
    elif running:
        text += f" {running} trial{'s were' if running != 1 else ' was'} running as this report was built."
    return text


def _span_words(ratio: float) -> str:
    """A difference as a share of the metric's span: '3 % of the span', or '1,526 times the span'."""
    return f"{pct(ratio)} of the span" if ratio < 10 else f"{ratio:,.0f} times the span"


def significance_sentences(an: Analysis) -> list[str]:
    """Each significant verdict against the baseline with both outcomes' effects, n and p, and whether it
    holds under the alternative tests; then how many comparisons find no significant difference."""
    c = an.comparisons
    if len(an.variants) < 2:
        return [f"Only one variant ({an.variants[0]}) has trials, so there is nothing to compare it with."]
    untested = (f"No comparison with {an.baseline} could be tested yet (too few trials with a test metric on a "
                "side).")  # fmt: skip
    if c.empty:
        return [untested]
    sig = c[(c["selection"] == "all") & c["direction"].isin(["better", "worse"])]
    tested = c[(c["selection"] == "all") & (c["direction"] != NOT_TESTED)]
    if sig.empty:
        if tested.empty:
            return [untested]
        return [f"No variant differs significantly from {an.baseline} on any task and length ({an.plan.short()}, "
                f"all trials; {len(tested)} tests)."]  # fmt: skip
    groups: dict[tuple, list] = defaultdict(list)
    for r in sig.itertuples(index=False):
        groups[(r.task, r.length, r.variant, r.direction)].append(r)
    keyed = sorted(groups.items(), key=lambda kv: (min(r.p_adjusted for r in kv[1]), kv[0]))
    sentences = []
    for (task, T, variant, verdict), rows in keyed[:MAX_FINDINGS_PER_KIND]:
        metric = an.tasks[task].metric if task in an.tasks else "metric"
        parts = [
            f"{framework_name(r.framework)}: {_solved_words(r._asdict())}; {_shift_words(r._asdict(), metric)} "
            f"(adjusted p = "
            f"{pval(r.p_adjusted)}, n = {_n_words(r)}; "
            f"{'every alternative agrees' if r.robust else f'{r.agree} of {r.alternatives} alternatives agree'})"
            for r in sorted(rows, key=lambda r: r.framework != "torch")
        ]
        sentences.append(f"{variant} is significantly {verdict} than {an.baseline} on {task}, T = {T}: "
                         f"{'; '.join(parts)}.")  # fmt: skip
    if len(keyed) > MAX_FINDINGS_PER_KIND:
        sentences.append(
            f"… and {len(keyed) - MAX_FINDINGS_PER_KIND} more significant differences (see the comparisons table)."
        )
    n_same = int((tested["direction"] == SAME).sum())
    if n_same:
        sentences.append(f"{n_same} of {len(tested)} tests against {an.baseline} find no significant difference "
                         f"({an.plan.short()}, all trials).")  # fmt: skip
    return sentences


def verdict_sentences(an: Analysis) -> list[str]:
    """How often the frameworks reach the same verdict against the baseline (``verdicts.agreement_summary``)."""
    a = agreement_summary(an.verdicts)
    if not a.compared:
        return []
    text = (f"PyTorch and TensorFlow reach the same verdict against {an.baseline} in {a.agree} of the {a.compared} "
            "variant, task and T comparisons tested in both (the verdict table)")  # fmt: skip
    if a.agree == a.compared:
        return [text + "."]
    differ = [f"{r.variant} on {r.task}, T = {r.length}" for r in a.differ.itertuples(index=False)]
    more = len(differ) - MAX_FINDINGS_PER_KIND
    shown = differ[:MAX_FINDINGS_PER_KIND] + ([f"{more} more"] if more > 0 else [])
    return [text + f"; they differ on {_join(shown)}."]


def selection_sentences(an: Analysis) -> list[str]:
    """Where the top 10 % is too small to show or test, say so (and how many trials it would take)."""
    s = an.summary
    if s.empty or "top_n" not in s:
        return []
    done = s[s["with_metric"] > 0]
    small = done[done["top_n"] < MIN_SELECTION]
    if small.empty:
        return []
    sizes = sorted({int(n) for n in small["top_n"]})
    held = _join([str(n) for n in sizes]) + f" trial{'s' if sizes != [1] else ''}"
    where = "every task/length/variant/framework cell" if len(small) == len(done) else (
        f"{len(small)} of {len(done)} task/length/variant/framework cells")
    return [
        f"In {where} the best 10 % holds {held}, fewer than the {MIN_SELECTION} a box or a test needs, so the "
        f"report shows and tests it only where it holds {MIN_SELECTION} or more (from {trials_for_top()} trials "
        "per cell); the ranking says what it ranks instead."
    ]


def ranking_sentences(an: Analysis) -> list[str]:
    r = an.ranking
    t = r.table
    if len(t) < 2:
        return []
    blocks = len(r.ranks)
    best = t.iloc[0]
    rest = [f"{row.variant} ({row.mean_rank:.2f})" for row in t.iloc[1:4].itertuples(index=False)]
    text = (
        f"Ranked by the {r.score} over {blocks} task/length block{'s' if blocks != 1 else ''} (a configuration "
        f"counted once, its frameworks' metrics averaged), {best.variant} has the best mean rank "
        f"({best.mean_rank:.2f}), then {_join(rest)}; the last is {t.iloc[-1].variant} ({t.iloc[-1].mean_rank:.2f})."
    )
    if math.isfinite(r.friedman_p):
        text += f" Friedman's test over the {r.complete_blocks} complete blocks gives p = {pval(r.friedman_p)}"
        if math.isfinite(r.critical_difference):
            text += (
                f"; mean ranks closer than the Nemenyi critical difference {r.critical_difference:.2f} "
                "are not distinguishable"
            )
        text += "."
    return [text]


def dependency_sentences(an: Analysis) -> list[str]:
    """Per task: the longest T at which each variant has at least one solved trial."""
    out = []
    for task in an.tasks:
        d = an.reach[an.reach["task"] == task] if len(an.reach) else an.reach
        if d.empty:
            continue
        lengths = an.lengths(task)
        by_reach: dict[Any, list[str]] = defaultdict(list)
        for v in an.variants:
            row = d[d["variant"] == v]
            if len(row):
                reach = row["reach"].iloc[0]
                by_reach[int(reach) if math.isfinite(reach) else None].append(v)
        parts = []
        for reach in sorted((k for k in by_reach if k is not None), reverse=True):
            longer = [T for T in lengths if T > reach]
            where = "the longest tested" if not longer else f"none at T = {_join([str(T) for T in longer])}"
            parts.append(f"T = {reach} for {_join(by_reach[reach])} ({where})")
        text = f"On {task} (T = {', '.join(map(str, lengths))}), "
        if parts:
            text += "the longest lag with at least one solved trial is " + "; ".join(parts)
            if None in by_reach:
                text += f"; {_join(by_reach[None])} solve{'s' if len(by_reach[None]) == 1 else ''} no tested length"
        else:
            text += "no variant solves any tested length yet"
        out.append(text + ".")
    return out


def failure_sentences(an: Analysis) -> list[str]:
    o = an.outcomes
    parts = []
    for status, word in (("diverged", "diverged"), ("failed", "failed"), ("timeout", "timed out")):
        sub = o[o["status"] == status] if len(o) else o
        if len(sub):
            per = dict(zip(sub["variant"], sub["trials"]))
            n = int(sub["trials"].sum())
            detail = ", ".join(f"{v}: {int(per[v])}" for v in an.variants if v in per)
            parts.append(f"{n} trial{'s' if n != 1 else ''} {word} ({detail})")
    if not parts:
        return ["No trial diverged, failed or timed out."]
    return [
        _join(parts) + "; they are counted in the tables (diverged trials keep the test metric of their best "
        "checkpoint), not hidden."
    ]


def replicate_sentences(an: Analysis) -> list[str]:
    """What the replicate seeds show (``harness.analysis.replicates``): per task and T, the share of a cell's test
    metric variance that is seed noise; then the frameworks as an implementation check
    (``harness.analysis.equivalence``), never as a replication."""
    out = []
    by_task = an.seed_noise_by_task
    if len(by_task):
        parts = [
            f"{r.task}, T = {r.length}: median {pct(r.median_seed_share)} (range {pct(r.min_seed_share)}–"
            f"{pct(r.max_seed_share)} over {r.cells} cells; {r.solved_split} of {r.solved_configurations} "
            "configurations solved with one seed and not the other)"
            for r in by_task.itertuples(index=False)
        ]
        out.append("Seed noise: the share of the test metric's variance between replicate seeds of one "
                   "configuration (one-way random-effects ANOVA per task, T, variant and framework; the rest is the "
                   f"hyperparameters' share): {'; '.join(parts)}.")  # fmt: skip
    elif len(an.configs):
        out.append("Every configuration ran with one seed, so this report cannot separate seed noise from the "
                   "hyperparameters' effect; a suite's replicates = k trains each configuration with k "
                   "seeds.")  # fmt: skip
    eq = an.equivalence
    if len(eq) and eq["pairs"].sum():
        within, pairs = int(eq["within"].sum()), int(eq["pairs"].sum())
        agree, solved = int(eq["solved_agree"].sum()), int(eq["solved_pairs"].sum())
        worst = eq.sort_values("max_relative_difference", ascending=False).iloc[0]
        out.append(
            f"PyTorch and TensorFlow as two implementations of one computation (same weights, same data; an "
            f"implementation check, not a replication): {within} of {pairs} paired trials agree within "
            f"{TOLERANCE:g} of the metric's span (trivial baseline to perfect), {agree} of {solved} end with the same "
            f"solved outcome; the largest difference is {_span_words(worst.max_relative_difference)} "
            f"({worst.task}, T = {worst.length}): float32 rounding, amplified over hundreds of steps, can take the "
            "two runs of one configuration to different ends (a run that blows up on the long test stream in one "
            "framework only)."
        )
    return out


def framework_sentences(an: Analysis) -> list[str]:
    """Per task: the paired test of PyTorch against TensorFlow at each T; then the speed ratio."""
    out = []
    ft = an.framework_tests
    for task, d in (ft.groupby("task", sort=True) if len(ft) else []):
        metric = an.tasks[task].metric if task in an.tasks else "metric"
        parts = [
            f"T = {r.length}: {r.pairs} pairs, median |Δ| {num(r.median_abs_difference, 3)} (largest "
            f"{num(r.max_abs_difference, 3)}), TensorFlow better in {r.tf_better} and PyTorch in {r.torch_better}, "
            f"p = {pval(r.p_holm)}, {r.direction}"
            for r in d.itertuples(index=False)
        ]
        out.append(
            f"On {task}, the configurations that ran in both frameworks compare as follows (test {metric}, "
            f"Wilcoxon signed-rank test of the pairs, Holm-adjusted across tasks and lengths): {'; '.join(parts)}."
        )
    ratio = an.speed_ratio
    if ratio:
        med = ratio["median"]
        fast, slow, factor = ("PyTorch", "TensorFlow", med) if med >= 1 else ("TensorFlow", "PyTorch", 1 / med)
        out.append(
            f"{fast} trains a median {factor:.2f}× as many trial-steps per second as {slow} (a population's "
            f"steps per second times its members; over {ratio['cells']} "
            f"task/length/variant cells; PyTorch/TensorFlow ratio {ratio['min']:.2f}–{ratio['max']:.2f})."
        )
    return out


FORGET_BIAS_HP = "forget_bias"  # the hyperparameter named wherever a family searched it, leading or not


def importance_sentences(an: Analysis) -> list[str]:
    """One sentence per task: per variant family (``an.info[v].family``), the hyperparameter that explains
    most of the test metric's variance with its share (``an.importance_summary``: mean over the family's
    lengths, never over families), the forget-gate bias's share wherever that family searched it, the
    method, and where fANOVA and the one-way η² (``eta2``) name different leaders."""
    summary = an.importance_summary
    if summary.empty:
        return []
    summary = summary if "eta2" in summary else summary.assign(eta2=float("nan"))
    fanova = an.importance_method == "fanova"
    method = "fANOVA" if fanova else "one-way ANOVA η²"
    rank = {f: i for i, f in enumerate(dict.fromkeys(i.family for i in an.info.values()))}
    imp = an.importance
    out = []
    for task, d in summary.groupby("task", sort=True):
        families = sorted(d["family"].unique(), key=lambda f: (rank.get(f, len(rank)), str(f)))
        parts = [p for p in (_family_importance(an, f, d[d["family"] == f], fanova) for f in families) if p]
        if not parts:
            continue
        lengths = sorted(int(t) for t in imp.loc[imp["task"] == task, "length"].unique()) if len(imp) else []
        over = (f", mean over T = {', '.join(map(str, lengths))}" if len(lengths) > 1
                else f", T = {lengths[0]}" if lengths else "")  # fmt: skip
        also = "; one-way ANOVA η² on the same configurations in brackets" if fanova else ""
        out.append(
            f"On {task}, the hyperparameter that explains most of the test metric's variance, family by family "
            f"({method} over each variant family's own configurations{over}{also}; the families search different "
            f"hyperparameters, so no number is averaged over them): {'; '.join(parts)}."
        )
    return out


def _family_importance(an: Analysis, family: str, d: pd.DataFrame, fanova: bool) -> str:
    """One family's clause of ``importance_sentences``: its leader and share, the forget-gate bias's share
    where searched, the choice of variant's share where the family has several, and a disagreement of the
    one-way η² with fANOVA on the leader."""
    hps = d[d["hyperparameter"] != "variant"].sort_values(["importance", "hyperparameter"], ascending=[False, True])
    hps = hps[hps["importance"].notna()]
    if hps.empty:
        return ""
    members = [v for v in an.variants if v in an.info and an.info[v].family == family]
    name = f"{family} ({', '.join(members)})" if members else str(family)

    def share(r: Any) -> str:
        eta = f" [η² {pct(r.eta2)}]" if fanova and pd.notna(r.eta2) else ""
        return f"{pct(r.importance)}{eta}"

    lead = hps.iloc[0]
    variant = d.loc[d["hyperparameter"] == "variant"]
    text = f"in the {name} family,"
    if len(variant) and pd.notna(variant["importance"].iloc[0]):  # a factor, not a hyperparameter: never the leader
        text += f" where the choice of variant explains {share(variant.iloc[0])},"
    text += f" {_hp_name(lead.hyperparameter)} leads with {share(lead)}"
    fb = hps[hps["hyperparameter"] == FORGET_BIAS_HP]
    if len(fb) and lead.hyperparameter != FORGET_BIAS_HP:
        text += f", the {_hp_name(FORGET_BIAS_HP)} explains {share(fb.iloc[0])}"
    elif lead.hyperparameter == FORGET_BIAS_HP and len(hps) > 1:
        second = hps.iloc[1]
        text += f" (then {_hp_name(second.hyperparameter)}, {share(second)})"
    eta = hps[hps["eta2"].notna()].sort_values(["eta2", "hyperparameter"], ascending=[False, True])
    if fanova and len(eta) and eta.iloc[0].hyperparameter != lead.hyperparameter:
        e = eta.iloc[0]
        text += (f" — the methods disagree: η² puts {_hp_name(e.hyperparameter)} first ({pct(e.eta2)}, "
                 f"against {pct(lead.eta2)} for {_hp_name(lead.hyperparameter)})")  # fmt: skip
    return text


def _hp_name(hyperparameter: str) -> str:
    return "forget-gate bias" if hyperparameter == FORGET_BIAS_HP else hyperparameter.replace("_", " ")


def _setting_name(setting: Any) -> str:
    return setting if isinstance(setting, str) else f"{setting:g}"


def _interval(low: float, high: float) -> str:
    return f"95 % CI {100 * low:.0f}–{100 * high:.0f} %"


def forget_bias_sentences(an: Analysis) -> list[str]:
    """One sentence per (task, T) where the search varied the forget-gate bias: its solved rate per setting."""
    out = []
    fb = an.forget_bias
    for (task, T), rows in (fb.groupby(["task", "length"], sort=True) if len(fb) else []):
        rates = [
            f"{_setting_name(r.setting)}: {pct(r.solved_rate)} ({r.solved} of {r.finished}; "
            f"{_interval(r.solved_low, r.solved_high)})"
            for r in rows.itertuples(index=False)
        ]
        split = int(rows["split"].sum())
        text = (
            f"On {task}, T = {T}, the solved rate by initial forget-gate bias is {'; '.join(rates)} (configurations "
            "of the variants with a forget gate that trained to an outcome, pooled over variants; a configuration "
            "counts once, as solved when it solved in every framework it ran in"
        )
        text += f"; the frameworks disagree on {split})." if split else ")."
        out.append(text)
    return out


def _median_with_interval(median: float, low: float, high: float, n: int) -> str:
    ci = f"95 % CI {num(low, 3)}–{num(high, 3)}" if math.isfinite(low) and math.isfinite(high) else "no interval"
    return f"{num(median, 3)} ({ci}; {n} configurations)"


def marginal_sentences(an: Analysis) -> list[str]:
    """Per task, its strongest marginal effect (``marginals.strongest_effects``): the hyperparameter and T whose
    best and worst points' median test metrics differ most."""
    out = []
    for r in an.strongest.itertuples(index=False) if len(an.strongest) else []:
        metric = an.tasks[r.task].metric if r.task in an.tasks else "metric"
        noise = ("the two intervals do not overlap" if r.separated else
                 "the two intervals overlap, so the difference may be noise")  # fmt: skip
        best = _median_with_interval(r.best_median, r.best_low, r.best_high, r.best_configurations)
        worst = _median_with_interval(r.worst_median, r.worst_low, r.worst_high, r.worst_configurations)
        out.append(
            f"The strongest marginal effect on {r.task} is the {r.hyperparameter.replace('_', ' ')}'s at "
            f"T = {r.length}: median test {metric} {best} at {r.hyperparameter.replace('_', ' ')} {r.best} against "
            f"{worst} at {r.worst}; {noise} "
            "(the marginals figure)."
        )
    return out


def gradient_sentences(gradient: GradientFlow | None) -> list[str]:
    if gradient is None or not gradient.ok:
        return []
    ratios = gradient.reach_ratios("init")
    if not ratios:
        return []
    items = [f"{v} {num(r, 2)}" for v, r in ratios.items()]
    return [
        f"At initialisation on {gradient.task}, T = {gradient.length}, the gradient that reaches the first step is, "
        f"relative to the one at the last step: {', '.join(items)}; the smaller the ratio, the more the gradient "
        f"vanishes before it can teach the early steps ({next(iter(ratios))} loses the most)."
    ]


def method_paragraphs(an: Analysis, gradient: GradientFlow | None) -> list[str]:
    paras = [
        "Every number is computed from the results store; nothing is typed in. The test metric of a trial is the "
        "task's primary metric on the fixed test set at the checkpoint with the best validation metric. Diverged "
        "trials keep the metric of their last finite best checkpoint; failed and timed-out trials have none and are "
        "only counted.",
        "Configurations: a configuration is a task, T, variant, hyperparameters and seed. Its PyTorch and TensorFlow "
        "trials start from the same weights and see the same data, so they are two measurements of one computation "
        "(an implementation check), not independent samples; replicates are other seeds of the same "
        "hyperparameters, each its own configuration. Within one framework every trial is its own configuration; "
        "wherever the frameworks are pooled (ranking, importance, the forget-gate-bias finding) a configuration counts "
        "once: its test metric is the mean of its framework trials', and it counts as solved when it solved in every "
        "framework it ran in. Every n says "
        "what it counts: trials (one framework) or configurations.",
        "Solved rate: solved trials divided by the trials that trained to an outcome (ok or diverged), with its exact "
        "(Clopper-Pearson) 95 % binomial interval. Top 10 %: per task, T, variant and framework, the ceil(0.1·n) "
        "trials (at least one) with the best validation metric, ties broken by validation loss and then trial id; it "
        f"is shown and tested only where it holds at least {MIN_SELECTION} trials (from {trials_for_top()} trials "
        "per cell).",
        f"Significance: {an.plan.describe()} Each variant is compared with the baseline {an.baseline!r} in the "
        "same task, T and framework. Within a framework every variant trains the same configurations (the k-th "
        "random-search draw and its replicate seed), so a variant's trial and the baseline's trial of one seed "
        "form a pair; a variant without a searched hyperparameter (nfg has no forget-gate bias) pairs on the ones "
        "it has. Effects: the difference in solved rate (variant − baseline) with Newcombe's 95 % interval (for "
        "paired proportions where the trials pair), and the Hodges-Lehmann shift of the test metric with a "
        "seeded percentile bootstrap 95 % interval. Every alternative test (Welch's t, Mann-Whitney U, McNemar's or "
        "Fisher's test on the solved outcome, the paired Wilcoxon) is corrected over the same family; a verdict "
        "all of them share is robust, one they do not is marked '?'. For a null verdict the comparisons table "
        "gives the smallest difference in solved rate the design's solved test detects with "
        f"{an.plan.power:.0%} power at the family's strictest threshold α/m, computed exactly by enumerating its "
        "outcomes (McNemar's test with a pair's outcomes taken as independent, which correlated pairs only improve on, "
        "or Fisher's test). The top 10 % is tested with the unpaired counterpart of the primary test, as a family of "
        "its own.",
        "Frameworks: per task and T, the Wilcoxon signed-rank test (two-sided, scipy) of the differences between "
        "the TensorFlow and PyTorch test metrics of the configurations that have one in both, Holm-corrected across "
        "tasks and lengths; pairs that agree exactly are left out of the ranks, and p = 1 when all agree.",
        f"Ranking: per task and T, each configuration counted once, the variants are ranked by the {an.ranking.score} "
        "in the metric's direction (the top-10 % mean where every variant's top 10 % of configurations holds at "
        f"least {MIN_SELECTION}, else the median); the Friedman test and the Nemenyi critical difference (Demšar "
        "2006) use the task/length blocks in which every ranked variant has a result.",
        "Hyperparameter importance: "
        + (
            "fANOVA (Hutter et al. 2014) through Optuna's FanovaImportanceEvaluator (seed 0) on the configurations of "
            "each task, T and variant family (never averaged over families: only the LSTM family has a forget-gate "
            "bias), as the fraction of the test metric's variance that each hyperparameter explains alone; the rest "
            "is interactions and noise. Beside it, each hyperparameter's one-way η² on the same configurations "
            "(numeric values binned by quartiles), a simple model to hold fANOVA against; where the two disagree on "
            "the leader the findings say so."
            if an.importance_method == "fanova"
            else "scikit-learn is not installed, so Optuna's fANOVA could not run; the fallback is each "
            "hyperparameter's one-way ANOVA η² (numeric values binned by quartiles) over the configurations, a "
            "main-effect fraction of the variance."
        )
        + f" Its interval is ± 1.96 bootstrap standard errors over configurations ({RESAMPLES} seeded resamples, "
        "with smaller forests: a guide to how much the number moves with the sample, not a precise interval)."
        + " Learning curves pool both frameworks' top-10 % trials where it is shown, else all trials; a trial that "
        "stopped early keeps its last value.",
    ]
    if gradient is not None and gradient.ok:
        paras.append(
            f"Gradient flow: a probe run by the report ({gradient.describe()}). The layer is unrolled with each "
            "variant's own step and the gradient of the loss with respect to each h_t is its total derivative through "
            "all later steps; variants use their default hyperparameters (forget-gate bias 1). The store keeps no "
            "trained parameters, so 'after training' is after the probe's own short seeded run, not the benchmark's "
            f"training. The probe took {gradient.seconds:.1f} s."
        )
    return paras
