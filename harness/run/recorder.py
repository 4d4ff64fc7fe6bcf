"""A driver's writes to the store during a run: it claims each trial just before its job starts, stores
each result the moment it arrives, counts what this driver stored (``RunSummary``), keeps its claims
alive (``ClaimHeartbeat``), and stops with a clear message when the store cannot be written.

A result is stored in its own transaction (``Store.record``); a trial another driver claimed is not run
here, and one another driver stored first is not stored twice: both are counted, so that the
summaries of two drivers on one store add up to the plan.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.error_text import headline
from harness.errors import UsageError
from harness.plugins.freshness import expected_code
from harness.plugins.registry import registry
from harness.store.database import LEASE_SECONDS, Store, StoreError, store_fault
from harness.training.solo import TrialResult
from harness.trials.trial import Trial


@dataclass
class RunSummary:
    planned: int
    already_done: int
    to_run: int
    counts: Counter = field(default_factory=Counter)  # what this driver stored, by status
    solved: int = 0
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C or SIGTERM stopped the run (its finished trials are stored)
    terminated: bool = False  # it was SIGTERM (exit 143, not 130)
    stale: int = 0  # stored trials whose code changed: rerun
    taken_by_others: int = 0  # trials another driver had claimed: not run here
    stored_by_others: int = 0  # trials run here that another driver had stored first (work done twice)
    store_failed: bool = False


class Recorder:
    """Claims and stores the trials of one run (``run_id``) of ``work`` (``harness.run.runner.Work``)."""

    def __init__(self, store: Store, run_id: str, suite: str, work: Any, summary: RunSummary, bar: Any,
                 out: TextIO) -> None:  # fmt: skip
        self.store, self.run_id, self.suite, self.work = store, run_id, suite, work
        self.summary, self.bar, self.out = summary, bar, out
        self.code = expected_code({(t.variant, t.task) for t in work.todo})

    def claim(self, trial: Trial) -> bool:
        """Take ``trial`` for this run; False when another driver has it (it is then not run here)."""
        try:
            granted = self.store.claim(trial.id, self.run_id, self.work.stored_at[trial.id])
        except sqlite3.DatabaseError as e:  # a full disk: the claim is a write too
            raise self._store_failed(e, f"claim {trial.label()}") from e
        if not granted:
            self.summary.taken_by_others += 1
            self._advance()
        return granted

    def on_result(self, trial: Trial, result: TrialResult) -> None:
        """Store one result (the row it replaces, if any, moves to ``superseded``) and report progress."""
        result.code = result.code or self.code[(trial.variant, trial.task)]  # a worker that died sent none
        try:
            stored = self.store.record(self.run_id, self.suite, trial, registry().task(trial.task), result,
                                       replaces=self.work.stored_at[trial.id],
                                       reason=self.work.reasons.get(trial.id, "rerun"))  # fmt: skip
        except sqlite3.DatabaseError as e:  # a full disk, most often: stop, keeping what is stored
            raise self._store_failed(e, f"store {trial.label()}") from e
        s = self.summary
        if stored:
            s.counts[result.status] += 1
            s.solved += int(result.solved)
        else:
            s.stored_by_others += 1  # another driver stored it first (a lease ran out): its result stays
        self._advance(f"solved {s.solved}, diverged {s.counts['diverged']}, "
                      f"failed {s.counts['failed'] + s.counts['timeout']}")  # fmt: skip
        if result.status == "failed" and result.error:
            self._tell(f"failed: {trial.label()}: {headline(result.error)}")

    def on_progress(self, trial: Trial, step: int, split: str, loss: float, metric: float) -> None:
        """Store one evaluation point of a trial being trained (``split`` "train" or "validation"; ``metric``
        may be NaN for "train"), so that ``status`` and ``report`` show its curve so far. Called in the driver
        process, as each point arrives; the rows go when the trial's result is stored or the run ends."""
        try:
            self.store.record_progress(self.run_id, trial, step, split, loss, metric)
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):  # busy past SQLite's timeout: a point can be missed,
                return  # the next one or the result will do; a run is not stopped for it
            raise self._store_failed(e, f"record the progress of {trial.label()}") from e
        except sqlite3.DatabaseError as e:  # a damaged store
            raise self._store_failed(e, f"record the progress of {trial.label()}") from e

    def close_run(self, environments: dict) -> None:
        """Release this run's claims, delete its leftover progress rows and close its row. After a store
        failure, whose message is on its way to the user, a second failure here is not raised over it."""
        try:
            self.store.release_claims(self.run_id)
            self.store.finish_run(self.run_id, environments)
        except sqlite3.DatabaseError:
            if not self.summary.store_failed:
                raise

    def _store_failed(self, e: sqlite3.DatabaseError, what: str) -> StoreError:
        """The store cannot be written (a full disk, most often): the run stops, keeping what is stored."""
        self.summary.store_failed = True
        path = self.store.path
        return StoreError(f"{store_fault(path, e)}. Could not {what}; the {sum(self.summary.counts.values())} "
                          f"trial(s) this run finished before are kept in {path}. Run the same command again "
                          "to resume.")  # fmt: skip

    def _advance(self, postfix: str | None = None) -> None:
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix_str(postfix)
            self.bar.update(1)

    def _tell(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=self.out)


class ClaimHeartbeat:
    """Renews a driver's claims every ``lease / 4`` seconds from a thread with its own connection, so that
    a driver busy with long trials keeps them and a dead one loses them. A renewal that fails (the store
    busy past SQLite's timeout) is tried again at the next beat."""

    def __init__(self, store_path: str | Path, run_id: str, lease: float = LEASE_SECONDS) -> None:
        self.store_path, self.run_id, self.lease = store_path, run_id, lease
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="rnn-bench-claims", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        try:
            store = Store(self.store_path, create=False)
        except UsageError:  # the store failed (a full disk): the driver meets it too, and says so
            return
        try:
            while not self.stopped.wait(self.lease / 4):
                try:
                    store.renew_claims(self.run_id, self.lease)
                except sqlite3.OperationalError:  # busy (locked past the timeout), or full: try again at
                    continue  # the next beat; three misses in a row still leave the lease alive
        finally:
            store.close()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
