"""The report's figures (seaborn styling on matplotlib, drawn on ``Figure`` objects, never pyplot's global
state): PNG for the page, PDF beside it for papers.

Conventions shared by every figure: one colour and marker per variant (``palette``), PyTorch drawn solid
and TensorFlow dashed or hatched, the task's trivial baseline as a dotted grey reference line on every
metric axis, whose label says whether lower or higher is better; legends sit outside the axes and
figure sizes grow with the number of variants, so labels do not overlap. A figure that needs more data
than the store has (a second length, a second framework, ...) is skipped with a note.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from harness.analysis.statistics import MIN_SELECTION
from harness.analysis.study import Analysis, TaskInfo, framework_name, trials_for_top
from harness.diagnostics.probes import GradientFlow
from harness.report.palette import REFERENCE_LINE, Palette, hatch, linestyle

DPI = 110
PAD_INCHES = 0.1  # around the tight box: matplotlib's savefig.pad_inches
SIG_MARK = {"better": "▲", "worse": "▼"}


@dataclass
class FigureFile:
    key: str
    section: str
    title: str
    caption: str
    png: Path
    pdf: Path


class FigureSet:
    """Collects the figures written into ``out_dir`` and the notes about figures that were skipped."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.files: list[FigureFile] = []
        self.notes: list[str] = []
        self.helped = 0  # of its figures, how many a helper process drew (``harness.report.drawing``)

    def save(self, fig: Figure, key: str, section: str, title: str, caption: str) -> None:
        png, pdf = self.out_dir / f"{key}.png", self.out_dir / f"{key}.pdf"
        _drop_unseen_minor_ticks(fig)
        fig.savefig(png, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
        # The PDF keeps the PNG's layout and box rather than laying the figure out again (6-12 % faster on
        # 16 of greff's figures, 2026-12-07).
        box = fig.get_tightbbox().padded(PAD_INCHES)
        fig.set_layout_engine("none")
        fig.savefig(pdf, bbox_inches=box, metadata={"CreationDate": None, "Producer": None, "Creator": None})
        self.files.append(FigureFile(key, section, title, caption, png, pdf))

    def skip(self, section: str, why: str) -> None:
        self.notes.append(f"{section}: {why}")

    def add(self, other: FigureSet) -> None:
        """Append the figures and notes of ``other`` (drawn apart, in another process or call)."""
        self.files += other.files
        self.notes += other.notes
        self.helped += other.helped


def _drop_unseen_minor_ticks(fig: Figure) -> None:
    """Remove the minor ticks that would draw nothing: no tick mark (the style hides them), no grid line
    and an empty label at every one (a log axis over more than a decade labels none). Matplotlib still lays
    each one out (a ``greff`` metric-against-size PNG: 0.55 s to 0.33 s without them); the files are the
    same (the ``greff`` report's PNGs, byte for byte)."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_minor_ticks()
            if not ticks or isinstance(axis.get_minor_locator(), NullLocator):
                continue
            tick = ticks[0]
            if any(line.get_visible() for line in (tick.tick1line, tick.tick2line, tick.gridline)):
                continue
            if not any(axis.get_minor_formatter().format_ticks(axis.get_minorticklocs())):
                axis.set_minor_locator(NullLocator())


def _styled(draw: Callable[[], None]) -> None:
    import matplotlib as mpl
    import seaborn as sns

    with mpl.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85):
        draw()


#: One figure of the page: the name of its drawing function in ``drawers`` and its arguments (plain values,
#: so that a helper process can be sent it: ``harness.report.drawing``).
Call = tuple[str, tuple]


def figure_calls(analysis: Analysis) -> list[Call]:
    """Every figure of the report but the gradient flow (drawn once the probe is back), in the page's order."""
    tasks = list(analysis.tasks)
    per_length = [(task, T) for task in tasks for T in analysis.lengths(task)]
    per_task = [(task,) for task in tasks]
    return [
        *[("boxes", a) for a in per_length],
        *[("forest", a) for a in per_task],
        ("ranking", ()),
        *[("dependency", a) for a in per_task],
        *[("generalisation", a) for a in per_length],
        *[("pareto", a) for a in per_length],
        *[("learning", a) for a in per_task],
        ("importance", ()),
        *[("marginals", a) for a in per_task],
        *[("interaction", a) for a in per_task],
        ("frameworks_metric", ()),
        ("frameworks_speed", ()),
    ]


def drawers(analysis: Analysis, figs: FigureSet, pal: Palette) -> dict[str, Callable[..., None]]:
    """The drawing function of each ``Call`` name, bound to the analysis, the figure set and the palette."""
    tasks = analysis.tasks
    return {
        "boxes": lambda task, T: variant_boxes(analysis, figs, pal, task, tasks[task], T),
        "forest": lambda task: forest_figure(analysis, figs, task, tasks[task]),
        "ranking": lambda: ranking_figure(analysis, figs, pal),
        "dependency": lambda task: dependency_figure(analysis, figs, pal, task, tasks[task]),
        "generalisation": lambda task, T: generalisation_figure(analysis, figs, pal, task, tasks[task], T),
        "pareto": lambda task, T: pareto_figure(analysis, figs, pal, task, tasks[task], T),
        "learning": lambda task: learning_figure(analysis, figs, pal, task, tasks[task]),
        "importance": lambda: importance_figure(analysis, figs),
        "marginals": lambda task: marginal_figure(analysis, figs, pal, task, tasks[task]),
        "interaction": lambda task: interaction_figure(analysis, figs, task, tasks[task]),
        "frameworks_metric": lambda: framework_metric_figure(analysis, figs, pal),
        "frameworks_speed": lambda: speed_figure(analysis, figs, pal),
    }


def draw(analysis: Analysis, out_dir: Path, call: Call) -> FigureSet:
    """Draw one figure of the page into ``out_dir``: its files and its notes (a figure skipped says why)."""
    figs = FigureSet(out_dir)
    _styled(lambda: drawers(analysis, figs, Palette(analysis.drawn_variants))[call[0]](*call[1]))
    return figs


def draw_gradient(analysis: Analysis, out_dir: Path, gradient: GradientFlow | None) -> FigureSet:
    """The gradient-flow figure (or the note that says why there is none)."""
    figs = FigureSet(out_dir)
    _styled(lambda: gradient_figure(analysis, figs, Palette(analysis.drawn_variants), gradient))
    return figs


# ------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------
def _log_scale(info: TaskInfo, values: np.ndarray) -> bool:
    """Log y for lower-is-better metrics spanning more than a decade (MSE, cross-entropy)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return bool(not info.higher_is_better and len(v) and v.min() > 0 and v.max() / v.min() > 10)


def _reference(ax, value: float | None, orientation: str = "h", label: str | None = "trivial baseline") -> None:
    if value is None or not math.isfinite(value):
        return
    if orientation == "h":
        ax.axhline(value, **REFERENCE_LINE, label=label, zorder=1)
    else:
        ax.axvline(value, **REFERENCE_LINE, label=label, zorder=1)


def _short(n: float) -> str:
    if not math.isfinite(n):
        return "?"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def _no_data(ax, text: str = "no trials") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")


def _variant_handles(pal: Palette, variants: list[str], lines: bool = True) -> list:
    if lines:
        return [Line2D([], [], color=pal.color(v), marker=pal.marker(v), label=v) for v in variants]
    return [Patch(facecolor=pal.color(v), edgecolor="#333333", label=v) for v in variants]


def _framework_handles(frameworks: list[str], kind: str = "line") -> list:
    if kind == "line":
        return [Line2D([], [], color="#333333", linestyle=linestyle(f), label=framework_name(f)) for f in frameworks]
    return [
        Patch(facecolor="#bbbbbb", edgecolor="#333333", hatch=hatch(f), label=framework_name(f)) for f in frameworks
    ]


def _length_axis(ax, lengths: list[int]) -> None:
    if len(lengths) > 1 and max(lengths) / min(lengths) >= 4:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(lengths))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))


# ------------------------------------------------------------------------------------------------------
# 1. variant box plots (Greff et al. Fig. 3)
# ------------------------------------------------------------------------------------------------------
def variant_boxes(analysis: Analysis, figs: FigureSet, pal: Palette, task: str, info: TaskInfo, T: int) -> None:
    df = analysis.trials[(analysis.trials["task"] == task) & (analysis.trials["length"] == T)]
    top = (
        analysis.top[(analysis.top["task"] == task) & (analysis.top["length"] == T)]
        if len(analysis.top)
        else analysis.top
    )
    variants = [v for v in analysis.variants if v in set(df["variant"])]
    frameworks = [f for f in analysis.frameworks if f in set(df["framework"])]
    comps = analysis.comparisons
    if len(comps):
        comps = comps[(comps["task"] == task) & (comps["length"] == T)]
    values = df.loc[df["has_metric"], "test_metric"].to_numpy(float)
    log = _log_scale(info, values)
    n_fw = len(frameworks)
    width = max(6.0, len(variants) * (0.55 + 0.35 * n_fw) + 2.0)
    panels = [("all", df[df["has_metric"]], "all trials")]
    if len(top):  # only cells whose top 10 % holds MIN_SELECTION trials are in ``analysis.top``
        panels.append(("top", top, "best 10 % of trials by validation metric"))
    fig = Figure(figsize=(width, 3.8 * len(panels)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True, sharey=True, squeeze=False)).ravel()
    offsets = {f: (i - (n_fw - 1) / 2) * (0.8 / max(n_fw, 1)) for i, f in enumerate(frameworks)}
    box_w = 0.7 / max(n_fw, 1)
    for ax, (selection, frame, title) in zip(axes, panels):
        drawn = 0
        for i, v in enumerate(variants):
            for f in frameworks:
                x = frame.loc[(frame["variant"] == v) & (frame["framework"] == f), "test_metric"].to_numpy(float)
                x = x[np.isfinite(x)]
                if not len(x):
                    continue
                drawn += 1
                verdict = ""
                if len(comps) and v != analysis.baseline:
                    row = comps[(comps["selection"] == selection) & (comps["variant"] == v) & (comps["framework"] == f)]
                    verdict = row["direction"].iloc[0] if len(row) else ""
                strong = v == analysis.baseline or verdict in SIG_MARK
                pos = i + offsets[f]
                bp = ax.boxplot(
                    [x],
                    positions=[pos],
                    widths=box_w,
                    whis=(0, 100),
                    showmeans=True,
                    patch_artist=True,
                    manage_ticks=False,
                    meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 4},
                    medianprops={"color": "black", "linewidth": 1.5},
                    whiskerprops={"color": "#333333"},
                    capprops={"color": "#333333"},
                )
                for box in bp["boxes"]:
                    box.set_facecolor(pal.color(v))
                    box.set_alpha(0.95 if strong else 0.35)
                    box.set_edgecolor("black" if strong else "#666666")
                    box.set_linewidth(1.6 if verdict in SIG_MARK else 1.0)
                    box.set_hatch(hatch(f))
                jitter = np.random.default_rng(len(x) + i).uniform(-box_w / 4, box_w / 4, size=len(x))
                ax.scatter(pos + jitter, x, s=6, color="black", alpha=0.45, zorder=3, linewidths=0)
                if verdict in SIG_MARK:
                    ax.annotate(
                        SIG_MARK[verdict],
                        xy=(pos, x.max()),
                        xytext=(0, 3),
                        textcoords="offset points",
                        ha="center",
                        va="bottom",
                        fontsize=10,
                        fontweight="bold",
                    )
        _reference(ax, info.baseline(T))
        if log:
            ax.set_yscale("log")
        ax.margins(y=0.08)
        ax.grid(axis="x", visible=False)
        ax.set_title(f"{title}", loc="left", fontsize=10)
        ax.set_ylabel(info.metric_label("test") + (" (log)" if log else ""))
        if not drawn:
            _no_data(ax)
    labels = [_box_label(analysis, df, v, frameworks) for v in variants]
    axes[-1].set_xticks(range(len(variants)))
    # the figure is ~1 inch wider per variant, so the three-line labels fit unrotated at any count
    axes[-1].set_xticklabels(labels, fontsize=8)
    axes[-1].set_xlim(-0.6, len(variants) - 0.4)
    handles = _framework_handles(frameworks, "patch") + [
        Line2D([], [], marker="D", linestyle="", markerfacecolor="white", markeredgecolor="black", label="mean"),
        Line2D([], [], **REFERENCE_LINE, label="trivial baseline"),
    ]
    if len(variants) > 1:
        handles += [
            Line2D([], [], marker="$▲$", linestyle="", color="black", label=f"better than {analysis.baseline}*"),
            Line2D([], [], marker="$▼$", linestyle="", color="black", label=f"worse than {analysis.baseline}*"),
            Patch(facecolor="#bbbbbb", alpha=0.35, edgecolor="#666666", label="faded: no sig. difference"),
        ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(4, len(handles)), fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}, T = {T}: test {info.metric} per variant", fontsize=12)
    caption = (
        f"Test {info.metric} of every trial (top) and of the best 10 % chosen by validation {info.metric} (bottom) "
        f"on {task}, T = {T}. Boxes: quartiles; whiskers: full range; ◆: mean; dots: trials. "
        f"Hatched boxes are TensorFlow, plain ones PyTorch. * Against {analysis.baseline}: {analysis.plan.short()} "
        "(the top 10 %: its unpaired counterpart); significant differences are marked ▲/▼ and drawn opaque. n: the "
        "trials with a test metric in each box (one framework each). Parameter counts are "
        "means over the trials' hidden sizes." + _selection_note(analysis, task, T, len(panels) > 1)
    )
    if len(panels) == 1:
        caption = caption.replace(f" (top) and of the best 10 % chosen by validation {info.metric} (bottom)", "")
    figs.save(fig, f"box_{task}_T{T}", "variants", f"{task}, T = {T}", caption)


def forest_figure(analysis: Analysis, figs: FigureSet, task: str, info: TaskInfo) -> None:
    """Per task, a forest plot of every variant's effects against the baseline with their 95 % intervals,
    PyTorch and TensorFlow side by side: the difference in solved rate (top row) and the shift of the test
    metric (bottom row), one column per T; a filled marker is a significant verdict of the primary test."""
    c = analysis.comparisons
    c = c[(c["selection"] == "all") & (c["task"] == task)] if len(c) else c
    if c.empty:
        return
    lengths = sorted(int(T) for T in c["length"].unique())
    variants = [v for v in analysis.variants if v in set(c["variant"])]
    frameworks = [f for f in analysis.frameworks if f in set(c["framework"])]
    rows = (("solved_difference", "Δ solved rate (variant − baseline)"),
            ("shift", f"shift of test {info.metric} (variant − baseline)"))  # fmt: skip
    fig = Figure(figsize=(3.2 + 2.6 * len(lengths), 1.4 + 0.55 * len(variants) * 2), layout="constrained")
    axes = fig.subplots(2, len(lengths), squeeze=False)
    offsets = {f: (i - (len(frameworks) - 1) / 2) * 0.28 for i, f in enumerate(frameworks)}
    markers = {"torch": "o", "tf": "s"}
    for col, T in enumerate(lengths):
        for row, (effect, label) in enumerate(rows):
            ax = axes[row][col]
            for i, v in enumerate(variants):
                for f in frameworks:
                    r = c[(c["length"] == T) & (c["variant"] == v) & (c["framework"] == f)]
                    if r.empty or not np.isfinite(r[effect].iloc[0]):
                        continue
                    r = r.iloc[0]
                    y = i + offsets[f]
                    lo, hi = r[f"{effect}_low"], r[f"{effect}_high"]
                    if np.isfinite(lo) and np.isfinite(hi):
                        ax.plot([lo, hi], [y, y], color="#444444", linewidth=1.2)
                    significant = r["direction"] in ("better", "worse")
                    ax.plot([r[effect]], [y], marker=markers.get(f, "o"), linestyle="", markersize=5,
                            markeredgecolor="black", markerfacecolor="black" if significant else "white")  # fmt: skip
            ax.axvline(0.0, color="#888888", linewidth=0.8, linestyle="--")
            ax.set_yticks(range(len(variants)))
            ax.set_yticklabels(variants if col == 0 else [], fontsize=8)
            ax.set_ylim(len(variants) - 0.5, -0.5)
            ax.set_xlabel(label, fontsize=8)
            if effect == "shift" and info.metric and not info.higher_is_better:
                ax.set_title(f"T = {T} (← better)" if row == 0 else "", loc="left", fontsize=9)
            elif row == 0:
                ax.set_title(f"T = {T}", loc="left", fontsize=9)
    handles = [Line2D([], [], marker=markers.get(f, "o"), linestyle="", markerfacecolor="white",
                      markeredgecolor="black", label=framework_name(f)) for f in frameworks]  # fmt: skip
    handles.append(Line2D([], [], marker="o", linestyle="", color="black", label="significant (primary test)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}: effects against {analysis.baseline}", fontsize=12)
    better = "higher" if info.higher_is_better else "lower"
    caption = (
        f"Every variant against {analysis.baseline} on {task}, per T, PyTorch (circles) and TensorFlow (squares) "
        "side by side. Top: the difference in solved rate with Newcombe's 95 % interval (paired by seed where the "
        f"trials pair); bottom: the Hodges-Lehmann shift of the test {info.metric} ({better} is better) with a "
        f"seeded bootstrap 95 % interval. Filled: significant under the primary test ({analysis.plan.short()})."
    )
    figs.save(fig, f"forest_{task}", "variants", f"Effects on {task}", caption)


def _box_label(analysis: Analysis, df: pd.DataFrame, v: str, frameworks: list[str]) -> str:
    """The tick label under a variant's boxes: name, parameters, n per box (trials with a test metric in
    one framework), and the diverged and failed trials."""
    sub = df[df["variant"] == v]
    params = sub.loc[sub["param_count"] > 0, "param_count"]
    state = sub["state_size"].dropna() if "state_size" in sub else pd.Series(dtype=float)
    counts = [int((sub["has_metric"] & (sub["framework"] == f)).sum()) for f in frameworks]
    if len(set(counts)) <= 1:
        n = f"n = {counts[0] if counts else 0}" + (" per box" if len(frameworks) > 1 else "")
    else:
        n = "n = " + " / ".join(str(c) for c in counts)
    extra = []
    div, fail = int((sub["status"] == "diverged").sum()), int(sub["status"].isin(["failed", "timeout"]).sum())
    if div:
        extra.append(f"{div} div.")
    if fail:
        extra.append(f"{fail} failed")
    name = f"{v} (ref.)" if v == analysis.baseline else v
    text = (f"{name}\n{_short(params.mean()) if len(params) else '?'} params\n"
            f"{_short(state.mean()) if len(state) else '?'} state\n{n}")  # fmt: skip
    return text + ("\n" + ", ".join(extra) if extra else "")


def _selection_note(analysis: Analysis, task: str, T: int, drawn: bool) -> str:
    """What the caption says about cells whose top 10 % holds too few trials to be shown."""
    s = analysis.summary
    cells = s[(s["task"] == task) & (s["length"] == T) & (s["with_metric"] > 0)] if len(s) else s
    small = cells[cells["top_n"] < MIN_SELECTION] if len(cells) else cells
    if small.empty:
        return ""
    sizes = ", ".join(str(n) for n in sorted({int(n) for n in small["top_n"]}))
    what = "The best-10 % panel is left out" if not drawn else f"{len(small)} of its {len(cells)} boxes are left out"
    return (f" {what}: the best 10 % of a cell holds {sizes} trial(s) here, fewer than the {MIN_SELECTION} a box or "
            f"a test needs ({trials_for_top()} trials per cell give {MIN_SELECTION}).")  # fmt: skip


def ranking_figure(analysis: Analysis, figs: FigureSet, pal: Palette) -> None:
    r = analysis.ranking
    t = r.table
    if len(t) < 2:
        figs.skip("Ranking", "a ranking needs two variants with results in the same task and T")
        return
    fig = Figure(figsize=(8.0, 1.6 + 0.36 * len(t)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(t))[::-1]
    cd = r.critical_difference
    for yi, row in zip(y, t.itertuples(index=False)):
        if math.isfinite(cd):
            ax.plot([row.mean_rank - cd / 2, row.mean_rank + cd / 2], [yi, yi], color=pal.color(row.variant),
                    linewidth=5, alpha=0.35, solid_capstyle="butt")  # fmt: skip
        ax.plot(row.mean_rank, yi, marker=pal.marker(row.variant), color=pal.color(row.variant), markersize=9,
                markeredgecolor="black")  # fmt: skip
    ax.set_yticks(y)
    ax.set_yticklabels([f"{row.variant}  ({row.blocks} blocks)" for row in t.itertuples(index=False)])
    ax.set_xlabel("mean rank over task/T blocks (lower is better ↓)")
    half = cd / 2 if math.isfinite(cd) else 0.0
    ax.set_xlim(
        min(0.5, float(t["mean_rank"].min()) - half - 0.1), max(len(t) + 0.5, float(t["mean_rank"].max()) + half + 0.1)
    )
    ax.grid(axis="y", visible=False)
    title = "Ranking across tasks"
    if math.isfinite(cd):
        title += f": Nemenyi critical difference {cd:.2f}"
    if math.isfinite(r.friedman_p):
        title += f", Friedman p = {r.friedman_p:.2g}"
    fig.suptitle(title, fontsize=12)
    caption = (
        f"Mean rank of each variant (1 = best in a block), ranking the variants of every task and T by the {r.score} "
        "(a configuration counted once: its PyTorch and TensorFlow runs are two measurements of it, averaged). "
        "Bars span "
        f"the mean rank ± half the Nemenyi critical difference (α = 0.05, over the {r.complete_blocks} blocks in "
        "which every variant has results): two variants whose bars do not overlap differ significantly in rank."
    )
    figs.save(fig, "ranking", "ranking", "ranking across tasks", caption)


# ------------------------------------------------------------------------------------------------------
# 2. dependency length
# ------------------------------------------------------------------------------------------------------
def dependency_figure(analysis: Analysis, figs: FigureSet, pal: Palette, task: str, info: TaskInfo) -> None:
    lengths = analysis.lengths(task)
    if len(lengths) < 2:
        figs.skip(
            "Dependency length",
            f"{task} has trials at one length only (T = {lengths[0]}); the curves against T need two or more",
        )
        return
    dep = analysis.dependency[analysis.dependency["task"] == task]
    variants = [v for v in analysis.variants if v in set(dep["variant"])]
    frameworks = [f for f in analysis.frameworks if f in set(dep["framework"])]
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    ax_s, ax_m = fig.subplots(1, 2)
    lines = [(v, f) for v in variants for f in frameworks]
    for j, (v, f) in enumerate(lines):
        d = dep[(dep["variant"] == v) & (dep["framework"] == f)].sort_values("length")
        if d.empty:
            continue
        style = {"color": pal.color(v), "marker": pal.marker(v), "linestyle": linestyle(f), "markersize": 5}
        # dodge the lines a little along T so that their interval bars do not hide one another
        x = d["length"].to_numpy(float) * 1.015 ** (j - (len(lines) - 1) / 2)
        rate = d["solved_rate"].to_numpy(float)
        spread = np.vstack([rate - d["solved_low"].to_numpy(float), d["solved_high"].to_numpy(float) - rate])
        ax_s.plot(x, rate, **style)
        ax_s.errorbar(x, rate, yerr=spread, fmt="none", ecolor=pal.color(v), elinewidth=0.9, capsize=2, alpha=0.55)
        ax_m.plot(d["length"], d["best"], **style)
    base = [(T, info.baseline(T)) for T in lengths if info.baseline(T) is not None]
    if base:
        ax_m.plot([b[0] for b in base], [b[1] for b in base], **REFERENCE_LINE)
    for ax in (ax_s, ax_m):
        _length_axis(ax, lengths)
        ax.set_xlabel("dependency length T")
    ax_s.set_ylim(-0.03, 1.03)
    ax_s.set_ylabel("solved rate (higher is better ↑)")
    ax_s.set_title("share of trials that solve the task (bars: exact 95 % interval)", loc="left", fontsize=10)
    if _log_scale(info, dep["best"].to_numpy(float)):
        ax_m.set_yscale("log")
    ax_m.set_ylabel(info.metric_label("best test"))
    ax_m.set_title("best trial", loc="left", fontsize=10)
    handles = (
        _variant_handles(pal, variants)
        + _framework_handles(frameworks)
        + [Line2D([], [], **REFERENCE_LINE, label="trivial baseline")]
    )
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}: how long a lag each variant bridges", fontsize=12)
    caption = (
        f"Solved rate (solved / trials that trained to an outcome; bars: exact Clopper-Pearson 95 % interval) and "
        f"best test {info.metric} against the dependency length T on {task}; solid lines PyTorch, dashed TensorFlow "
        "(drawn slightly apart along T so that the bars stay apart)."
    )
    figs.save(fig, f"dependency_{task}", "dependency", f"{task}: dependency length", caption)


# ------------------------------------------------------------------------------------------------------
# 2b. length generalisation (Delétang et al. 2023, their Fig. 2 and Table 2)
# ------------------------------------------------------------------------------------------------------
def generalisation_figure(analysis: Analysis, figs: FigureSet, pal: Palette, task: str, info: TaskInfo,
                          T: int) -> None:  # fmt: skip
    """The primary metric against the evaluation length, per variant: median and interquartile range over
    configurations (left), the best configuration (right); nothing where no trial was tested beyond T."""
    gen = analysis.generalisation
    if gen.empty:
        return
    gen = gen[(gen["task"] == task) & (gen["length"] == T)]
    if gen.empty:
        return
    variants = [v for v in analysis.variants if v in set(gen["variant"])]
    frameworks = [f for f in analysis.frameworks if f in set(gen["framework"])]
    lengths = sorted(int(L) for L in gen["test_length"].unique())
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    ax_m, ax_b = fig.subplots(1, 2, sharey=True)
    lines = [(v, f) for v in variants for f in frameworks]
    for j, (v, f) in enumerate(lines):
        d = gen[(gen["variant"] == v) & (gen["framework"] == f)].sort_values("test_length")
        if d.empty:
            continue
        style = {"color": pal.color(v), "marker": pal.marker(v), "linestyle": linestyle(f), "markersize": 5}
        x = d["test_length"].to_numpy(float) * 1.015 ** (j - (len(lines) - 1) / 2)  # dodged, as dependency_figure
        median = d["median"].to_numpy(float)
        spread = np.vstack([median - d["q25"].to_numpy(float), d["q75"].to_numpy(float) - median])
        ax_m.plot(x, median, **style)
        ax_m.errorbar(x, median, yerr=spread, fmt="none", ecolor=pal.color(v), elinewidth=0.9, capsize=2, alpha=0.55)
        ax_b.plot(d["test_length"], d["best"], **style)
    for ax in (ax_m, ax_b):
        _length_axis(ax, lengths)
        ax.axvline(T, color="#999999", linewidth=0.8, linestyle=(0, (1, 2)), zorder=1)
        _reference(ax, info.baseline(T), label=None)
        ax.set_xlabel("evaluation length (the dotted line: the training length T)")
    if _log_scale(info, gen[["median", "best"]].to_numpy(float).ravel()):
        ax_m.set_yscale("log")
    ax_m.set_ylabel(info.metric_label("test"))
    ax_m.set_title("median over configurations (bars: interquartile range)", loc="left", fontsize=10)
    ax_b.set_title("best configuration (best generalisation score)", loc="left", fontsize=10)
    handles = (_variant_handles(pal, variants) + _framework_handles(frameworks)
               + [Line2D([], [], **REFERENCE_LINE, label=f"trivial baseline at T = {T}")])  # fmt: skip
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}, trained up to T = {T}: beyond the training length", fontsize=12)
    counts = gen.groupby(["variant", "framework"])["configurations"].max()
    caption = (
        f"Test {info.metric} at the training length T = {T} and at each longer test length, at each trial's best "
        f"validation checkpoint, on {task} (Delétang et al. 2023's protocol): left, the median and interquartile "
        f"range over {int(counts.min())}–{int(counts.max())} configurations per variant and framework; right, the "
        "configuration whose mean metric beyond T (its generalisation score) is best. Solid lines PyTorch, dashed "
        "TensorFlow; the grey dotted line is the trivial baseline at T."
    )
    figs.save(fig, f"generalisation_{task}_T{T}", "generalisation", f"{task}, T = {T}: length generalisation", caption)


# ------------------------------------------------------------------------------------------------------
# 2c. what a result costs: the metric against parameters and state size (Long Range Arena's two views)
# ------------------------------------------------------------------------------------------------------
def pareto_figure(analysis: Analysis, figs: FigureSet, pal: Palette, task: str, info: TaskInfo, T: int) -> None:
    """Test metric against parameters (left) and state size (right) per variant: every trial as a faint
    point, the variant's median with its interquartile range, and the Pareto front of the medians."""
    df = analysis.trials[(analysis.trials["task"] == task) & (analysis.trials["length"] == T)
                         & analysis.trials["has_metric"]]  # fmt: skip
    df = df[(df["param_count"] > 0) & df["state_size"].notna()]
    if df.empty:
        return
    variants = [v for v in analysis.variants if v in set(df["variant"])]
    fig = Figure(figsize=(11.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, column, label in zip(axes, ("param_count", "state_size"),
                                 ("parameters (the cell and its readout)", "state size (floats per sequence)")):
        medians = []
        for v in variants:
            d = df[df["variant"] == v]
            x, y = d[column].to_numpy(float), d["test_metric"].to_numpy(float)
            ax.scatter(x, y, s=9, color=pal.color(v), marker=pal.marker(v), alpha=0.25, linewidths=0)
            mx, my = float(np.median(x)), float(np.median(y))
            q25, q75 = np.quantile(y, [0.25, 0.75])
            ax.errorbar([mx], [my], yerr=[[my - q25], [q75 - my]], color=pal.color(v), marker=pal.marker(v),
                        markersize=7, markeredgecolor="#333333", capsize=2, elinewidth=1.0, zorder=3)  # fmt: skip
            medians.append((mx, my))
        front = pareto_front(medians, info.higher_is_better)
        if len(front) > 1:
            ax.step(*zip(*front), where="post", color="#777777", linewidth=0.9, linestyle=(0, (4, 2)), zorder=2)
        if df[column].max() / max(df[column].min(), 1) >= 4:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        _reference(ax, info.baseline(T), label=None)
    if _log_scale(info, df["test_metric"].to_numpy(float)):
        axes[0].set_yscale("log")
    axes[0].set_ylabel(info.metric_label("test"))
    axes[0].set_title("against parameters", loc="left", fontsize=10)
    axes[1].set_title("against recurrent state", loc="left", fontsize=10)
    handles = (_variant_handles(pal, variants)
               + [Line2D([], [], color="#777777", linestyle=(0, (4, 2)), label="Pareto front of the medians"),
                  Line2D([], [], **REFERENCE_LINE, label="trivial baseline")])  # fmt: skip
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}, T = {T}: what each result costs", fontsize=12)
    caption = (
        f"Test {info.metric} of every trial (faint points, both frameworks) against its cell's parameters (left) "
        f"and the floats of recurrent state it keeps per sequence (right) on {task} at T = {T}; the large marker "
        "is each variant's median trial (bars: interquartile range of the metric), the dashed line the Pareto "
        "front of those medians (no variant's median is both smaller and better)."
    )
    figs.save(fig, f"pareto_{task}_T{T}", "variants", f"{task}, T = {T}: metric against size", caption)


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[tuple[float, float]]:
    """The points (size, metric) that no other point beats with a size no larger and a better metric,
    by increasing size."""
    sign = 1.0 if higher_is_better else -1.0
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -sign * p[1])):
        if not front or sign * y > sign * front[-1][1]:
            front.append((x, y))
    return front


# ------------------------------------------------------------------------------------------------------
# 3. learning curves
# ------------------------------------------------------------------------------------------------------
RUNNING_LINE = {"linestyle": (0, (2, 2)), "linewidth": 1.0, "alpha": 0.9}  # a running trial's curve so far


def running_curves(analysis: Analysis, task: str) -> pd.DataFrame:
    """The validation curves so far of the running trials of ``task``: trial_id, length, variant, step, metric."""
    run, points = analysis.running, analysis.running_curves
    cols = ["trial_id", "length", "variant", "step", "metric"]
    if run.empty or points.empty:
        return pd.DataFrame(columns=cols)
    mine = run.loc[run["task"] == task, ["trial_id", "length", "variant"]]
    val = points[(points["split"] == "validation") & points["metric"].notna()]
    return val.merge(mine, on="trial_id")[cols].sort_values(["trial_id", "step"], kind="stable")


def learning_figure(analysis: Analysis, figs: FigureSet, pal: Palette, task: str, info: TaskInfo) -> None:
    lc = analysis.learning[analysis.learning["task"] == task] if len(analysis.learning) else analysis.learning
    busy = running_curves(analysis, task)
    if lc.empty and busy.empty:
        figs.skip("Learning curves", f"no validation curves stored for the best trials of {task}")
        return
    lengths = sorted({int(T) for T in lc["length"]} | {int(T) for T in busy["length"]})
    ncols = min(3, len(lengths))
    nrows = math.ceil(len(lengths) / ncols)
    fig = Figure(figsize=(4.6 * ncols + 1.8, 3.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    variants = [v for v in analysis.drawn_variants if v in set(lc["variant"]) | set(busy["variant"])]
    for ax, T in zip(axes, lengths):
        d = lc[lc["length"] == T]
        for v in variants:
            dv = d[d["variant"] == v].sort_values("step")
            if dv.empty:
                continue
            ax.plot(
                dv["step"],
                dv["median"],
                color=pal.color(v),
                marker=pal.marker(v),
                markersize=3.5,
                linewidth=1.6,
                markevery=max(1, len(dv) // 8),
            )
            ax.fill_between(dv["step"], dv["q25"], dv["q75"], color=pal.color(v), alpha=0.18, linewidth=0)
        for _, curve in busy[busy["length"] == T].groupby("trial_id", sort=True):
            v = curve["variant"].iloc[0]
            ax.plot(curve["step"], curve["metric"], color=pal.color(v), **RUNNING_LINE)
            ax.plot(curve["step"].iloc[-1:], curve["metric"].iloc[-1:], color=pal.color(v), marker=pal.marker(v),
                    markerfacecolor="white", markersize=4.5, linestyle="none")  # fmt: skip
        _reference(ax, info.baseline(int(T)))
        values = np.concatenate([d[["q25", "median", "q75"]].to_numpy(float).ravel(),
                                 busy.loc[busy["length"] == T, "metric"].to_numpy(float)])  # fmt: skip
        if _log_scale(info, values):
            ax.set_yscale("log")
        ax.set_title(f"T = {T}", loc="left", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(info.metric_label("validation"))
    for ax in axes[len(lengths) :]:
        ax.set_visible(False)
    handles = _variant_handles(pal, variants) + [Line2D([], [], **REFERENCE_LINE, label="trivial baseline")]
    if len(busy):
        handles.append(Line2D([], [], color="#333333", **RUNNING_LINE, label="running (curve so far)"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}: learning curves", fontsize=12)
    caption = (
        f"Median (line) and interquartile range (band) of the validation {info.metric} against the training "
        f"step, over each variant's best 10 % of trials on {task} (both frameworks). A trial that stopped "
        "early because it solved the task keeps its last value."
    )
    if len(lc) and (lc["selection"] == "all").any():
        whole = sorted({f"{r.variant} (T = {r.length})" for r in lc[lc["selection"] == "all"].itertuples()})
        caption += (f" Where the best 10 % holds fewer than {MIN_SELECTION} trials per framework the curves are "
                    f"over all trials: {', '.join(whole[:12])}{' …' if len(whole) > 12 else ''}.")  # fmt: skip
    if len(busy):
        n = busy["trial_id"].nunique()
        caption += (f" Thin dashed lines ending in an open marker: the curve so far of {n} trial"
                    f"{'s' if n != 1 else ''} still running when the report was built (in no statistic).")  # fmt: skip
    figs.save(fig, f"learning_{task}", "learning", f"{task}: learning curves", caption)


# ------------------------------------------------------------------------------------------------------
# 4. hyperparameter importance, marginals and interaction (Greff et al. Figs. 4-6)
# ------------------------------------------------------------------------------------------------------
def importance_figure(analysis: Analysis, figs: FigureSet) -> None:
    imp = analysis.importance
    if imp.empty:
        figs.skip(
            "Hyperparameter importance",
            "no task, length and family has enough trials with searched "
            "hyperparameters (at least 10 trials and a hyperparameter that varies)",
        )
        return
    imp = imp.assign(row=imp["task"] + ", T = " + imp["length"].astype(str) + " · " + imp["family"])
    table = imp.pivot_table(index="row", columns="hyperparameter", values="importance", aggfunc="first", sort=False)
    table = table[sorted(table.columns, key=lambda c: (c != "variant", c))]
    # each cell: the importance and, below it, its bootstrap interval
    text = imp.assign(text=[f"{100 * r.importance:.0f}" + (f"\n{100 * r.low:.0f}–{100 * r.high:.0f}" if
                                                           math.isfinite(r.low) else "") for r in imp.itertuples()])
    annot = text.pivot_table(index="row", columns="hyperparameter", values="text", aggfunc="first", sort=False)
    annot = annot.reindex(index=table.index, columns=table.columns).fillna("")
    import seaborn as sns

    fig = Figure(figsize=(3.5 + 1.3 * table.shape[1], max(3.2, 1.4 + 0.62 * table.shape[0])), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        table * 100,
        ax=ax,
        annot=annot.to_numpy(),
        annot_kws={"fontsize": 8},
        fmt="",
        cmap="viridis",
        vmin=0,
        vmax=100,
        linewidths=0.5,
        cbar_kws={"label": "% of test-metric variance"},
    )
    ax.grid(False)
    ax.set_xlabel("hyperparameter")
    ax.set_ylabel("task, length · variant family")
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    method = (
        "fANOVA (Optuna's FanovaImportanceEvaluator, seed 0)"
        if analysis.importance_method == "fanova"
        else "one-way ANOVA η² per hyperparameter (fANOVA needs scikit-learn, not installed here)"
    )
    fig.suptitle("Hyperparameter importance: share of the test-metric variance", fontsize=12)
    caption = (
        f"Fraction of the variance of the test metric explained by each hyperparameter alone, per task, T and "
        f"variant family (the variant itself is a factor where a family has several), over configurations (a "
        f"configuration's PyTorch and TensorFlow runs averaged); method: {method}. Under each number: its interval, "
        "± 1.96 bootstrap standard errors over configurations. Empty cells: the hyperparameter was not searched there."
    )
    figs.save(fig, "importance", "importance", "hyperparameter importance", caption)


HP_ORDER = ("learning_rate", "hidden_size", "forget_bias")  # the rest follow alphabetically


def _hp_key(hp: str) -> tuple[int, str]:
    return (HP_ORDER.index(hp) if hp in HP_ORDER else len(HP_ORDER), hp)


def marginal_figure(analysis: Analysis, figs: FigureSet, pal: Palette, task: str, info: TaskInfo) -> None:
    """Greff et al. Figs. 4-5: per T (rows) and searched hyperparameter (columns), the median test metric of
    the configurations at each value with its exact 95 % interval (``Analysis.marginals``)."""
    m = analysis.marginals[analysis.marginals["task"] == task] if len(analysis.marginals) else analysis.marginals
    if m.empty:
        figs.skip("Marginals", f"no searched hyperparameter varies among the configurations of {task}")
        return
    lengths = sorted(int(t) for t in m["length"].unique())
    hps = sorted(m["hyperparameter"].unique(), key=_hp_key)
    fig = Figure(figsize=(4.2 * len(hps) + 0.6, 3.3 * len(lengths)), layout="constrained")
    axes = fig.subplots(len(lengths), len(hps), squeeze=False)
    log_y = _log_scale(info, m[["median", "low", "high"]].to_numpy(float).ravel())
    for r, T in enumerate(lengths):
        for c, hp in enumerate(hps):
            ax = axes[r][c]
            pts = m[(m["length"] == T) & (m["hyperparameter"] == hp)].sort_values("order")
            if pts.empty:
                _no_data(ax, "not searched here")
            else:
                _marginal_panel(ax, pts)
            _reference(ax, info.baseline(T))
            if log_y:
                ax.set_yscale("log")
            ax.set_xlabel(hp.replace("_", " "))
            ax.set_ylabel(info.metric_label("test") if c == 0 else "")
            ax.set_title(f"T = {T}", loc="left", fontsize=10)
    handles = [
        Line2D([], [], color="#0173b2", marker="o", label="median, 95 % CI"),
        Line2D([], [], color="#de8f05", marker="s", linestyle="none", label="named setting"),
        Line2D([], [], **REFERENCE_LINE, label="trivial baseline"),
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"{info.name or task}: marginal effect of each hyperparameter on the test {info.metric}", fontsize=12)
    caption = (
        f"Median test {info.metric} of the configurations of {task} at each value of each searched hyperparameter, "
        "pooled over the variants that have it (a configuration's PyTorch and TensorFlow runs averaged, counted once), "
        "with the exact distribution-free 95 % interval of the median (order statistics, scipy's quantile_test; none "
        "under 6 configurations). Continuous hyperparameters in equal-count bins (the point at the bin's median "
        "value); named settings such as the forget bias's chrono as points of their own; n: configurations per point. "
        "A binned-median model, not fANOVA's marginals (Optuna gives importances only)."
    )
    figs.save(fig, f"marginals_{task}", "importance", f"{task}: marginal effects", caption)


def _marginal_panel(ax, pts: pd.DataFrame) -> None:
    """One hyperparameter's points: on a log axis where they are bins of a wide range of numbers, else at
    equal steps labelled by value (numbers, then named settings after a dotted rule)."""
    x = pts["x"].to_numpy(float)
    numeric = ~pts["named"].to_numpy(bool)
    on_log = bool(pts["binned"].any() and numeric.all() and (x > 0).all() and x.max() / x.min() >= 8)
    pos = x if on_log else np.arange(len(pts), dtype=float)
    y, low, high = (pts[k].to_numpy(float) for k in ("median", "low", "high"))
    err = np.vstack([y - np.where(np.isfinite(low), low, y), np.where(np.isfinite(high), high, y) - y])
    for sel, color, marker in ((numeric, "#0173b2", "o"), (~numeric, "#de8f05", "s")):
        if sel.any():
            ax.errorbar(pos[sel], y[sel], yerr=err[:, sel], color=color, marker=marker, markersize=5, capsize=3,
                        linewidth=1.6 if sel is numeric else 0, elinewidth=1.2)  # fmt: skip
    for p, v, n in zip(pos, y, pts["configurations"]):
        ax.annotate(f"n={n}", (p, v), textcoords="offset points", xytext=(4, 4), fontsize=7, color="#555555")
    if on_log:
        ax.set_xscale("log")
        return
    if (~numeric).any() and numeric.any():
        ax.axvline(numeric.sum() - 0.5, color="#999999", linestyle=":", linewidth=1)
    ax.set_xticks(pos, pts["point"].tolist(), rotation=30 if pts["binned"].any() else 0)
    ax.set_xlim(-0.5, len(pts) - 0.5)


def interaction_figure(analysis: Analysis, figs: FigureSet, task: str, info: TaskInfo) -> None:
    """Greff et al. Fig. 6: the median test metric per learning-rate bin and hidden size, per T
    (``Analysis.interaction``)."""
    d = analysis.interaction
    d = d[d["task"] == task] if len(d) else d
    if d.empty:
        figs.skip("Interaction", f"the learning rate and the hidden size do not both vary on {task}")
        return
    import seaborn as sns
    from matplotlib.colors import LogNorm

    lengths = sorted(int(t) for t in d["length"].unique())
    fig = Figure(figsize=(5.2 * len(lengths), 3.8), layout="constrained")
    axes = fig.subplots(1, len(lengths), squeeze=False)[0]
    for ax, T in zip(axes, lengths):
        g = d[d["length"] == T]
        table = g.pivot_table(index="y_order", columns="x_order", values=["median", "configurations"], aggfunc="first")
        med = table["median"].sort_index(ascending=False)
        cnt = table["configurations"].reindex_like(med).fillna(0)
        annot = [[f"{v:.3g}\nn={int(n)}" if np.isfinite(v) else "" for v, n in zip(rv, rn)]
                 for rv, rn in zip(med.to_numpy(float), cnt.to_numpy(float))]  # fmt: skip
        xlabels = g.drop_duplicates("x_order").set_index("x_order")["x_point"]
        ylabels = g.drop_duplicates("y_order").set_index("y_order")["y_point"]
        log = _log_scale(info, g["median"].to_numpy(float))
        sns.heatmap(med, ax=ax, annot=np.array(annot, dtype=object), fmt="", annot_kws={"fontsize": 7},
                    cmap="viridis" if info.higher_is_better else "viridis_r", norm=LogNorm() if log else None,
                    xticklabels=[xlabels[i] for i in med.columns], yticklabels=[ylabels[i] for i in med.index],
                    cbar_kws={"label": f"median test {info.metric}"}, linewidths=0.5)  # fmt: skip
        ax.grid(False)
        ax.tick_params(axis="x", rotation=30)
        ax.tick_params(axis="y", rotation=0)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("hidden size")
        ax.set_title(f"T = {T}", loc="left", fontsize=10)
    fig.suptitle(f"{info.name or task}: learning rate × hidden size", fontsize=12)
    caption = (
        f"Median test {info.metric} of the configurations of {task} (frameworks averaged, all variants) in each "
        "cell of learning rate (equal-count bins) and hidden size, with its number of configurations n; empty cells "
        "hold none. Colours run from worse (dark) to better (bright) in the metric's direction. Greff et al. (2015), "
        "Fig. 6: roughly parallel rows mean the two hyperparameters act independently."
    )
    figs.save(fig, f"interaction_{task}", "importance", f"{task}: learning rate × hidden size", caption)


# ------------------------------------------------------------------------------------------------------
# 5. frameworks compared
# ------------------------------------------------------------------------------------------------------
def framework_metric_figure(analysis: Analysis, figs: FigureSet, pal: Palette) -> None:
    pairs = analysis.pairs
    if pairs.empty:
        figs.skip(
            "Frameworks",
            "no configuration has a test metric in both PyTorch and TensorFlow "
            f"(frameworks in the store: {', '.join(map(framework_name, analysis.frameworks)) or 'none'})",
        )
        return
    tasks = [t for t in analysis.tasks if t in set(pairs["task"])]
    fig = Figure(figsize=(4.4 * len(tasks) + 1.6, 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(tasks), squeeze=False)).ravel()
    for ax, task in zip(axes, tasks):
        info = analysis.tasks[task]
        d = pairs[pairs["task"] == task]
        for v in analysis.variants:
            dv = d[d["variant"] == v]
            if len(dv):
                ax.scatter(
                    dv["torch"], dv["tf"], s=14, color=pal.color(v), marker=pal.marker(v), alpha=0.7, linewidths=0
                )
        both = np.concatenate([d["torch"].to_numpy(float), d["tf"].to_numpy(float)])
        lo, hi = float(np.nanmin(both)), float(np.nanmax(both))
        if _log_scale(info, both):
            ax.set_xscale("log")
            ax.set_yscale("log")
        pad = (hi - lo) * 0.05 or 0.01
        lims = (lo / 1.3, hi * 1.3) if ax.get_xscale() == "log" else (lo - pad, hi + pad)
        ax.plot(lims, lims, color="#999999", linewidth=1, zorder=0)
        ax.set_xlim(lims)
        ax.set_ylim(lims)
        baselines = {info.baseline(T) for T in d["length"].unique()} - {None}
        for b in sorted(baselines):
            _reference(ax, b, "h")
            _reference(ax, b, "v")
        ax.set_title(f"{task} ({len(d)} pairs)\n" + _paired_tests(analysis, task), loc="left", fontsize=9)
        arrow = "↑" if info.higher_is_better else "↓"
        ax.set_xlabel(f"PyTorch test {info.metric} {arrow}")
        ax.set_ylabel(f"TensorFlow test {info.metric} {arrow}")
        ax.set_aspect("equal", adjustable="box")
    variants = [v for v in analysis.variants if v in set(pairs["variant"])]
    handles = _variant_handles(pal, variants) + [
        Line2D([], [], **REFERENCE_LINE, label="trivial baseline"),
        Line2D([], [], color="#999999", label="equal"),
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle("The same configurations in PyTorch and TensorFlow", fontsize=12)
    caption = (
        "Test metric of each configuration (task, T, variant, hyperparameters, seed) run in both frameworks: "
        "PyTorch on x, TensorFlow on y; points on the grey diagonal agree exactly. ↑/↓: higher/lower is better. "
        "Panel titles: per T, the median |Δ| of the pairs and the Wilcoxon signed-rank test's p of the paired "
        "metrics (Holm-adjusted across tasks and lengths; the frameworks-compared table has the details)."
    )
    figs.save(fig, "frameworks_metric", "frameworks", "metrics in both frameworks", caption)


def _paired_tests(analysis: Analysis, task: str) -> str:
    """One line per T, 'T = 20: median |Δ| 0.002, p = 0.41', from the paired framework tests of ``task``."""
    ft = analysis.framework_tests
    rows = ft[ft["task"] == task] if len(ft) else ft
    return "\n".join(f"T = {r.length}: median |Δ| {r.median_abs_difference:.2g}, p = {r.p_holm:.2g}"
                     for r in rows.itertuples(index=False))  # fmt: skip


def speed_figure(analysis: Analysis, figs: FigureSet, pal: Palette) -> None:
    speed = analysis.speed
    if speed.empty:
        figs.skip("Speed", "no trial recorded its training steps per second")
        return
    blocks = [
        (t, T)
        for t in analysis.tasks
        for T in analysis.lengths(t)
        if len(speed[(speed.task == t) & (speed.length == T)])
    ]
    ncols = min(3, len(blocks))
    nrows = math.ceil(len(blocks) / ncols)
    n_var = len(analysis.variants)
    frameworks = [f for f in analysis.frameworks if f in set(speed["framework"])]
    fig = Figure(
        figsize=(ncols * max(3.6, 0.5 * n_var * len(frameworks) + 1.2) + 1.6, 3.4 * nrows), layout="constrained"
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    width = 0.8 / max(1, len(frameworks))
    for ax, (task, T) in zip(axes, blocks):
        d = speed[(speed["task"] == task) & (speed["length"] == T)]
        variants = [v for v in analysis.variants if v in set(d["variant"])]
        for i, v in enumerate(variants):
            for j, f in enumerate(frameworks):
                row = d[(d["variant"] == v) & (d["framework"] == f)]
                if row.empty:
                    continue
                ax.bar(
                    i + (j - (len(frameworks) - 1) / 2) * width,
                    row["steps_per_second"].iloc[0],
                    width=width * 0.95,
                    color=pal.color(v),
                    edgecolor="#333333",
                    hatch=hatch(f),
                    linewidth=0.8,
                )
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(
            variants, rotation=45 if len(variants) > 6 else 0, ha="right" if len(variants) > 6 else "center"
        )
        ax.set_ylabel("training steps / s (higher is faster ↑)")
        ax.set_title(f"{task}, T = {T}", loc="left", fontsize=10)
    for ax in axes[len(blocks) :]:
        ax.set_visible(False)
    fig.legend(handles=_framework_handles(frameworks, "patch"), loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle("Training speed per variant and framework (median over trials)", fontsize=12)
    caption = (
        "Median training steps per second (time in the optimiser step only) per variant; plain bars PyTorch, "
        "hatched bars TensorFlow. Each worker process uses one thread."
    )
    figs.save(fig, "frameworks_speed", "frameworks", "training speed", caption)


# ------------------------------------------------------------------------------------------------------
# 6. gradient flow
# ------------------------------------------------------------------------------------------------------
def gradient_figure(analysis: Analysis, figs: FigureSet, pal: Palette, gradient: GradientFlow | None) -> None:
    if gradient is None:
        figs.skip("Gradient flow", "the probe was not run (report built with probe=False / --no-probe)")
        return
    if not gradient.ok:
        figs.skip("Gradient flow", gradient.note or "the probe returned no numbers")
        return
    df = gradient.frame()
    phases = [p for p in ("init", "trained") if p in set(df["phase"])]
    fig = Figure(figsize=(5.2 * len(phases) + 1.6, 4.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(phases), sharey=True, squeeze=False)).ravel()
    variants = [v for v in analysis.variants if v in set(df["variant"])] + sorted(
        set(df["variant"]) - set(analysis.variants)
    )
    for ax, phase in zip(axes, phases):
        d = df[df["phase"] == phase]
        for v in variants:
            dv = d[d["variant"] == v].sort_values("t")
            y = dv["grad_norm"].to_numpy(float)
            y = np.where(y > 0, y, np.nan)
            ax.plot(dv["t"], y, color=pal.color(v), marker=pal.marker(v), markevery=max(1, len(dv) // 8), markersize=4)
        ax.set_yscale("log")
        ax.set_xlabel(f"time step t (the loss is read at t = {int(df['t'].max())})")
        ax.set_title(
            "at initialisation" if phase == "init" else f"after {gradient.train_steps} training steps",
            loc="left",
            fontsize=10,
        )
    axes[0].set_ylabel("‖∂loss/∂h_t‖ (log)")
    fig.legend(handles=_variant_handles(pal, variants), loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"Gradient flow back through time on {gradient.task}, T = {gradient.length}", fontsize=12)
    caption = (
        f"Norm of the gradient of the loss with respect to the hidden state h_t (total derivative, mean over "
        f"the batch) at every step; {gradient.describe()}. A line that falls steeply to the left is a "
        "vanishing gradient: the early steps get almost no training signal."
    )
    figs.save(fig, "gradient_flow", "gradient", "gradient flow", caption)
