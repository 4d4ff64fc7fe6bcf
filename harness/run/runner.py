"""``rnn-bench run``: plan a suite, skip what the store already has, run the rest, store each result.

Resume is by content: a trial whose id is in the store is not run again (``retry_failed`` reruns those
recorded failed or timeout). Each result is written in its own transaction the moment it arrives, so
Ctrl-C or a kill loses at most the trials still running; running the same command again does only
what is left.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.backends import PACKAGES, installed_frameworks
from harness.cell.scan_choice import check_scan_choice
from harness.diagnostics.preflight import preflight
from harness.error_text import headline
from harness.errors import UsageError
from harness.execution.dask_cluster import SchedulerLost
from harness.execution.local import FrameworkUnavailable
from harness.execution.placement import Placement, check_gpus, make_executor
from harness.plugins.freshness import expected_code
from harness.run.environment import environment
from harness.run.estimate import describe as describe_estimate
from harness.run.estimate import estimate
from harness.run.memory import fit_to_memory
from harness.run.recorder import ClaimHeartbeat, Recorder, RunSummary
from harness.run.scheduling import make_jobs, population_cap
from harness.run.terminated import Terminated
from harness.store.database import EmptyStore, Store, StoredTrial
from harness.store.metadata import for_suite
from harness.suites.budget import budget_lines
from harness.suites.suite import Suite, plan
from harness.trials.trial import Trial


@dataclass
class Work:
    """What a run must do: the trials to run and, for those already stored, why they run again."""

    todo: list[Trial]
    stored_at: dict[str, float | None]  # trial_id -> finished_at of the row this run replaces (None: new)
    reasons: dict[str, str]  # trial_id -> why a stored trial runs again
    changed: Counter  # (kind, name) -> stored trials whose code changed, kind "variant" | "task"


def work_to_do(trials: list[Trial], stored: dict[str, StoredTrial], retry_failed: bool) -> Work:
    """Not stored yet, or stored but failed (with ``retry_failed``), or produced by code that has changed
    since: a changed variant or task never passes off old results as its own."""
    code = expected_code({(t.variant, t.task) for t in trials})
    work = Work([], {}, {}, Counter())
    for t in trials:
        row = stored.get(t.id)
        if row is None:
            work.todo.append(t)
            work.stored_at[t.id] = None
            continue
        want = code[(t.variant, t.task)]
        changed = row.code_changed(want["variant"], want["task"])
        if changed:
            reason = "code changed: " + " and ".join(f"{kind} {getattr(t, kind)!r}" for kind in changed)
            work.changed.update((kind, getattr(t, kind)) for kind in changed)
        elif retry_failed and row.status in ("failed", "timeout"):
            reason = f"retry of a {row.status} trial"
        else:
            continue
        work.todo.append(t)
        work.stored_at[t.id], work.reasons[t.id] = row.finished_at, reason
    return work


def describe_changes(work: Work, out: TextIO) -> None:
    """Say which variants and tasks changed since their trials were stored, before any work."""
    for (kind, name), n in sorted(work.changed.items()):
        print(f"{kind} {name!r} changed since {n} of its stored trial(s) were run: they run again with the "
              "current code (the old results move to the store's superseded table)", file=out)  # fmt: skip


def describe_plan(suite: Suite, trials: list[Trial], out: TextIO) -> None:
    """The plan's shape: how many trials per task, length, variant and framework."""
    print(f"suite {suite.name!r} ({suite.source})", file=out)
    cells = Counter((t.task, t.length) for t in trials)
    for (task, T), n in sorted(cells.items()):
        print(f"  {task:<16} T={T:<5} {n:>5} trials", file=out)
    print(f"  variants:   {', '.join(suite.variants)}", file=out)
    print(f"  frameworks: {', '.join(suite.frameworks)}; device {suite.device}", file=out)
    print(f"  {suite.trials} configuration(s) x {suite.replicates} replicate(s) per cell; search over "
          f"{', '.join(sorted(suite.search)) or 'nothing'}", file=out)  # fmt: skip
    if suite.parameters is not None:
        print("\n".join(budget_lines(suite.parameters, trials)), file=out)


def run_suite(
    suite: Suite, store_path: str | Path, workers: int, *, dry_run: bool = False, retry_failed: bool = False,
    argv: list[str] | None = None, progress: bool = True, out: TextIO | None = None, population: int | None = None,
    placement: Placement | None = None, scan: str = "auto",
) -> RunSummary:  # fmt: skip
    """Plan ``suite``, run what the store lacks on the executor ``placement`` names (default: ``workers``
    local processes) and store every result; see docs/architecture.md."""
    out = out if out is not None else sys.stdout  # read at call time: honours redirect_stdout
    placement = placement or Placement("local", workers)
    check_scan_choice(scan)
    placement.check_device(suite.device)
    trials = list({t.id: t for t in plan(suite)}.values())  # a plan never holds one id twice
    for framework in suite.frameworks:
        population_cap(framework, suite.device, population)  # an impossible --population: exit 2 now
    preflight(suite.variants)  # a broken variant is refused before any work or store write
    _check_gpus(suite, placement)
    if dry_run:
        return _dry_run(suite, trials, store_path, retry_failed, out, workers, population, placement, scan)

    check_installed(suite.frameworks)
    # what is left to do, too large for memory even alone: refused before the plan is recorded
    _fit(make_jobs(work_to_do(trials, _stored(store_path), retry_failed).todo, population), placement, suite.device,
         scan)
    store = Store(store_path)
    try:
        store.add_plan(suite.name, trials, whole=suite.whole)
        work = work_to_do(trials, store.stored(), retry_failed)
        summary = RunSummary(len(trials), len(trials) - len(work.todo), len(work.todo),
                             stale=sum(work.changed.values()))  # fmt: skip
        describe_changes(work, out)
        jobs = _fit(make_jobs(work.todo, population), placement, suite.device, scan)
        print(f"{suite.name}: {len(trials)} trials planned, {summary.already_done} already in {store_path}, "
              f"{len(work.todo)} to run{_jobs_text(jobs)}", file=out)  # fmt: skip
        if not jobs:
            print("Nothing to do: every planned trial is in the store.", file=out)
            return summary
        _run_jobs(suite, store, work, jobs, summary, placement, argv or [], progress, out, scan)
    finally:
        store.close()
    _print_summary(summary, store_path, out)
    return summary


def _check_gpus(suite: Suite, placement: Placement) -> None:
    """``--device cuda`` on this machine's workers: each installed framework of the plan must see a GPU,
    or exit 2 before any work, the dry run included (a Dask cluster's GPUs are its workers' to say)."""
    if suite.device == "cuda" and placement.executor == "local":
        check_gpus([f for f in suite.frameworks if f in installed_frameworks()])


def _stored(store_path: str | Path) -> dict[str, StoredTrial]:
    """The store's finished trials, read without writing (none when there is no store yet)."""
    return _read_if_any(store_path, lambda store: store.stored(), {})


def _read_if_any(store_path: str | Path, read: Callable[[Store], Any], nothing: Any) -> Any:
    """``read(store)`` of the store opened read-only, or ``nothing`` where there is none yet: no file, or an
    empty database (a run whose disk filled while it created the store left one; the same command must
    resume, not refuse it)."""
    if not Path(store_path).exists():
        return nothing
    try:
        with Store(store_path, read_only=True) as store:
            return read(store)
    except EmptyStore:
        return nothing


def _fit(jobs: list[list[Trial]], placement: Placement, device: str, scan: str) -> list[list[Trial]]:
    """Local CPU jobs split to fit this machine's memory (``harness.run.memory``). A Dask cluster's
    workers have their own memory, and a GPU's is not the host's; the driver sees neither, so those jobs
    go as planned."""
    local_cpu = placement.executor == "local" and device == "cpu"
    return fit_to_memory(jobs, placement.workers, scan=scan) if local_cpu else jobs


def _run_jobs(suite: Suite, store: Store, work: Work, jobs: list[list[Trial]], summary: RunSummary,
              placement: Placement, argv: list[str], progress: bool, out: TextIO, scan: str) -> None:  # fmt: skip
    """Run the jobs on the chosen executor, claiming and storing through a ``Recorder``, and close the run."""
    run_id = store.new_run_id()
    logs = worker_logs(store.path, run_id)
    # the executor before the run's row: a scheduler that does not answer is exit 2 with nothing recorded
    pool = make_executor(placement, suite.device, suite.time_limit, suite.frameworks, logs, scan)
    # what the report needs besides the trials, recorded before any: the suite as run, names, thresholds
    store.start_run(suite.name, argv, environment(), suite.text or None, for_suite(suite), run_id=run_id)
    print(f"running on {pool.describe()}; worker output goes to {logs}/", file=out)
    bar = _progress_bar(len(work.todo), suite.name, progress)
    recorder = Recorder(store, run_id, suite.name, work, summary, bar, out)
    heartbeat = ClaimHeartbeat(store.path, run_id)
    started = time.monotonic()
    try:
        pool.run(jobs, recorder.on_result, claim=recorder.claim, on_progress=recorder.on_progress)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (``Terminated``)
        summary.interrupted, summary.terminated = True, isinstance(e, Terminated)
    except FrameworkUnavailable as e:
        raise FrameworkUnavailable(f"{e}. The {sum(summary.counts.values())} trial(s) that finished are kept in "
                                   f"{store.path}; nothing was recorded for the others.") from e  # fmt: skip
    except SchedulerLost as e:
        raise SchedulerLost(f"{e}. The {sum(summary.counts.values())} trial(s) that finished are kept in {store.path}; "
                            "nothing was recorded for the others, and their claims are released. Run the same "
                            "command again once the scheduler is back: it does only what is left.") from e  # fmt: skip
    finally:
        heartbeat.stop()
        if bar is not None:
            bar.close()
        summary.seconds = time.monotonic() - started
        recorder.close_run(pool.environments)


def worker_logs(store_path: str | Path, run_id: str) -> Path:
    """The folder of a run's worker logs: ``logs/<run id>/`` next to the store (each worker's stdout and
    stderr, so framework start-up lines do not break into the progress bar)."""
    return Path(store_path).parent / "logs" / run_id


def _jobs_text(jobs: list[list[Trial]]) -> str:
    """' as 12 jobs (populations of up to 10)', or '' when every trial trains alone."""
    largest = max((len(j) for j in jobs), default=1)
    return f" as {len(jobs)} job(s) (populations of up to {largest})" if largest > 1 else ""


def _dry_run(suite: Suite, trials: list[Trial], store_path: str | Path, retry_failed: bool, out: TextIO,
             workers: int, population: int | None, placement: Placement, scan: str) -> RunSummary:  # fmt: skip
    """Print the plan, what the store already has, what a run would do and how long it would take; write
    nothing."""
    describe_plan(suite, trials, out)
    stored, claimed, frame = _read_if_any(
        store_path, lambda s: (s.stored(), s.live_claims(), s.trials_frame(expand_hparams=False)), ({}, {}, None))
    work = work_to_do(trials, stored, retry_failed)
    describe_changes(work, out)
    todo = len(work.todo)
    busy = sum(t.id in claimed for t in work.todo)
    running = f", {busy} of them being run by another driver now" if busy else ""
    jobs = _fit(make_jobs(work.todo, population), placement, suite.device, scan)
    print(f"{len(trials)} trials ({len(trials) - todo} already in {store_path}, {todo} to run{running}"
          f"{_jobs_text(jobs)})", file=out)  # fmt: skip
    for line in _estimate_lines(suite, jobs, workers, frame, scan):
        print(line, file=out)
    return RunSummary(len(trials), len(trials) - todo, todo, stale=sum(work.changed.values()))


def _estimate_lines(suite: Suite, jobs: list[list[Trial]], workers: int, stored, scan: str = "auto") -> list[str]:
    """The dry run's time estimate, or why there is none (a framework missing here, a calibration that
    failed): a dry run plans, it never fails for want of a framework."""
    if not jobs:
        return []
    missing = [f for f in suite.frameworks if f not in installed_frameworks()]
    if missing:
        return [f"no time estimate: not installed here: {', '.join(missing)}"]
    try:
        found = estimate(jobs, workers, suite.time_limit, stored, scan)
    except Exception as e:  # the calibration runs framework code in children: say what failed, go on
        return [f"no time estimate: the calibration failed ({headline(str(e))})"]
    return describe_estimate(found, workers, suite.time_limit)


def check_installed(frameworks: list[str]) -> None:
    """Refuse, before any work, a framework whose package is not installed here."""
    here = installed_frameworks()
    missing = [f for f in frameworks if f not in here]
    if missing:
        names = ", ".join(f"{f} (package {PACKAGES[f]!r})" for f in missing)
        keep = [f for f in frameworks if f not in missing]
        hint = f" or run only {','.join(keep)} with --frameworks {','.join(keep)}" if keep else ""
        raise UsageError(f"not installed here: {names}. Install with pip install -e '.[{','.join(missing)}]'{hint}")


def _progress_bar(total: int, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="trial", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)


def _print_summary(s: RunSummary, store_path: str | Path, out: TextIO) -> None:
    done = sum(s.counts.values())
    parts = ", ".join(f"{k} {s.counts[k]}" for k in ("ok", "diverged", "failed", "timeout") if s.counts[k])
    print(f"{done} trial(s) finished in {s.seconds:.0f} s and stored by this run ({parts or 'none'}; "
          f"solved {s.solved}) in {store_path}", file=out)  # fmt: skip
    if s.taken_by_others:
        print(f"{s.taken_by_others} trial(s) were claimed by another driver on the same store: run there, "
              "not here.", file=out)  # fmt: skip
    if s.stored_by_others:
        print(f"{s.stored_by_others} trial(s) ran here but another driver had stored them first; its results "
              "were kept.", file=out)  # fmt: skip
    if s.counts["failed"] + s.counts["timeout"]:
        print("Failed and timed-out trials are kept as results; rerun them with --retry-failed.", file=out)
    if s.interrupted:
        stopped = "Terminated (SIGTERM)" if s.terminated else "Interrupted"
        print(f"{stopped}: the {done} finished trial(s) are kept. Run the same command again to do the "
              f"remaining {s.to_run - done - s.taken_by_others - s.stored_by_others}.", file=out)  # fmt: skip
