"""``rnn-bench run``: plan a suite, skip what the store already has, run the rest, store each result.

Resume is by content: a trial whose id is in the store is not run again (``retry_failed`` reruns those
recorded failed or timeout). Each result is written in its own transaction the moment it arrives, so
Ctrl-C or a kill loses at most the trials still running; running the same command again does only
what is left.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness.check import installed_frameworks, preflight
from harness.environment import environment
from harness.errors import UsageError
from harness.executors import FrameworkUnavailable, LocalPool
from harness.registry import registry
from harness.store import Store, StoreError, store_fault
from harness.suites import Suite, plan
from harness.training import TrialResult
from harness.trial import Trial


@dataclass
class RunSummary:
    planned: int
    already_done: int
    to_run: int
    counts: Counter = field(default_factory=Counter)
    solved: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    store_failed: bool = False


def describe_plan(suite: Suite, trials: list[Trial], out: TextIO) -> None:
    """The plan's shape: how many trials per task, length, variant and framework."""
    print(f"suite {suite.name!r} ({suite.source})", file=out)
    cells = Counter((t.task, t.length) for t in trials)
    for (task, T), n in sorted(cells.items()):
        print(f"  {task:<16} T={T:<5} {n:>5} trials", file=out)
    print(f"  variants:   {', '.join(suite.variants)}", file=out)
    print(f"  frameworks: {', '.join(suite.frameworks)}; device {suite.device}", file=out)
    print(f"  {suite.trials} configuration(s) x {suite.seeds} seed(s) per cell; search over "
          f"{', '.join(sorted(suite.search)) or 'nothing'}", file=out)  # fmt: skip


def _order_for_throughput(trials: list[Trial]) -> list[Trial]:
    """Longest-expected first (long sequences, large budgets), so the last trials running are short ones
    and the workers finish together. Cost ~ sequence length (the task's L, not T) x step budget."""
    reg = registry()
    return sorted(trials, key=lambda t: -(reg.task(t.task).seq_len(t.length) * t.hparams["max_steps"]))


def run_suite(
    suite: Suite, store_path: str | Path, workers: int, *, dry_run: bool = False, retry_failed: bool = False,
    argv: list[str] | None = None, progress: bool = True, out: TextIO | None = None,
) -> RunSummary:  # fmt: skip
    out = out if out is not None else sys.stdout  # read at call time: honours redirect_stdout
    trials = list({t.id: t for t in plan(suite)}.values())  # a plan never holds one id twice
    preflight(suite.variants)  # a broken variant is refused before any work or store write
    if dry_run:
        describe_plan(suite, trials, out)
        done = {}
        if Path(store_path).exists():
            with Store(store_path, read_only=True) as store:
                done = store.finished()
        todo = sum(t.id not in done for t in trials)
        print(f"{len(trials)} trials ({len(trials) - todo} already in {store_path}, {todo} to run)", file=out)
        return RunSummary(len(trials), len(trials) - todo, todo)

    check_installed(suite.frameworks)
    store = Store(store_path)
    store.add_plan(suite.name, trials)
    finished = store.finished()
    rerun = {"failed", "timeout"} if retry_failed else set()
    todo = [t for t in trials if t.id not in finished or finished[t.id] in rerun]
    summary = RunSummary(len(trials), len(trials) - len(todo), len(todo))
    print(f"{suite.name}: {len(trials)} trials planned, {summary.already_done} already in {store_path}, "
          f"{len(todo)} to run on {workers} worker(s)", file=out)  # fmt: skip
    if not todo:
        print("Nothing to do: every planned trial is in the store.", file=out)
        return summary

    run_id = store.start_run(suite.name, argv or [], environment())
    reg = registry()
    bar = _progress_bar(len(todo), suite.name, progress)
    started = time.monotonic()

    def on_result(trial: Trial, result: TrialResult) -> None:
        try:
            store.record(run_id, suite.name, trial, reg.task(trial.task), result, replace=trial.id in finished)
        except sqlite3.DatabaseError as e:  # a full disk, most often: stop, keeping what is stored
            summary.store_failed = True
            kept = sum(summary.counts.values())
            raise StoreError(
                f"{store_fault(store_path, e)}. Could not store {trial.label()}; the {kept} trial(s) this run "
                f"finished before are kept in {store_path}. Run the same command again to resume."
            ) from e
        summary.counts[result.status] += 1
        summary.solved += int(result.solved)
        if bar is not None:
            bar.set_postfix_str(f"solved {summary.solved}, diverged {summary.counts['diverged']}, "
                                f"failed {summary.counts['failed'] + summary.counts['timeout']}")  # fmt: skip
            bar.update(1)
        if result.status == "failed" and result.error:
            _tell(bar, out, f"failed: {trial.label()}: {result.error.strip().splitlines()[-1]}")

    pool = LocalPool(workers, suite.device, suite.time_limit)
    try:
        pool.run(_order_for_throughput(todo), on_result)
    except KeyboardInterrupt:
        summary.interrupted = True
    except FrameworkUnavailable as e:
        done = sum(summary.counts.values())
        raise FrameworkUnavailable(
            f"{e}. The {done} trial(s) that finished are kept in {store_path}; nothing was recorded for the others."
        ) from e
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.monotonic() - started
        _finish(store, run_id, pool.environments, quiet=summary.store_failed)
    _print_summary(summary, store_path, out)
    return summary


def _finish(store: Store, run_id: str, environments: dict, quiet: bool) -> None:
    """Close the run's row and the store; ``quiet``: the store already failed and that error is on its
    way to the user, so a second failure here must not replace it."""
    try:
        store.finish_run(run_id, environments)
    except sqlite3.DatabaseError:
        if not quiet:
            raise
    finally:
        store.close()


def check_installed(frameworks: list[str]) -> None:
    """Refuse, before any work, a framework whose package is not installed here."""
    from harness.backends import PACKAGES

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


def _tell(bar, out: TextIO, text: str) -> None:
    if bar is not None:
        bar.write(text, file=sys.stderr)
    else:
        print(text, file=out)


def _print_summary(s: RunSummary, store_path: str | Path, out: TextIO) -> None:
    done = sum(s.counts.values())
    parts = ", ".join(f"{k} {s.counts[k]}" for k in ("ok", "diverged", "failed", "timeout") if s.counts[k])
    print(f"{done} trial(s) finished in {s.seconds:.0f} s ({parts or 'none'}; solved {s.solved}); "
          f"stored in {store_path}", file=out)  # fmt: skip
    if s.counts["failed"] + s.counts["timeout"]:
        print("Failed and timed-out trials are kept as results; rerun them with --retry-failed.", file=out)
    if s.interrupted:
        print(f"Interrupted: the {done} finished trial(s) are kept. Run the same command again to do the "
              f"remaining {s.to_run - done}.", file=out)  # fmt: skip
