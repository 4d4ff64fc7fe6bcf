"""``rnn-bench report``: a results store -> ``reports/<suite>/index.html`` (+ ``report.md``, ``figures/``,
``tables/``). Everything is computed from the store (and, for the gradient-flow figure, from a short
seeded probe); the same store gives the same numbers.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis import study as A
from harness.diagnostics.probes import GradientFlow, gradient_flow
from harness.errors import UsageError, unknown_name
from harness.report.context import Context
from harness.report.drawing import draw_figures, helper_count, importance_on, start_helpers, stop_helpers
from harness.report.figures import draw_gradient
from harness.report.findings import findings
from harness.report.page import suite_lines_from_data, write_html, write_markdown
from harness.report.progress import Progress
from harness.report.tables import build_tables, trials_export, write_tables
from harness.store.database import Store, is_sqlite_file
from harness.store.metadata import Metadata, complete
from harness.suites.analysis_plan import PRIMARY, AnalysisPlan, parse_analysis_plan
from harness.workers.worker import WorkerProcess

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Variants the gradient-flow probe prefers after the baseline: the essay's contrasts.
PROBE_PREFERENCE = ("rnn", "gru", "np", "nfg", "cifg", "min_gru", "v")
PROBE_MAX_VARIANTS = 6
PROBE_MAX_LENGTH = 100


def build_report(
    store_path: str | Path,
    out_dir: str | Path | None = None,
    suite: Any = None,
    baseline: str | None = None,
    probe: bool = True,
    primary: str | None = None,
    progress: Progress | None = None,
    helpers: int | None = None,
) -> Path:
    """Write the report of ``store_path`` and return the path of its ``index.html``.

    ``suite``, ``baseline`` and ``primary`` choose the trials, the reference variant and the outcome the
    verdicts test as ``load`` says. ``out_dir`` defaults to ``reports/<suite>/`` (``reports/<suite>-<primary>/``
    where ``primary`` replaces the suite's declared outcome, so the declared report is not overwritten).
    ``probe=False`` skips the gradient-flow probe. ``progress`` shows what the build is doing (None: silent).
    ``helpers``: processes that draw figures beside this one (``harness.report.drawing``; None: one per
    spare core for a store of a few hundred trials or more). Raises ``UsageError`` (exit code 2) for a
    missing or empty store.
    """
    progress = progress or Progress()
    progress.step("reading the store")
    data = load(store_path, suite, baseline, primary)
    name = data.suite_name + (f"-{data.plan.primary}" if data.secondary else "")
    out = Path(out_dir) if out_dir is not None else Path("reports") / _safe(name)
    _check_out(out, data.store_path)
    started = start_helpers(helper_count(len(data.trials)) if helpers is None else helpers)
    try:
        progress.step(f"analysing {len(data.trials)} trials")
        an = A.analyse(data.trials, data.curves, data.baseline, data.planned, metadata=data.metadata,
                       running=data.running, running_curves=data.running_curves, plan=data.plan,
                       test_lengths=data.test_lengths,
                       start_importance=importance_on(started[0]) if started else None)  # fmt: skip
        an.notes += data.notes
        return _write(out, an, data.trials, data.planned, data.suite_name, data.suite_obj, data.store_path,
                      data.environment, probe, started, progress)  # fmt: skip
    except OSError as e:  # a full disk, a read-only folder: name what could not be written
        raise UsageError(f"cannot write the report into {out}: {e.strerror or e} ({e.filename or out})") from e
    finally:
        stop_helpers(started)
        progress.close()


@dataclass
class StoreData:
    """What a report (or the comparisons export) reads from a store: the trials of its suite and the rest."""

    store_path: Path
    trials: pd.DataFrame
    curves: pd.DataFrame
    planned: pd.DataFrame
    running: pd.DataFrame
    running_curves: pd.DataFrame
    metadata: Metadata
    suite_name: str
    suite_obj: Any
    environment: dict[str, Any]
    baseline: str | None  # as asked (an id), the suite's, or None (the analysis chooses)
    plan: AnalysisPlan | None  # the suite's analysis plan as recorded, None: the defaults
    notes: list[str]
    test_lengths: pd.DataFrame  # ``Store.test_lengths_frame`` of its trials: metric per test length
    secondary: bool = False  # the verdicts test another outcome than the one the suite declared


def load(store_path: str | Path, suite: Any = None, baseline: str | None = None,
         primary: str | None = None) -> StoreData:  # fmt: skip
    """The trials of ``suite`` in ``store_path`` and everything their analysis needs.

    ``suite``: None (every trial in the store; named after the latest run's suite, or "all"), a suite
    name or file (only the trials its current plan holds; all it stored where the store has no plan of
    it), or a suite object with ``.name`` (and optionally ``.baseline``, ``.description``,
    ``.statistics``). ``baseline``: the reference variant (default: the suite's, else ``v`` when present,
    else the first in the catalogue's order). ``primary``: the outcome the verdicts test ("metric", "solved",
    "generalisation"), replacing the one the suite's analysis plan declared; the report then says it is
    a secondary analysis (default: the declared one); an unknown outcome, or the generalisation score
    where no trial has one, is a ``UsageError``. Raises ``UsageError`` (exit code 2) for a missing or empty
    store, a suite without trials or an unknown baseline.

    Everything comes from the store: the suite as its latest run recorded it (description, baseline,
    analysis plan, text), the variants' names, order and references and the tasks' thresholds as the runs
    recorded them, and the trials still running (their curves so far). Only what a store written before
    stores recorded these lacks is taken from the code and suite files here, and the notes say so.
    """
    store_path = Path(store_path)
    if not store_path.exists():
        raise UsageError(
            f"no results store at {store_path}; run a suite first (rnn-bench run quick) "
            "or name another one with --store PATH"
        )
    with Store(store_path, read_only=True) as store:
        trials = store.trials_frame()
        if trials.empty:
            raise UsageError(
                f"the results store {store_path} holds no finished trial yet, so there is nothing to "
                "report; run a suite first (rnn-bench run quick) or wait for the first trials"
            )
        runs, plans = store.runs_frame(), store.plans_frame()
        suite_name, suite_obj, suite_note = _resolve_suite(suite, runs, plans, store)
        environment = _environment_of(runs, suite_name) or store.latest_environment()
        planned = A.planned_cells(plans)
        running = store.running()
        plan_note = None
        if suite is not None:
            ids = set(planned.loc[planned["suite"] == suite_name, "trial_id"])
            trials, plan_note = _of_suite(trials, ids, suite_name)
            if trials.empty:
                known = sorted(set(plans["suite"]) | set(trials_suites(store)))
                raise UsageError(
                    f"the results store {store_path} has no trials of suite {suite_name!r}; "
                    f"suites in it: {', '.join(known) or 'none'}"
                )
            planned = planned[planned["suite"] == suite_name]
            running = running[running["trial_id"].isin(ids) if ids else running["suite"] == suite_name]
        planned = planned.drop_duplicates("trial_id")
        curves = store.curves_frame(trials["trial_id"])
        test_lengths = store.test_lengths_frame()
        test_lengths = test_lengths[test_lengths["trial_id"].isin(set(trials["trial_id"]))]
        running_curves = store.progress_frame(running["trial_id"])
        metadata = _metadata(store, trials, running)
    if baseline is not None:
        baseline = _baseline_id(baseline, metadata)  # unknown: exit 2, did you mean
    elif suite_obj is not None:
        baseline = getattr(suite_obj, "baseline", None)
    plan = getattr(suite_obj, "statistics", None)
    notes = [n for n in (suite_note, plan_note, _metadata_note(metadata)) if n]
    plan, secondary = _replace_primary(plan, primary, notes, suite_obj is not None)
    if plan is not None and plan.primary == "generalisation":
        if not trials["generalisation"].notna().any():
            raise UsageError(f"no trial of {suite_name!r} in {store_path} has a generalisation score (none was "
                             "tested beyond its training length, test_lengths), so it cannot be the outcome the "
                             "verdicts test; use --primary metric or solved")  # fmt: skip
        trials = A.generalisation_as_metric(trials)
        source = f"--primary {plan.primary}" if secondary else "The suite's analysis plan"
        notes.append(f"{source} makes the generalisation score (the mean of the primary metric over the test "
                     "lengths beyond T) the metric of its verdicts: every test metric below is that score; a "
                     "trial tested at T only has none.")  # fmt: skip
    return StoreData(store_path, trials, curves, planned, running, running_curves, metadata, suite_name, suite_obj,
                     environment, baseline, plan, notes, test_lengths, secondary)  # fmt: skip


def _replace_primary(plan: AnalysisPlan | None, primary: str | None, notes: list[str],
                     of_suite: bool) -> tuple[AnalysisPlan | None, bool]:  # fmt: skip
    """The plan with ``primary`` as its outcome, and whether that departs from the declared one (a note says
    so: an outcome chosen after the run is a secondary analysis, not the plan declared before it). Without
    a suite's plan (``plan`` None, or no suite: every trial of the store) the departure is from the default."""
    declared = plan.primary if plan is not None else AnalysisPlan().primary
    if primary is None or primary == declared:
        return plan, False
    if primary not in PRIMARY:
        raise unknown_name("primary outcome", primary, PRIMARY, "--primary")
    before = (f"the suite's analysis plan declared {declared!r} before its run" if plan is not None and of_suite
              else f"the default plan tests {declared!r}")  # fmt: skip
    notes.append(f"A secondary analysis: --primary {primary} makes the verdicts test the {primary} outcome, where "
                 f"{before}; read its verdicts as exploratory beside the declared report's.")  # fmt: skip
    return replace(plan or AnalysisPlan(), primary=primary), True


def _of_suite(trials: pd.DataFrame, planned_ids: set[str], suite_name: str) -> tuple[pd.DataFrame, str | None]:
    """The trials a suite's report covers, and a note on those it leaves out. The suite's plan decides (a
    trial another suite stored counts too, since suites share results); trials the suite stored that its
    current plan no longer holds (its file was edited since) are left out, so the report follows the file.
    A store without plan rows for the suite (written before plans existed) reports what the suite stored."""
    own = trials["suite"] == suite_name
    if not planned_ids:
        return trials[own].reset_index(drop=True), None
    kept = trials["trial_id"].isin(planned_ids)
    left_out = int((own & ~kept).sum())
    note = None
    if left_out:
        note = (f"{left_out} stored trial{'s' if left_out != 1 else ''} of suite {suite_name!r} "
                f"{'are' if left_out != 1 else 'is'} left out: the suite's current plan no longer includes "
                "them (its file was edited since they ran). `rnn-bench export` still lists them.")  # fmt: skip
    return trials[kept].reset_index(drop=True), note


def _metadata(store: Store, trials: pd.DataFrame, running: pd.DataFrame) -> Metadata:
    """The store's variant and task records for what the report shows, completed from the code here where
    the store lacks them (a store from before stores recorded them, opened read-only)."""
    cells = pd.concat([trials[["task", "length"]], running[["task", "length"]]])
    variants = set(trials["variant"]) | set(running["variant"])
    return complete(store.metadata(), variants, set(zip(cells["task"], cells["length"].astype(int))))


def _metadata_note(metadata: Metadata) -> str | None:
    if not metadata.from_code:
        return None
    return (f"This store does not record the metadata of {', '.join(metadata.from_code)} (it was written "
            "before stores did): their names, order and success thresholds come from the current code, which "
            "may differ from the code that ran them.")  # fmt: skip


def _baseline_id(name: str, metadata: Metadata) -> str:
    """``--baseline`` as a variant id: an id or alias the store records, else one the code here knows (it
    has no trials then, and the report says so); anything else exits 2 naming the store's variants."""
    known = metadata.aliases()
    if name in known:
        return known[name]
    try:
        from harness.plugins.registry import registry

        return registry().canonical_variant(name, "--baseline")
    except UsageError:
        raise unknown_name("variant", name, known, "--baseline") from None


def _write(out: Path, an: A.Analysis, trials: pd.DataFrame, planned: pd.DataFrame, suite_name: str, suite_obj: Any,
           store_path: Path, environment: dict[str, Any], probe: bool, helpers: list[WorkerProcess],
           line: Progress) -> Path:  # fmt: skip
    """Write the report's files into ``out`` (replacing those of the previous build) and list them. The
    gradient-flow probe trains in its own process while the figures are drawn."""
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    done = set(trials["trial_id"])
    progress = {
        "planned": len(planned),
        "finished": len(trials),
        "remaining": int((~planned["trial_id"].isin(done)).sum()) if len(planned) else 0,
    }
    probing = _in_background(_probe, an) if probe else None
    line.step("drawing the figures")
    figs = draw_figures(an, out / "figures", helpers, lambda done, n: line.count("figures", done, n))
    if probing is not None:
        line.step("waiting for the gradient-flow probe")
    gradient = probing() if probing is not None else None
    figs.add(draw_gradient(an, out / "figures", gradient))
    line.step("writing the tables and the page")
    tables = build_tables(an, gradient)
    csvs = write_tables(tables, out / "tables", trials_export(an))

    notes = list(an.notes) + _freshness_notes(trials)
    if progress["remaining"]:
        notes.append(
            f"Partial results: {progress['remaining']} of {progress['planned']} planned trials have not "
            "finished yet; regenerate the report when the benchmark is done."
        )
    if len(an.running):
        n = len(an.running)
        notes.append(f"{n} trial{'s were' if n != 1 else ' was'} still running when this report was built: the "
                     "tables count them as running and the learning curves draw their curves so far (dashed); "
                     "no statistic includes them.")  # fmt: skip
    notes += figs.notes
    if gradient is not None and gradient.note:
        notes.append(f"Gradient flow: {gradient.note}.")
    ctx = Context(
        suite=suite_name,
        store_path=store_path,
        progress=progress,
        suite_lines=suite_lines_from_data(an, suite_name, suite_obj),
        environment=environment,
        report_environment=report_environment(),
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        notes=notes,
        description=str(getattr(suite_obj, "description", "") or ""),
        suite_text=str(getattr(suite_obj, "text", "") or ""),
    )
    found = findings(an, ctx, gradient)
    index = write_html(out / "index.html", an, ctx, figs.files, tables, gradient, found)
    markdown = write_markdown(out / "report.md", an, ctx, figs.files, tables, found)
    written = [index, markdown, *csvs.values()]
    written += [p for f in figs.files for p in (f.png, f.pdf)]
    written += [p for t in tables for p in (getattr(t, "files", None) or {}).values()]
    _write_manifest(out, written)
    return index


MANIFEST = ".rnn-bench-report-files"
#: Where a build writes: these files at the top of the report folder, and anything in these subfolders.
TOP_FILES = ("index.html", "report.md", MANIFEST)
SUBFOLDERS = ("figures", "tables")


def _check_out(out: Path, store_path: Path) -> None:
    """Refuse a report folder that is a file, or one where the report would write over the store."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder for the report (it holds index.html, figures/ ...)")
    store, root = store_path.resolve(), out.resolve()
    if store in [root / name for name in TOP_FILES] or any(store.is_relative_to(root / d) for d in SUBFOLDERS):
        raise UsageError(
            f"the results store {store_path} lies where the report writes its own files (--out {out}); "
            "name another folder with --out"
        )


def _clear_previous(out: Path) -> None:
    """Remove the files the previous build wrote, as its manifest names them, so that none outlives
    the store's data. Only names the report could have written are removed (its top-level files and
    what is in figures/ and tables/), never an SQLite database or its -wal/-shm/-journal files, and
    never anything else that is in the folder."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return
    for name in manifest.read_text(encoding="utf-8").splitlines():
        path = out / name
        if _is_report_file(out, name) and path.is_file() and not is_sqlite_file(path):
            path.unlink()


def _is_report_file(out: Path, name: str) -> bool:
    parts = Path(name).parts
    inside = (out / name).resolve().is_relative_to(out.resolve())
    mine = (len(parts) == 1 and name in TOP_FILES[:-1]) or (len(parts) == 2 and parts[0] in SUBFOLDERS)
    return bool(name) and inside and mine


def _write_manifest(out: Path, written: list[Path]) -> None:
    """List exactly the files this build wrote (relative to ``out``), for the next build to remove."""
    names = sorted({str(Path(p).relative_to(out)) for p in written})
    (out / MANIFEST).write_text("\n".join(names) + "\n", encoding="utf-8")


def _freshness_notes(trials: pd.DataFrame) -> list[str]:
    """A word on every reported trial whose code has changed since it ran (``harness.plugins.freshness``)."""
    from harness.plugins.freshness import changed_code, describe

    stale, changed = changed_code(trials)
    if not stale.any():
        return []
    return [f"Out of date: {int(stale.sum())} of these trials were produced by code that has changed since "
            f"({describe(changed)}). Their numbers are not those of the current code; rerun their suite "
            "(rnn-bench run) to replace them."]  # fmt: skip


def _environment_of(runs: Any, suite_name: str) -> dict[str, Any]:
    """The environment of the latest run of ``suite_name`` (empty if it has none)."""
    import json

    mine = runs[runs["suite"] == suite_name] if len(runs) else runs
    if not len(mine) or not mine.iloc[-1]["environment"]:
        return {}
    return json.loads(mine.iloc[-1]["environment"])


def trials_suites(store: Store) -> list[str]:
    rows = store.conn.execute("SELECT DISTINCT suite FROM trials WHERE suite IS NOT NULL").fetchall()
    return [r[0] for r in rows]


@dataclass
class RecordedSuite:
    """A suite as the store recorded it: the TOML text of the file its latest run ran."""

    name: str
    text: str
    description: str = ""
    baseline: str | None = None
    statistics: AnalysisPlan = field(default_factory=AnalysisPlan)
    problem: str | None = None  # why part of the text could not be read, for the report's notes

    @classmethod
    def parse(cls, name: str, text: str) -> RecordedSuite:
        """Read the description, baseline and analysis plan from the text (the suite's defaults where it
        has none: no description, the first variant, the default plan). A text that cannot be read (never
        recorded so, since the run validated it, but a store can be edited by hand) gives the defaults and
        a ``problem`` the report states, rather than a failed report or a silently different plan."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            return cls(name, text, problem=f"the store's recorded suite file of {name!r} is not valid TOML "
                                           f"({e}): the report uses the first variant as baseline and the "
                                           "default statistics plan")  # fmt: skip
        variants = data.get("variants") if isinstance(data.get("variants"), list) else []
        baseline = data.get("baseline", variants[0] if variants else None)
        problem = None
        try:
            statistics = parse_analysis_plan(data.get("statistics"), f"recorded suite {name!r}")
        except UsageError as e:
            statistics, problem = AnalysisPlan(), f"{e}; the report uses the default statistics plan instead"
        return cls(name, text, str(data.get("description", "")), str(baseline) if baseline else None, statistics,
                   problem)  # fmt: skip


def _resolve_suite(suite: Any, runs: pd.DataFrame, plans: pd.DataFrame,
                   store: Store) -> tuple[str, Any, str | None]:  # fmt: skip
    """(the report's name, the suite object when one is known, a note when it came from a file here)."""
    if suite is None:
        latest = runs["suite"].dropna() if len(runs) else pd.Series(dtype=object)
        return (str(latest.iloc[-1]) if len(latest) else "all"), None, None
    if hasattr(suite, "name"):
        return str(suite.name), suite, None
    known = set(runs["suite"].dropna()) | set(plans["suite"].dropna())
    name = _suite_name(str(suite), known)
    text = store.suite_text(name)
    if text is not None:
        recorded = RecordedSuite.parse(name, text)
        return name, recorded, (f"{recorded.problem[0].upper()}{recorded.problem[1:]}." if recorded.problem else None)
    try:  # a store from before stores recorded suite texts: the suite file here, if there is one
        from harness.suites.suite import load_suite

        obj = load_suite(str(suite))
    except Exception:  # an unknown or custom suite can still be reported from the store alone
        return name, None, None
    note = (f"The store does not record the suite file its runs of {name!r} ran (written before stores did): "
            f"its description and baseline come from the current file {obj.source}.")  # fmt: skip
    return name, obj, note


def _suite_name(given: str, known: set[str]) -> str:
    """The suite name ``--suite`` means: a name the store knows, else a suite file's ``name`` (its stem
    when it has none or cannot be read), else the name as given."""
    if given in known or not given.endswith(".toml"):
        return given
    try:
        name = tomllib.loads(Path(given).read_text()).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        name = None
    return str(name) if isinstance(name, str) and name else Path(given).stem


def _safe(name: str) -> str:
    """``name`` as one plain folder name: no separators, and no leading dot, so never ``.`` or ``..``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "all"


def _in_background(compute: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """Start ``compute(*args)`` in a daemon thread and return a function that waits for its result (or
    raises its error). A daemon thread, not an executor's: a report stopped by Ctrl-C or an error must not
    wait at exit for what the thread waits on (the probe's child process, killed with this one)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = compute(*args)
        except BaseException as e:  # handed to whoever waits for the result
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True, name="rnn-bench-probe")
    thread.start()

    def result() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def _probe(an: A.Analysis) -> GradientFlow:
    """The gradient-flow probe on one task and length for a few variants (the baseline first)."""
    task = "adding" if "adding" in an.tasks else next(iter(an.tasks))
    lengths = an.lengths(task)
    fitting = [T for T in lengths if T <= PROBE_MAX_LENGTH]
    length = max(fitting) if fitting else min(lengths)
    chosen = [an.baseline] if an.baseline else []
    chosen += [v for v in PROBE_PREFERENCE if v in an.variants and v not in chosen]
    chosen += [v for v in an.variants if v not in chosen]
    try:
        from harness.plugins.registry import registry

        chosen = [v for v in chosen if v in registry().variants] if registry().knows_task(task) else []
    except Exception:
        chosen = []
    chosen = chosen[:PROBE_MAX_VARIANTS]
    if not chosen:
        return GradientFlow(task, length, [], 0, 0, 0, 0.0, 0,
                            note="the code here does not know the task or any variant of the store")
    return gradient_flow(chosen, task, length)


def report_environment() -> dict[str, Any]:
    import importlib.metadata as md

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    for pkg in ("numpy", "pandas", "scipy", "matplotlib", "seaborn", "scikit-learn"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = "not installed"
    return env
