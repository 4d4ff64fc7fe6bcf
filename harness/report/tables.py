"""The report's tables, each written as CSV (full precision, for pandas and spreadsheets), Markdown,
LaTeX (booktabs) and HTML (formatted for reading). Writers are plain code, no optional packages.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.comparisons import TEST_NAMES, TEST_SHORT_NAMES, alternative_tests
from harness.analysis.importance import RESAMPLES
from harness.analysis.statistics import MIN_SELECTION, NOT_TESTED, SAME
from harness.analysis.study import Analysis, framework_name
from harness.diagnostics.probes import GradientFlow


@dataclass
class Table:
    key: str
    title: str
    caption: str
    data: pd.DataFrame  # numbers, written to CSV
    display: pd.DataFrame  # formatted strings, written to Markdown / LaTeX / HTML
    files: dict[str, Path] | None = None


# ------------------------------------------------------------------------------------------------------
# formatting
# ------------------------------------------------------------------------------------------------------
def num(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)) or pd.isna(x):
        return "–"
    x = float(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.{max(1, digits - 2)}e}"
    return f"{x:.{digits}g}"


def pm(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "–"
    return num(mean) if pd.isna(std) else f"{num(mean)} ± {num(std, 2)}"


def pct(x: float) -> str:
    return "–" if pd.isna(x) else f"{100 * float(x):.0f} %"


def pval(p: float) -> str:
    if pd.isna(p):
        return "–"
    p = float(p)
    if p == 0:
        return "0"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def integer(x: float) -> str:
    return "–" if pd.isna(x) else f"{float(x):.0f}"


def rate(r: Any) -> str:
    """A solved rate with its count and exact interval: '40 % (2 of 5; 5–85 %)'; '–' with no denominator."""
    if not r.finished:
        return "–"
    return f"{pct(r.solved_rate)} ({r.solved} of {r.finished}; {100 * r.solved_low:.0f}–{100 * r.solved_high:.0f} %)"


def top_stat(text: str, top_n: int) -> str:
    """A top-10 % statistic, or why there is none: the selection holds fewer than ``MIN_SELECTION``."""
    if 0 < top_n < MIN_SELECTION:
        return f"– ({top_n} < {MIN_SELECTION})"
    return text


# ------------------------------------------------------------------------------------------------------
# the tables
# ------------------------------------------------------------------------------------------------------
def summary_table(an: Analysis) -> Table:
    s = an.summary
    busy = "running" in s.columns and bool(s["running"].any())
    rows = []
    for r in s.itertuples(index=False):
        run = f"{r.trials}" + (f" / {r.planned}" if "planned" in s.columns and r.planned != r.trials else "")
        rows.append(
            {
                "task": r.task,
                "T": r.length,
                "variant": r.variant,
                "framework": framework_name(r.framework),
                "trials": run,
                **({"running": r.running} if busy else {}),
                "diverged": r.diverged,
                "failed": r.failed + r.timeout,
                "metric": f"{r.metric} {'↑' if r.higher_is_better else '↓'}",
                "solved (95 % CI)": rate(r),
                "mean ± std": pm(r.mean, r.std),
                "median": num(r.median),
                "best": num(r.best),
                "top 10 % mean ± std": top_stat(pm(r.top_mean, r.top_std) + (f" (n = {r.top_n})" if r.top_n else ""),
                                                r.top_n),
                "top median": top_stat(num(r.top_median), r.top_n),
                "top best": top_stat(num(r.top_best), r.top_n),
                "steps to solve": integer(r.median_steps_to_solve),
                "params": integer(r.params),
                "state": integer(r.state),
                "p (adjusted)": pval(r.p_adjusted),
                "vs baseline": r.direction,
                "p top (adjusted)": pval(r.p_adjusted_top),
                "top vs baseline": r.direction_top,
            }
        )
    display = pd.DataFrame(rows)
    caption = (
        "Per task, length T, variant and framework: trials run (/ planned, while a benchmark is running), "
        + ("trials still running (in no statistic), " if busy else "")
        + "diverged, failed (incl. timeouts); solved rate (solved of the trials that trained to an outcome, with its "
        "exact Clopper-Pearson 95 % interval); test metric over all trials with one and over the top 10 % chosen by "
        f"validation metric, shown where it holds at least {MIN_SELECTION} trials (e.g. '– (1 < {MIN_SELECTION})': "
        "it holds 1) "
        "(↑ higher / ↓ lower is better); median steps to solve (solved trials); mean parameter count and state "
        "size (floats of recurrent state per sequence: h and c for an LSTM, H² + 2H + 1 for mLSTM); the verdict "
        f"against the baseline {an.baseline!r} ({an.plan.short()}; the top 10 % by its unpaired counterpart, a "
        "family of its own). Every count here is of trials in one framework."
    )
    return Table("summary", "Summary per task, length, variant and framework", caption, s, display)


def comparisons_table(an: Analysis) -> Table:
    c = an.comparisons
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "framework": framework_name(r.framework),
                "selection": "all trials" if r.selection == "all" else "top 10 %",
                "variant": r.variant,
                "n": f"{r.n} vs {r.n_baseline}" + (f" ({r.pairs} pairs)" if r.paired else ""),
                "median": f"{num(r.median)} vs {num(r.median_baseline)}",
                "solved": f"{r.solved} of {r.finished} vs {r.solved_baseline} of {r.finished_baseline}",
                "Δ solved (95 % CI)": effect(r.solved_difference, r.solved_difference_low, r.solved_difference_high,
                                             percent=True),
                "shift (95 % CI)": effect(r.shift, r.shift_low, r.shift_high),
                "test": TEST_NAMES.get(r.test, r.test),
                "p": pval(r.p),
                "p (adjusted)": pval(r.p_adjusted),
                "verdict": r.direction,
                "alternatives": alternatives_text(r),
                "detectable Δ solved": pct(r.detectable),
            }
            for r in c.itertuples(index=False)
        ]
    )
    caption = (
        f"Every variant against the baseline {an.baseline!r}, per task, T, framework and selection. n: trials with a "
        "test metric (pairs: matched by seed). Δ solved: the difference in solved rate (variant − baseline) with "
        "Newcombe's 95 % interval (paired where the trials pair); shift: the Hodges-Lehmann shift of the test metric "
        "(variant − baseline, in the metric's units) with a percentile bootstrap 95 % interval. The verdict is the "
        f"primary test's ({an.plan.short()}); alternatives: the other tests' verdicts (▲ better, ▼ worse, · no "
        "significant difference), each corrected over the same family. Detectable Δ solved: for a null verdict, the "
        f"smallest difference in solved rate the design detects with {an.plan.power:.0%} power at the family's "
        f"strictest threshold (α/m). A top-10 % selection from under {MIN_SELECTION} configurations on either side "
        "(replicates count once) is not tested."
    )
    return Table("comparisons", "Tests against the baseline", caption, c, display)


SYMBOL = {"better": "▲", "worse": "▼", SAME: "·", NOT_TESTED: "–"}


def effect(estimate: float, low: float, high: float, percent: bool = False) -> str:
    """An effect and its interval: '−55 % (−72 to −27 %)', '0.039 (0.013 to 0.092)'; '–' without one."""
    if pd.isna(estimate):
        return "–"
    show = (lambda x: f"{100 * float(x):+.0f}") if percent else (lambda x: num(x, 2))
    unit = " %" if percent else ""
    if pd.isna(low) or pd.isna(high):
        return show(estimate) + unit
    return f"{show(estimate)}{unit} ({show(low)} to {show(high)}{unit})"


def alternatives_text(r: Any) -> str:
    """The alternative tests' verdicts of one comparison: 'Welch ·, Mann-Whitney ▼, McNemar ▼'."""
    alts = [t for t in alternative_tests(r.test, bool(r.paired)) if pd.notna(getattr(r, f"p_{t}"))]
    return ", ".join(f"{TEST_SHORT_NAMES[t]} {SYMBOL.get(getattr(r, f'direction_{t}'), '?')}" for t in alts) or "–"


#: a verdict as one short word in the verdict table ("no significant difference" would crowd its cells)
VERDICT_WORD = {"better": "better", "worse": "worse", SAME: "not different", NOT_TESTED: "not tested"}
BOTH = " (both)"  # the suffix of a cell whose frameworks agree


FRAGILE = "?"  # marks a verdict that some alternative test does not share


def verdict_cell(directions: dict[str, str], robust: dict[str, bool] | None = None,
                 effects: dict[str, str] | None = None) -> str:  # fmt: skip
    """One cell of the verdict table: the verdict alone with one framework; "<verdict> (both)" where every
    framework has the same one; else each framework's, named ("PyTorch worse, TensorFlow not different").
    A verdict that some alternative test does not share (``robust`` False) is marked "?"; the first
    framework's effect of ``effects`` (per framework, formatted) follows after a colon: the frameworks
    measure the same configurations, so their effects are close (the comparisons table has each)."""
    robust = robust or {}
    words = {fw: VERDICT_WORD.get(d, d) + ("" if robust.get(fw, True) or d == NOT_TESTED else FRAGILE)
             for fw, d in directions.items()}  # fmt: skip
    if len(words) == 1:
        text = next(iter(words.values()))
    elif len(set(words.values())) == 1:
        text = next(iter(words.values())) + BOTH
    else:
        text = ", ".join(f"{framework_name(fw)} {w}" for fw, w in words.items())
    shown = [e for e in (effects or {}).values() if e != "–"]
    return f"{text}: {shown[0]}" if shown else text


def verdict_effect(r: Any, fw: str, primary: str) -> str:
    """The primary outcome's effect of one framework in a verdict-table row, with its interval."""
    if primary == "solved":
        return effect(getattr(r, f"solved_difference_{fw}"), getattr(r, f"solved_difference_low_{fw}"),
                      getattr(r, f"solved_difference_high_{fw}"), percent=True)  # fmt: skip
    return effect(getattr(r, f"shift_{fw}"), getattr(r, f"shift_low_{fw}"), getattr(r, f"shift_high_{fw}"))


def verdicts_table(an: Analysis) -> Table:
    """Greff et al.'s headline: one row per variant, one column per task and T (``Analysis.verdicts``): the
    primary test's verdict per framework, whether the alternatives share it, and the primary effect."""
    v = an.verdicts
    fws = [fw for fw in an.frameworks if f"direction_{fw}" in v.columns]
    cells: dict[str, dict[str, str]] = {}
    columns: list[str] = []
    for r in v.itertuples(index=False):
        col = f"{r.task}, T = {r.length}"
        if col not in columns:
            columns.append(col)
        cells.setdefault(r.variant, {})[col] = verdict_cell(
            {fw: getattr(r, f"direction_{fw}") for fw in fws}, {fw: bool(getattr(r, f"robust_{fw}")) for fw in fws},
            {fw: verdict_effect(r, fw, an.plan.primary) for fw in fws},
        )
    display = pd.DataFrame(
        [{"variant": var, **{c: row.get(c, "–") for c in columns}} for var, row in cells.items()],
        columns=["variant", *columns],
    )
    if len(fws) > 1:
        how = (
            f"'(both)': {' and '.join(framework_name(f) for f in fws)} reach the same verdict; otherwise each "
            "framework's verdict is named, and the frameworks disagree (or one of them could not be tested). The two "
            "frameworks train the same configurations from the same weights: their agreement checks the two "
            "implementations, it is not a replication."
        )
    else:
        how = f"One framework ({_fw_names(fws)}) ran, so there is nothing to agree on."
    effect_words = ("the difference in solved rate (variant − baseline, Newcombe 95 % interval)"
                    if an.plan.primary == "solved" else
                    "the Hodges-Lehmann shift of the test metric (variant − baseline, in the metric's units; "
                    "bootstrap 95 % interval)")  # fmt: skip
    caption = (
        f"Each variant against the baseline {an.baseline!r} per task and T, in each framework: significantly better, "
        f"worse, or not different ({an.plan.short()}; the comparisons table gives n, p, both effects and every "
        f"test). '{FRAGILE}': at least one alternative test (Welch's t, Mann-Whitney U, the solved-rate test, and the "
        "paired metric test where it is not the primary) reaches another verdict; a verdict without it holds under "
        f"all of them. After the colon: {effect_words}, in {framework_name(fws[0]) if fws else 'the framework'} (the "
        f"comparisons table has each framework's). {how} 'not tested': too few trials on a side."
    )
    return Table("verdicts", "Verdicts against the baseline", caption, v, display)


def _fw_names(frameworks: list[str]) -> str:
    return ", ".join(framework_name(f) for f in frameworks) or "none"


def ranking_table(an: Analysis) -> Table:
    r = an.ranking
    data = r.table.copy()
    display = pd.DataFrame(
        [
            {
                "rank": i + 1,
                "variant": row.variant,
                "name": an.info[row.variant].name if row.variant in an.info else "",
                "mean rank": f"{row.mean_rank:.2f}",
                "task/length blocks": row.blocks,
                "best in": row.wins,
            }
            for i, row in enumerate(data.itertuples(index=False))
        ]
    )
    extra = []
    if r.complete_blocks:
        extra.append(f"{r.complete_blocks} blocks contain every ranked variant")
    if math.isfinite(r.friedman_p):
        extra.append(f"Friedman test p = {pval(r.friedman_p)}")
    if math.isfinite(r.critical_difference):
        extra.append(f"Nemenyi critical difference (α = 0.05) = {r.critical_difference:.2f}")
    caption = (
        f"Mean rank per variant over the blocks (task, T), ranking each block's variants by the {r.score} "
        "(1 = best; ties share the average rank). A configuration counts once: its PyTorch and TensorFlow runs are "
        "two measurements of it, whose test metrics are averaged. " + "; ".join(extra)
    )
    return Table("ranking", "Ranking across tasks", caption.strip(), data, display)


def importance_table(an: Analysis) -> Table:
    imp = an.importance
    fanova = an.importance_method == "fanova"
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "family": r.family,
                "hyperparameter": r.hyperparameter,
                "variance explained": pct(r.importance),
                "± 1.96 bootstrap SE": f"{pct(r.low)}–{pct(r.high)}" if pd.notna(r.low) else "–",
                **({"one-way η²": pct(getattr(r, "eta2", float("nan")))} if fanova else {}),
                "configurations": r.configurations,
            }
            for r in imp.itertuples(index=False)
        ]
    )
    method = "fANOVA (Optuna, seed 0)" if fanova else "one-way ANOVA η² (fallback)"
    eta = (
        " Column one-way η²: the between-group over the total sum of squares of the same configurations, grouped "
        "by the hyperparameter's value (numbers binned by quartiles), a simple model to hold fANOVA against."
        if fanova
        else ""
    )
    return Table(
        "importance",
        "Hyperparameter importance",
        f"Per task, T and variant family (each family's configurations on their own: the families search "
        f"different hyperparameters, and no number here is averaged over families), the fraction of the test "
        f"metric's variance explained by each hyperparameter, over configurations (a configuration's framework "
        f"trials averaged); method: {method}; interval: ± 1.96 bootstrap standard errors over configurations "
        f"({RESAMPLES} seeded resamples), within 0–100 %.{eta}",
        imp,
        display,
    )


def marginals_table(an: Analysis) -> Table:
    """The numbers of the marginals figures (``Analysis.marginals``)."""
    m = an.marginals
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "hyperparameter": r.hyperparameter,
                "value": r.point,
                "configurations": r.configurations,
                "median": num(r.median),
                "95 % CI": f"{num(r.low)}–{num(r.high)}" if math.isfinite(r.low) else "–",
            }
            for r in m.itertuples(index=False)
        ]
    )
    caption = (
        "Marginal effect of each searched hyperparameter: the median test metric of the configurations (framework "
        "trials averaged) at each value, pooled over the variants that have it, with the exact distribution-free "
        "95 % interval of the median (none under 6 configurations); continuous hyperparameters in equal-count bins, "
        "named settings (chrono) as values of their own."
    )
    return Table("marginals", "Marginal effects of the hyperparameters", caption, m, display)


def dependency_table(an: Analysis) -> Table:
    d = an.dependency
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "variant": r.variant,
                "framework": framework_name(r.framework),
                "solved (95 % CI)": rate(r),
                "best": num(r.best),
                "median": num(r.median),
                "trials": r.trials,
            }
            for r in d.itertuples(index=False)
        ]
    )
    caption = ("Solved rate (of the trials that trained to an outcome, with its exact Clopper-Pearson 95 % "
               "interval) and best/median test metric per T; trials: every trial of the cell.")  # fmt: skip
    return Table("dependency", "Dependency length", caption, d, display)


def speed_table(an: Analysis) -> Table:
    s = an.speed
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "variant": r.variant,
                "framework": framework_name(r.framework),
                "steps / s": num(r.steps_per_second, 3),
                "trials": r.n,
            }
            for r in s.itertuples(index=False)
        ]
    )
    return Table("speed", "Training speed", "Median training steps per second (optimiser step only).", s, display)


def pairs_table(an: Analysis) -> Table:
    p = an.pairs
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "variant": r.variant,
                "configuration": r.configuration,
                "seed": r.seed,
                "PyTorch": num(r.torch),
                "TensorFlow": num(r.tf),
            }
            for r in p.itertuples(index=False)
        ]
    )
    return Table(
        "framework_pairs",
        "Paired configurations",
        "Test metric of the same configuration (task, T, variant, hyperparameters, seed) in PyTorch and TensorFlow.",
        p,
        display,
    )


def framework_tests_table(an: Analysis) -> Table:
    t = an.framework_tests
    display = pd.DataFrame(
        [
            {
                "task": r.task,
                "T": r.length,
                "pairs": r.pairs,
                "median Δ (TF − PT)": num(r.median_difference, 3),
                "median |Δ|": num(r.median_abs_difference, 3),
                "largest |Δ|": num(r.max_abs_difference, 3),
                "TensorFlow better": r.tf_better,
                "PyTorch better": r.torch_better,
                "W": num(r.statistic, 4),
                "p": pval(r.p),
                "p (Holm)": pval(r.p_holm),
                "verdict": r.direction,
            }
            for r in t.itertuples(index=False)
        ]
    )
    caption = (
        "PyTorch against TensorFlow on the same configurations, per task and T: the Wilcoxon signed-rank test "
        "(two-sided) of the paired test metrics, Holm-adjusted across tasks and lengths, α = 0.05; pairs count "
        "configurations with a test metric in both; 'better' is in the metric's direction; equal pairs are left "
        "out of the test."
    )
    return Table("framework_tests", "Frameworks compared (paired)", caption, t, display)


def gradient_table(gradient: GradientFlow) -> Table:
    df = gradient.frame()
    wide = df.pivot_table(index="t", columns=["phase", "variant"], values="grad_norm", sort=False)
    wide.columns = [f"{v} ({p})" for p, v in wide.columns]
    display = wide.reset_index().copy()
    for c in display.columns[1:]:
        display[c] = display[c].map(lambda x: num(x, 3))
    return Table("gradient_flow", "Gradient flow", f"‖∂loss/∂h_t‖ per step; {gradient.describe()}.", df, display)


def trials_export(an: Analysis) -> pd.DataFrame:
    """The raw trials (one row each), without the derived columns of the analysis."""
    keep = [c for c in an.trials.columns if c not in ("finished", "has_metric")]
    return an.trials[keep]


def build_tables(an: Analysis, gradient: GradientFlow | None = None) -> list[Table]:
    tables = [
        verdicts_table(an),
        summary_table(an),
        ranking_table(an),
        comparisons_table(an),
        dependency_table(an),
        importance_table(an),
        marginals_table(an),
        speed_table(an),
        framework_tests_table(an),
        pairs_table(an),
    ]
    if gradient is not None and gradient.ok:
        tables.append(gradient_table(gradient))
    return tables


def write_tables(tables: list[Table], out_dir: Path, trials: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write every table in the four formats into ``out_dir``; returns the CSV paths by key."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csvs = {}
    for t in tables:
        files = {
            "csv": out_dir / f"{t.key}.csv",
            "md": out_dir / f"{t.key}.md",
            "tex": out_dir / f"{t.key}.tex",
            "html": out_dir / f"{t.key}.html",
        }
        t.data.to_csv(files["csv"], index=False, float_format="%.10g", lineterminator="\n")
        files["md"].write_text(f"### {t.title}\n\n{t.caption}\n\n{to_markdown(t.display)}\n", encoding="utf-8")
        files["tex"].write_text(to_latex(t.display, t.caption, f"tab:{t.key}"), encoding="utf-8")
        files["html"].write_text(_standalone_html(t), encoding="utf-8")
        t.files = files
        csvs[t.key] = files["csv"]
    if trials is not None:
        path = out_dir / "trials.csv"
        trials.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")
        csvs["trials"] = path
    return csvs


# ------------------------------------------------------------------------------------------------------
# writers
# ------------------------------------------------------------------------------------------------------
def _cell(x) -> str:
    if isinstance(x, (float, np.floating)):
        return num(float(x))
    return "" if x is None else str(x)


def to_markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(no rows)_"
    esc = lambda s: _cell(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    head = "| " + " | ".join(esc(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "–": "--",
    "‖": r"$\|$",
    "∂": r"$\partial$",
    "η": r"$\eta$",
    "²": r"$^2$",
    "·": r"$\cdot$",
    "α": r"$\alpha$",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(ch, ch) for ch in text)


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (``\\usepackage{booktabs}``)."""
    lines = [
        "% generated by rnn-bench report; needs \\usepackage{booktabs}",
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{label}}}",
    ]
    if df.empty:
        lines += [r"\emph{(no rows)}", r"\end{table}", ""]
        return "\n".join(lines)
    lines.append(r"\begin{tabular}{" + "l" * len(df.columns) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(latex_escape(str(c)) for c in df.columns) + r" \\")
    lines.append(r"\midrule")
    for row in df.itertuples(index=False):
        lines.append(" & ".join(latex_escape(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


VERDICT_CLASS = {"better": "better", "worse": "worse", "baseline": "ref", "better" + BOTH: "better",
                 "worse" + BOTH: "worse"}  # fmt: skip


def to_html(df: pd.DataFrame, table_id: str = "") -> str:
    if df.empty:
        return "<p class='empty'>(no rows)</p>"
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    out = [f'<div class="table-wrap"><table class="data"{ident}>', "<thead><tr>"]
    out += [f"<th>{html.escape(str(c))}</th>" for c in df.columns]
    out.append("</tr></thead><tbody>")
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            text = _cell(v)
            cls = VERDICT_CLASS.get(text.split(":")[0].replace(FRAGILE, ""))  # the verdict, without mark or effect
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _standalone_html(t: Table) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(t.title)}</title>'
        "</head><body>"
        f"<h1>{html.escape(t.title)}</h1><p>{html.escape(t.caption)}</p>{to_html(t.display, t.key)}</body></html>\n"
    )
