"""The report's pages: ``index.html`` (one self-contained file: images and CSVs embedded as data: URIs,
readable offline), rendered from the Jinja2 template ``templates/page.html.j2`` with autoescaping on,
and ``report.md`` (for a repository page). Both open with the findings (``harness.report.findings``)
and show the same sections, figures and tables.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from harness.analysis.study import Analysis
from harness.diagnostics.probes import GradientFlow
from harness.report.context import SECTIONS, SHOWN_TABLES, Context
from harness.report.figures import FigureFile
from harness.report.findings import Findings, fw_list, method_paragraphs
from harness.report.palette import Palette
from harness.report.tables import Table, to_html, to_markdown

TEMPLATES = Path(__file__).resolve().parent / "templates"


def data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def environment_items(env: dict[str, Any]) -> list[tuple[str, str]]:
    def flat(prefix: str, value: Any) -> list[tuple[str, str]]:
        if isinstance(value, dict):
            return [kv for k, v in sorted(value.items()) for kv in flat(f"{prefix}{k}.", v)]
        return [(prefix.rstrip("."), "–" if value in (None, "") else str(value))]

    return flat("", env)


def page_template() -> jinja2.Template:
    """The page template (``templates/page.html.j2``), autoescaping every value it is given."""
    # StrictUndefined: a name the template uses that the page does not pass is an error, not a blank
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )  # fmt: skip
    return env.get_template("page.html.j2")


def write_html(
    path: Path,
    an: Analysis,
    ctx: Context,
    figures: list[FigureFile],
    tables: list[Table],
    gradient: GradientFlow | None,
    found: Findings,
) -> Path:
    """Render the page. Tables arrive as HTML already escaped (``tables.to_html``), marked safe here;
    every other value is text, escaped by the template."""
    out_dir = path.parent
    shown = [(k, t, b) for k, t, b in SECTIONS if any(f.section == k for f in figures) or found.sections.get(k)]
    toc = [("findings", "Verdicts and headline findings")] + [(k, t) for k, t, _ in shown]
    toc += [("tables", "Tables"), ("method", "Method"), ("variants-legend", "Variants"), ("suite", "Suite"),
            ("environment", "Environment"), ("downloads", "Downloads")]  # fmt: skip
    verdicts = next((t for t in tables if t.key == "verdicts" and len(t.display)), None)
    pal = Palette(an.drawn_variants)
    trials_csv = out_dir / "tables" / "trials.csv"
    page = page_template().render(
        ctx=ctx,
        css=Markup((TEMPLATES / "page.css").read_text(encoding="utf-8")),
        script=Markup((TEMPLATES / "page.js").read_text(encoding="utf-8")),
        n_trials=len(an.trials),
        baseline=an.baseline,
        toc=toc,
        found=found,
        verdicts=verdicts and {"title": verdicts.title, "caption": verdicts.caption,
                               "html": Markup(to_html(verdicts.display))},  # fmt: skip
        sections=[
            {"key": key, "title": title, "blurb": blurb, "findings": found.sections.get(key, []),
             "figures": [{"key": f.key, "title": f.title, "caption": f.caption, "src": data_uri(f.png, "image/png"),
                          "pdf": f.pdf.relative_to(out_dir).as_posix()} for f in figures if f.section == key]}
            for key, title, blurb in shown
        ],  # fmt: skip
        tables=[
            {"key": t.key, "title": t.title, "caption": t.caption, "rows": len(t.display),
             "open": t.key in SHOWN_TABLES, "html": Markup(to_html(t.display))}
            for t in tables
        ],  # fmt: skip
        method=method_paragraphs(an, gradient),
        legend=[
            {"id": v, "color": pal.color(v), "name": an.info[v].name, "family": an.info[v].family,
             "reference": an.info[v].reference}
            for v in an.drawn_variants
        ],  # fmt: skip
        environment=environment_items(ctx.environment),
        report_environment=environment_items(ctx.report_environment),
        downloads=[
            {"name": t.files["csv"].name, "src": data_uri(t.files["csv"], "text/csv"), "title": t.title,
             "file": t.files["csv"].relative_to(out_dir).as_posix()}
            for t in tables if t.files
        ],  # fmt: skip
        trials_csv=data_uri(trials_csv, "text/csv") if trials_csv.exists() else "",
    )
    path.write_text(page, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------------
def write_markdown(
    path: Path, an: Analysis, ctx: Context, figures: list[FigureFile], tables: list[Table], found: Findings
) -> Path:
    out_dir = path.parent
    lines = [f"# rnn-bench report: {ctx.suite}", ""]
    if ctx.description:
        lines += [ctx.description, ""]
    lines += [
        f"Store `{ctx.store_path.name}` · {len(an.trials)} trials · baseline variant `{an.baseline}` · "
        f"generated {ctx.generated}. The full report with every table is `index.html` beside this file.",
        "",
        "## Verdicts and headline findings",
        "",
        found.coverage,
        "",
    ]
    verdicts = next((t for t in tables if t.key == "verdicts"), None)
    if verdicts is not None and len(verdicts.display):
        lines += [f"### {verdicts.title}", "", verdicts.caption, "", to_markdown(verdicts.display), ""]
    lines += [f"- {s}" for s in found.headlines]
    if ctx.notes:
        lines += ["", "**Notes**", ""] + [f"- {n}" for n in ctx.notes]
    for key, title, blurb in SECTIONS:
        figs = [f for f in figures if f.section == key]
        if not figs and not found.sections.get(key):
            continue
        lines += ["", f"## {title}", "", blurb, ""]
        lines += [f"- {s}" for s in found.sections.get(key, [])] + ([""] if found.sections.get(key) else [])
        for f in figs:
            rel = f.png.relative_to(out_dir).as_posix()
            lines += [f"![{f.title}]({rel})", "", f"*{f.caption}* ([PDF]({f.pdf.relative_to(out_dir).as_posix()}))", ""]
    lines += ["## Tables", ""]
    for t in tables:
        if t.key in SHOWN_TABLES and t.key != "verdicts":  # the verdict table opens the report
            lines += [f"### {t.title}", "", t.caption, "", to_markdown(t.display), ""]
    lines += ["Every table as CSV, Markdown, LaTeX and HTML:", ""]
    for t in tables:
        if t.files:
            links = ", ".join(f"[{fmt}]({p.relative_to(out_dir).as_posix()})" for fmt, p in t.files.items())
            lines.append(f"- {t.title}: {links}")
    if (out_dir / "tables" / "trials.csv").exists():
        lines.append("- every trial: [csv](tables/trials.csv)")
    lines += ["", "## Suite", ""] + [f"- **{k}**: {v}" for k, v in ctx.suite_lines]
    if ctx.suite_text:
        lines += ["", "The suite file as run (recorded in the store):", "", "```toml", ctx.suite_text.rstrip(), "```"]
    lines += ["", "## Environment", ""] + [f"- **{k}**: {v}" for k, v in environment_items(ctx.environment)]
    lines += [
        "",
        "Report made with: " + ", ".join(f"{k} {v}" for k, v in environment_items(ctx.report_environment)),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def suite_lines_from_data(an: Analysis, ctx_suite: str, suite_obj: Any = None) -> list[tuple[str, str]]:
    """What the suite ran, read from the trials (and the suite's own description when it is known)."""
    df = an.trials
    lines = [("suite", ctx_suite)]
    if suite_obj is not None and getattr(suite_obj, "description", ""):
        lines.append(("description", str(suite_obj.description)))
    lines.append(
        (
            "tasks",
            "; ".join(
                f"{t} (metric {i.metric}, {'higher' if i.higher_is_better else 'lower'} is better; "
                + (f"solved when {i.solved_rule()}; " if i.solved_rule() else "")
                + f"T = {', '.join(map(str, an.lengths(t)))})"
                for t, i in an.tasks.items()
            ),
        )
    )
    lines.append(("variants", ", ".join(an.variants)))
    lines.append(("baseline variant", str(an.baseline)))
    lines.append(("frameworks", fw_list(an.frameworks)))
    lines.append(("devices", ", ".join(sorted(df["device"].astype(str).unique()))))
    per_cell = df.groupby(["task", "length", "variant", "framework"]).size()
    lines.append(
        (
            "trials per task/T/variant/framework",
            f"{per_cell.min()}–{per_cell.max()}" if per_cell.min() != per_cell.max() else str(per_cell.min()),
        )
    )
    lines.append(
        ("seeds", ", ".join(map(str, sorted(df["seed"].unique())[:20])) + (" …" if df["seed"].nunique() > 20 else ""))
    )
    for col in sorted(c for c in df.columns if c.startswith("hp.")):
        values = df[col].dropna()
        if values.empty:
            continue
        distinct = pd.unique(values.map(lambda v: v if not isinstance(v, (list, dict)) else str(v)))
        numeric = [v for v in distinct if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(distinct) > 6 and len(numeric) == len(distinct):
            text = f"{min(numeric):g} … {max(numeric):g} ({len(distinct)} values)"
        else:
            text = ", ".join(str(v) for v in sorted(distinct, key=str))
        lines.append((f"hyperparameter {col[3:]}", text))
    return lines
