"""The results store: one SQLite database (WAL mode), append-only per trial, the single source of truth
for status, export, analysis and reports.

Tables:
    runs          one row per ``rnn-bench run``: suite, command line, environment (JSON: Python, numpy,
                  framework versions, CPU, GPU, git commit), start and end times, and the TOML text of
                  the suite file it ran (``suite_text``)
    plans         (suite, trial_id, trial JSON): which trials a suite planned, for status and resume
    trials        one row per finished trial: every trial field, status ok | diverged | failed | timeout,
                  error text, validation/test metrics (primary metric flattened, all metrics as JSON),
                  solved, steps run, steps to solve, wall seconds, training steps per second, parameters
    curves        (trial_id, split, step, loss, metric): the learning curve
    test_lengths  (trial_id, length, metric, loss): a trial's primary metric and loss on the test set at
                  T and at each longer test length (``harness.training.lengths``), at its best checkpoint;
                  rows only for trials tested beyond T, whose ``generalisation`` column holds the score
    claims        (trial_id, run_id, host, pid, claimed_at, expires_at): trials a running driver has taken
    superseded    earlier results of a trial that was run again (retried, or its code changed): the old
                  row and curve as JSON, never read by reports, kept so that no finished trial is lost
    variants      (variant, name, reference, family, aliases, catalogue_rank, ...): what a report shows of
                  each variant, as the newest run that ran it recorded it (``harness.store.metadata``)
    tasks         (task, length, name, metric, higher_is_better, baseline, threshold, ...): each task's
                  metric, direction, trivial baseline and success threshold at each length, likewise
    progress      (trial_id, run_id, suite, task, length, variant, framework, split, step, loss, metric, at):
                  the curve so far of each trial being trained; deleted when its result is stored

The full data dictionary is docs/store.md.

Guarantees:
- A finished trial is written in one transaction (its row, its curve, the release of its claim), so a
  run killed at any moment loses no finished trial and leaves no half-written one.
- ``trial_id`` is the primary key: a trial is stored once. ``record(..., replaces=finished_at)`` (a
  retried failure, or a trial whose code changed) moves that old row and its curve to ``superseded`` and
  writes the new ones in the same transaction; a row stored since by another driver is never replaced.
- Every row records the code fingerprints of the variant and task that produced it
  (``variant_code``, ``task_code``; ``harness.plugins.fingerprint``) and the size of the population it trained
  in (``population``, 1 alone; ``harness.training.population``); rows written before these existed have NULL.
- The report needs nothing but the store: each run records the text of its suite file (``runs.suite_text``)
  and the metadata of its variants and tasks (``variants``, ``tasks``) when it starts, before any trial.
  These tables are upserted: the newest run's metadata of a variant or task wins.
- Progress rows belong to trials being trained: ``record`` deletes a trial's rows in the transaction that
  stores its result, ``finish_run`` deletes its run's leftovers, and ``start_run`` deletes those of
  trials no live driver holds (a driver that died). ``running`` shows only trials with a live claim, so
  no trial shows as running for ever.
- Claims: a driver takes a trial with ``claim`` before running it; a second driver on the same store
  gets ``False`` for it while the claim is live. A claim lives while its driver renews it
  (``renew_claims``, every ``LEASE_SECONDS / 4``) and, on the driver's own host, while its process
  exists: a SIGKILLed driver's claims are free at once on its host, and after ``LEASE_SECONDS``
  elsewhere.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.store.metadata import Metadata, TaskMeta, VariantMeta
from harness.task import Task
from harness.training.lengths import generalisation
from harness.training.solo import TrialResult
from harness.trials.trial import Trial, canonical

SCHEMA_VERSION = 4
LEASE_SECONDS = 60.0
HOST = socket.gethostname()
DEFAULT_PATH = Path("results") / "rnn-bench.sqlite"
STATUSES = ("ok", "diverged", "failed", "timeout")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, suite TEXT, argv TEXT, environment TEXT,
    started_at REAL NOT NULL, finished_at REAL, suite_text TEXT
);
CREATE TABLE IF NOT EXISTS plans (
    suite TEXT NOT NULL, trial_id TEXT NOT NULL, trial TEXT NOT NULL, planned_at REAL NOT NULL,
    PRIMARY KEY (suite, trial_id)
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY, run_id TEXT, suite TEXT,
    task TEXT NOT NULL, length INTEGER NOT NULL, variant TEXT NOT NULL, framework TEXT NOT NULL,
    device TEXT NOT NULL, seed INTEGER NOT NULL, hparams TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed', 'timeout')), error TEXT,
    path TEXT, metric TEXT, higher_is_better INTEGER,
    val_metric REAL, val_loss REAL, test_metric REAL, test_loss REAL, test_metric_last REAL, test_loss_last REAL,
    baseline_metric REAL, metrics TEXT,
    solved INTEGER, steps INTEGER, best_step INTEGER, steps_to_solve INTEGER,
    wall_seconds REAL, steps_per_second REAL, param_count INTEGER, finished_at REAL NOT NULL,
    variant_code TEXT, task_code TEXT, population INTEGER, generalisation REAL, state_size INTEGER
);
CREATE TABLE IF NOT EXISTS curves (
    trial_id TEXT NOT NULL, split TEXT NOT NULL, step INTEGER NOT NULL, loss REAL, metric REAL,
    PRIMARY KEY (trial_id, split, step)
);
CREATE TABLE IF NOT EXISTS test_lengths (
    trial_id TEXT NOT NULL, length INTEGER NOT NULL, metric REAL, loss REAL,
    PRIMARY KEY (trial_id, length)
);
CREATE TABLE IF NOT EXISTS claims (
    trial_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS superseded (
    trial_id TEXT NOT NULL, superseded_at REAL NOT NULL, reason TEXT NOT NULL, row TEXT NOT NULL, curve TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS variants (
    variant TEXT PRIMARY KEY, name TEXT NOT NULL, reference TEXT NOT NULL, family TEXT NOT NULL,
    aliases TEXT NOT NULL, catalogue_rank INTEGER, run_id TEXT, recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task TEXT NOT NULL, length INTEGER NOT NULL, name TEXT NOT NULL, reference TEXT NOT NULL,
    metric TEXT NOT NULL, higher_is_better INTEGER NOT NULL, baseline REAL, threshold REAL,
    run_id TEXT, recorded_at REAL NOT NULL,
    PRIMARY KEY (task, length)
);
CREATE TABLE IF NOT EXISTS progress (
    trial_id TEXT NOT NULL, run_id TEXT NOT NULL, suite TEXT,
    task TEXT NOT NULL, length INTEGER NOT NULL, variant TEXT NOT NULL, framework TEXT NOT NULL,
    split TEXT NOT NULL CHECK (split IN ('train', 'validation')), step INTEGER NOT NULL,
    loss REAL, metric REAL, at REAL NOT NULL,
    PRIMARY KEY (trial_id, split, step)
);
CREATE INDEX IF NOT EXISTS trials_by_cell ON trials (task, length, variant, framework);
CREATE INDEX IF NOT EXISTS progress_by_run ON progress (run_id);
"""


#: Columns added after schema version 1, with their SQL type: added to older stores when opened.
ADDED_COLUMNS = {
    # version 2; generalisation and state_size: version 4 (with the table test_lengths)
    "trials": {"variant_code": "TEXT", "task_code": "TEXT", "population": "INTEGER", "generalisation": "REAL",
               "state_size": "INTEGER"},
    "runs": {"suite_text": "TEXT"},  # version 3
}


def _schema_version(conn: sqlite3.Connection) -> int | None:
    """The version a store was written with; None for a new, empty file."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 1


def _migrate(conn: sqlite3.Connection, version: int | None) -> None:
    """Bring a store written by an older version (``version``) to this schema, inside the caller's
    transaction (the new tables exist already). A store from before version 3 gets the metadata of the
    variants and tasks it holds from the code here, where the code knows them: the best there is, as
    its runs recorded none."""
    for table, columns in ADDED_COLUMNS.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    if version is not None and version < 3:
        _write_metadata(conn, None, _held_metadata(conn), replace=False)
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))


def _held_metadata(conn: sqlite3.Connection) -> Metadata:
    """The code's metadata of the variants and (task, T) the store holds (stored or planned)."""
    from harness.store.metadata import from_registry

    variants = [r[0] for r in conn.execute(
        "SELECT variant FROM trials UNION SELECT json_extract(trial, '$.variant') FROM plans") if r[0]]
    cells = [(t, int(T)) for t, T in conn.execute(
        "SELECT task, length FROM trials UNION "
        "SELECT json_extract(trial, '$.task'), json_extract(trial, '$.length') FROM plans") if t and T is not None]
    return from_registry(variants, cells)  # fmt: skip


def _write_metadata(conn: sqlite3.Connection, run_id: str | None, meta: Metadata, replace: bool = True) -> None:
    """Upsert the variant and task records (inside the caller's transaction); ``replace=False`` keeps
    records already there."""
    verb, now = ("INSERT OR REPLACE" if replace else "INSERT OR IGNORE"), time.time()
    conn.executemany(
        f"{verb} INTO variants (variant, name, reference, family, aliases, catalogue_rank, run_id, recorded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(v.id, v.name, v.reference, v.family, json.dumps(list(v.aliases)), v.catalogue_rank, run_id, now)
         for v in meta.variants.values()],
    )  # fmt: skip
    conn.executemany(
        f"{verb} INTO tasks (task, length, name, reference, metric, higher_is_better, baseline, threshold, "
        "run_id, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(t.task, t.length, t.name, t.reference, t.metric, int(t.higher_is_better), _finite(t.baseline),
          _finite(t.threshold), run_id, now) for t in meta.tasks.values()],
    )  # fmt: skip


def _alive(host: str, pid: int, expires_at: float, now: float) -> bool:
    """Is a claim still held? Past its lease it is not; on this host, not once its process is gone."""
    if expires_at <= now:
        return False
    if host != HOST:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


@dataclass(frozen=True)
class StoredTrial:
    """A stored trial's status, when it was stored, and the code fingerprints it was produced by."""

    status: str
    finished_at: float
    variant_code: str | None
    task_code: str | None

    def code_changed(self, variant_code: str, task_code: str) -> list[str]:
        """Which of "variant", "task" differ from the given fingerprints (unknown, pre-fingerprint
        rows: neither, since nothing is known against them)."""
        changed = []
        if self.variant_code is not None and self.variant_code != variant_code:
            changed.append("variant")
        if self.task_code is not None and self.task_code != task_code:
            changed.append("task")
        return changed


def _row(run_id: str | None, suite: str | None, trial: Trial, task: Task, result: TrialResult) -> dict[str, Any]:
    """The ``trials`` row of one result."""
    m = task.metric
    baseline = task.baseline(trial.length).get(m)
    return {
        "trial_id": trial.id, "run_id": run_id, "suite": suite,
        "task": trial.task, "length": trial.length, "variant": trial.variant, "framework": trial.framework,
        "device": trial.device, "seed": trial.seed, "hparams": json.dumps(canonical(trial.hparams), sort_keys=True),
        "status": result.status, "error": result.error or None, "path": result.path or None,
        "metric": m, "higher_is_better": int(task.higher_is_better),
        "val_metric": _finite(result.validation.get(m)), "val_loss": _finite(result.validation.get("loss")),
        "test_metric": _finite(result.test_best.get(m)), "test_loss": _finite(result.test_best.get("loss")),
        "test_metric_last": _finite(result.test_last.get(m)),
        "test_loss_last": _finite(result.test_last.get("loss")),
        "baseline_metric": _finite(baseline),
        "metrics": json.dumps({"validation": result.validation, "test_best": result.test_best,
                               "test_last": result.test_last, **_ladder_metrics(result)}, allow_nan=True),
        "solved": int(result.solved), "steps": result.steps, "best_step": result.best_step,
        "steps_to_solve": result.steps_to_solve, "wall_seconds": result.wall_seconds,
        "steps_per_second": result.steps_per_second, "param_count": result.param_count,
        "finished_at": time.time(),
        "variant_code": result.code.get("variant"), "task_code": result.code.get("task"),
        "population": result.population,
        "generalisation": _finite_or_none(generalisation(m, result.test_lengths)),
        "state_size": result.state_size or None,
    }  # fmt: skip


def _ladder_metrics(result: TrialResult) -> dict[str, Any]:
    """The metrics at each test length beyond T, as the ``metrics`` JSON holds them (absent without any)."""
    return {"test_lengths": {str(L): m for L, m in result.test_lengths.items()}} if result.test_lengths else {}


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None else _finite(x)


def _length_rows(trial: Trial, task: Task, result: TrialResult) -> list[tuple]:
    """The ``test_lengths`` rows of a trial tested beyond T: T (its best checkpoint's test) and each longer
    length; none for a trial tested at T only."""
    if not result.test_lengths:
        return []
    by_length = {trial.length: result.test_best, **result.test_lengths}
    return [(trial.id, int(L), _finite(m.get(task.metric)), _finite(m.get("loss"))) for L, m in by_length.items()]


class StoreError(UsageError):
    """A results store that cannot be read or written: damaged, on a full disk, not writable."""


def store_fault(path: str | Path, error: BaseException) -> StoreError | None:
    """The user's message for an SQLite error on the store at ``path`` (also when pandas wrapped it),
    or None when ``error`` is not an SQLite error."""
    cause = error if isinstance(error, sqlite3.Error) else error.__cause__
    if not isinstance(cause, sqlite3.Error):
        return None
    name, text = getattr(cause, "sqlite_errorname", None) or "", str(cause)
    if name == "SQLITE_FULL" or "disk is full" in text:
        return StoreError(f"the disk holding the results store {path} is full (SQLite said: {text}); free some space")
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreError(f"the results store {path} cannot be written (SQLite said: {text}); "
                          "copy it somewhere writable or name another one with --store PATH")  # fmt: skip
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or "not a database" in text:
        return StoreError(f"the results store {path} is damaged (SQLite said: {text}); restore it from a "
                          "copy, or name another one with --store PATH")  # fmt: skip
    return StoreError(f"the results store {path} cannot be used (SQLite said: {text})")


SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def is_sqlite_file(path: Path) -> bool:
    """An SQLite database (by its header) or one's -wal/-shm/-journal file: never to be overwritten or
    removed by a verb that writes files (report, export)."""
    if path.name.endswith(SQLITE_SIDECARS):
        return True
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


class EmptyStore(UsageError):
    """An SQLite database without tables, opened read-only: what a run leaves when the disk fills while it
    creates its store. A reading verb refuses it; ``run`` treats it as a store with nothing in it yet."""


class Store:
    """A results database. ``Store(path)`` creates it (and its folder) unless ``create=False``.

    ``read_only=True`` (the reading verbs) never writes and leaves no ``-wal``/``-shm`` files beside a store
    that had none: a writable store nobody has open is read through a connection that refuses writes
    (``PRAGMA query_only``; SQLite removes its files on close), one with a live writer (its ``-wal``
    exists) with ``mode=ro``, and a store whose file or folder is not writable with ``mode=ro`` and
    ``immutable=1``, so a read-only or archived copy can be read. SQLite errors inside ``with Store(...)``
    come out as ``StoreError`` (exit code 2) naming the store.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, create: bool = True, read_only: bool = False) -> None:
        if not str(path).strip():  # Path("") would be the current folder
            raise UsageError(f"--store {str(path)!r} names no file; name the results store, e.g. "
                             f"--store {DEFAULT_PATH}")  # fmt: skip
        self.path = Path(path)
        if not self.path.exists():
            if not create or read_only:
                raise UsageError(f"no results store at {self.path}; run a suite first (rnn-bench run quick) "
                                 "or name another one with --store PATH")  # fmt: skip
            self._make_folder()
        if self.path.is_dir():
            raise UsageError(f"the results store {self.path} is a folder; name a file with --store PATH")
        try:
            self.conn = self._connect(read_only)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:  # someone else's database: never write our schema into it
                self.conn.close()
                raise UsageError(
                    f"{self.path} is an SQLite database but not an rnn-bench results store "
                    f"(its tables: {', '.join(sorted(tables))})"
                )
            if read_only and not tables:
                self.conn.close()
                raise EmptyStore(f"{self.path} is an empty database, not an rnn-bench results store")
            if not read_only:
                self._create_schema()
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e):
                raise UsageError(f"{self.path} is not an rnn-bench results store (SQLite said: {e})") from e
            raise store_fault(self.path, e) from e  # damaged, full disk, not writable

    def _make_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the folder of the results store {self.path}: {e.strerror}") from e

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        if not read_only:
            return sqlite3.connect(str(self.path), timeout=30)
        if _writable(self.path) and not Path(f"{self.path}-wal").exists():
            # Nobody has the store open (no -wal file): a mode=ro reader would create the -wal and -shm
            # files a WAL database needs and, unable to delete them, leave them beside the store. A normal
            # connection that refuses writes to the tables (query_only; no reading code issues a PRAGMA that
            # changes the file) reads the same, and SQLite deletes the files when its last connection
            # closes (with a writer still open, the writer's files stay).
            conn = sqlite3.connect(str(self.path), timeout=30)
            conn.execute("PRAGMA query_only = ON")
            return conn
        uri = f"{self.path.resolve().as_uri()}?mode=ro" + ("" if _writable(self.path) else "&immutable=1")
        return sqlite3.connect(uri, uri=True, timeout=30)

    def _create_schema(self) -> None:
        _wal(self.conn)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        # The write lock from the first read on (BEGIN IMMEDIATE waits out the busy timeout): two drivers
        # opening a store together must not both read the version, then one fail to upgrade its read to a
        # write ("database is locked"). executescript would commit first, so the statements run one by one.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            version = _schema_version(self.conn)
            for statement in filter(str.strip, SCHEMA.split(";")):
                self.conn.execute(statement)
            _migrate(self.conn, version)
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, trace: Any) -> None:
        self.close()
        fault = store_fault(self.path, error) if error is not None else None
        if fault is not None:
            raise fault from error

    # --- runs and plans -----------------------------------------------------------------------------
    @staticmethod
    def new_run_id() -> str:
        """A run's id: its start time and a random suffix (``20261130-041414-c60288``)."""
        return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]

    def start_run(self, suite: str, argv: list[str], environment: dict[str, Any], suite_text: str | None = None,
                  metadata: Metadata | None = None, run_id: str | None = None) -> str:  # fmt: skip
        """Open a run and return its id (``run_id``, or a new one), in one transaction: its row (with
        ``suite_text``, the TOML text of the suite file it runs, None when it has none), the ``metadata`` of
        its variants and tasks (upserted: the newest run's wins), and the removal of progress rows that no
        live driver holds any more (a driver that died mid-trial)."""
        run_id = run_id or self.new_run_id()
        with self.conn:
            self.conn.execute(
                "INSERT INTO runs (run_id, suite, argv, environment, started_at, suite_text) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, suite, json.dumps(argv), json.dumps(environment, sort_keys=True), time.time(), suite_text),
            )
            if metadata is not None:
                _write_metadata(self.conn, run_id, metadata)
            self._clear_dead_progress()
        return run_id

    def finish_run(self, run_id: str, workers: dict[str, dict] | None = None) -> None:
        """Close a run and delete its leftover progress rows (trials it did not finish: interrupted);
        ``workers`` adds what each framework's workers reported (versions, GPU)."""
        with self.conn:
            self.conn.execute("DELETE FROM progress WHERE run_id = ?", (run_id,))
            if workers:
                row = self.conn.execute("SELECT environment FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                env = json.loads(row[0]) if row and row[0] else {}
                env["workers"] = workers
                self.conn.execute(
                    "UPDATE runs SET environment = ? WHERE run_id = ?", (json.dumps(env, sort_keys=True), run_id)
                )
            self.conn.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (time.time(), run_id))

    def add_plan(self, suite: str, trials: Iterable[Trial], *, whole: bool = False) -> None:
        """Record that ``suite`` plans ``trials``. A narrowed run's plan adds to what the suite planned
        before; ``whole``, the suite file's entire plan, replaces it: rows of trials the suite no longer
        plans (it was edited) are dropped in the same transaction, so they are not counted as remaining
        forever. Stored trials are never touched."""
        trials = list(trials)
        now = time.time()
        with self.conn:
            if whole:  # the new ids in a temporary table: a literal NOT IN (?, ...) would pass SQLite's
                # limit on bound variables for a plan of thousands of trials
                self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS planned_now (trial_id TEXT PRIMARY KEY)")
                self.conn.execute("DELETE FROM planned_now")
                self.conn.executemany("INSERT OR IGNORE INTO planned_now VALUES (?)", [(t.id,) for t in trials])
                self.conn.execute(
                    "DELETE FROM plans WHERE suite = ? AND trial_id NOT IN (SELECT trial_id FROM planned_now)", (suite,)
                )
            self.conn.executemany(
                "INSERT OR IGNORE INTO plans (suite, trial_id, trial, planned_at) VALUES (?, ?, ?, ?)",
                [(suite, t.id, t.to_json(), now) for t in trials],
            )

    def stored(self) -> dict[str, StoredTrial]:
        """trial_id -> what a driver needs to know of each stored trial to decide whether to run it."""
        have = self._columns("trials")  # a read-only store of an older version lacks the code columns
        code = ", ".join(c if c in have else "NULL" for c in ("variant_code", "task_code"))
        rows = self.conn.execute(f"SELECT trial_id, status, finished_at, {code} FROM trials")
        return {r[0]: StoredTrial(*r[1:]) for r in rows}

    def _columns(self, table: str) -> set[str]:
        return {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}

    def column_types(self, table: str) -> dict[str, str]:
        """Column name -> declared SQL type (``TEXT``, ``INTEGER``, ``REAL``) of ``table``, in its order."""
        return {r[1]: r[2].upper() for r in self.conn.execute(f"PRAGMA table_info({table})")}

    # --- writing a trial ----------------------------------------------------------------------------
    def record(self, run_id: str | None, suite: str | None, trial: Trial, task: Task, result: TrialResult,
               replaces: float | None = None, reason: str = "rerun") -> bool:  # fmt: skip
        """Store one finished trial and its learning curve in one transaction, releasing its claim and
        deleting its progress rows.

        Returns False (and stores nothing) when the trial is already stored and ``replaces`` is None:
        another driver stored it first. ``replaces``: the ``finished_at`` of the stored row this result
        replaces (a retry, or changed code); that row and its curve move to ``superseded`` (with
        ``reason``) first. A row stored since (another driver's fresh result) is not replaced: False.
        """
        row = _row(run_id, suite, trial, task, result)
        cols = ", ".join(row)
        with self.conn:
            if replaces is not None:
                self._supersede(trial.id, replaces, reason)
            cur = self.conn.execute(
                f"INSERT OR IGNORE INTO trials ({cols}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
            )
            self.conn.execute("DELETE FROM claims WHERE trial_id = ? AND run_id IS ?", (trial.id, run_id))
            self.conn.execute("DELETE FROM progress WHERE trial_id = ?", (trial.id,))  # its final curve: curves
            if cur.rowcount == 0:  # already stored by another driver: keep the first, add nothing
                return False
            self.conn.execute("DELETE FROM curves WHERE trial_id = ?", (trial.id,))
            self.conn.executemany(
                "INSERT INTO curves (trial_id, split, step, loss, metric) VALUES (?, ?, ?, ?, ?)",
                [(trial.id, split, step, _finite(loss), _finite(metric)) for step, split, loss, metric in result.curve],
            )
            self.conn.execute("DELETE FROM test_lengths WHERE trial_id = ?", (trial.id,))
            self.conn.executemany("INSERT INTO test_lengths (trial_id, length, metric, loss) VALUES (?, ?, ?, ?)",
                                  _length_rows(trial, task, result))  # fmt: skip
        return True

    def _supersede(self, trial_id: str, finished_at: float, reason: str) -> None:
        """Move a trial's row stored at ``finished_at`` and its curve to ``superseded`` (inside the caller's
        transaction); a row stored at another time is not the one the caller means, and stays."""
        self.conn.row_factory = sqlite3.Row
        try:
            old = self.conn.execute("SELECT * FROM trials WHERE trial_id = ? AND finished_at = ?",
                                    (trial_id, finished_at)).fetchone()  # fmt: skip
            if old is None:
                return
            curve = [tuple(r) for r in self.conn.execute(
                "SELECT step, split, loss, metric FROM curves WHERE trial_id = ? ORDER BY split, step", (trial_id,))]
        finally:
            self.conn.row_factory = None
        self.conn.execute(
            "INSERT INTO superseded (trial_id, superseded_at, reason, row, curve) VALUES (?, ?, ?, ?, ?)",
            (trial_id, time.time(), reason, json.dumps(dict(old)), json.dumps(curve)),
        )
        self.conn.execute("DELETE FROM trials WHERE trial_id = ?", (trial_id,))
        self.conn.execute("DELETE FROM curves WHERE trial_id = ?", (trial_id,))
        # the old row's ``metrics`` JSON keeps its metrics at every test length
        self.conn.execute("DELETE FROM test_lengths WHERE trial_id = ?", (trial_id,))

    # --- progress: the curves of trials being trained ---------------------------------------------------
    def record_progress(self, run_id: str, trial: Trial, step: int, split: str, loss: float, metric: float) -> None:
        """Add one evaluation point of a trial being trained by ``run_id`` (its own transaction). ``split``
        is "train" or "validation"; a non-finite loss or metric (NaN for "train") is stored NULL. The same
        (trial, split, step) again replaces the earlier point (a trial started again)."""
        if split not in ("train", "validation"):
            raise ValueError(f"progress split {split!r} is not allowed; allowed: 'train', 'validation'")
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO progress (trial_id, run_id, suite, task, length, variant, framework, split, "
                "step, loss, metric, at) VALUES (?, ?, (SELECT suite FROM runs WHERE run_id = ?), ?, ?, ?, ?, ?, ?, "
                "?, ?, ?)",
                (trial.id, run_id, run_id, trial.task, trial.length, trial.variant, trial.framework, split, int(step),
                 _finite(loss), _finite(metric), time.time()),
            )  # fmt: skip

    def _clear_dead_progress(self) -> None:
        """Delete the progress rows of trials without a live claim (inside the caller's transaction)."""
        live = set(self._live_claims())
        dead = [(t,) for (t,) in self.conn.execute("SELECT DISTINCT trial_id FROM progress") if t not in live]
        self.conn.executemany("DELETE FROM progress WHERE trial_id = ?", dead)

    def running(self):
        """The trials being trained now, one row each: those with a live claim. Columns: trial_id, run_id,
        suite, task, length, variant, framework, step (the latest point's), metric (the latest validation
        metric; NaN before the first), at (time of the latest point; NaN before the first). A trial whose
        driver died has no live claim, so it is never shown as running, whatever rows it left."""
        import pandas as pd

        cols = ["trial_id", "run_id", "suite", "task", "length", "variant", "framework", "step", "metric", "at"]
        claims = self._live_claims()
        if not claims:
            return pd.DataFrame(columns=cols)
        points = self._progress_rows(list(claims)) if self._columns("progress") else pd.DataFrame()
        rows = [self._running_row(tid, run, points) for tid, run in sorted(claims.items())]
        frame = pd.DataFrame([r for r in rows if r is not None], columns=cols)
        return frame.sort_values(["task", "length", "variant", "framework", "trial_id"]).reset_index(drop=True)

    def _running_row(self, trial_id: str, run_id: str, points) -> dict[str, Any] | None:
        """One running trial: its fields and latest point from its progress rows, else from its plan."""
        mine = points[points["trial_id"] == trial_id] if len(points) else points
        if len(mine):
            first, val = mine.iloc[0], mine[mine["split"] == "validation"]
            return {"trial_id": trial_id, "run_id": run_id, "suite": first["suite"],
                    **{k: first[k] for k in ("task", "length", "variant", "framework")},
                    "step": int(mine["step"].max()), "metric": val["metric"].iloc[-1] if len(val) else math.nan,
                    "at": float(mine["at"].max())}  # fmt: skip
        planned = self.conn.execute("SELECT suite, trial FROM plans WHERE trial_id = ? LIMIT 1", (trial_id,)).fetchone()
        if planned is None:  # claimed but planned nowhere: nothing to show it by
            return None
        t = json.loads(planned[1])
        return {"trial_id": trial_id, "run_id": run_id, "suite": planned[0],
                **{k: t[k] for k in ("task", "length", "variant", "framework")},
                "step": math.nan, "metric": math.nan, "at": math.nan}  # fmt: skip

    def _progress_rows(self, trial_ids: list[str]):
        """The progress rows of these trials, by trial, split and step."""
        import pandas as pd

        frames = [
            pd.read_sql_query(
                f"SELECT * FROM progress WHERE trial_id IN ({','.join('?' * len(chunk))}) "
                "ORDER BY trial_id, split, step",
                self.conn, params=chunk,
            )
            for chunk in (trial_ids[i : i + 500] for i in range(0, len(trial_ids), 500))
        ]  # fmt: skip
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def progress_frame(self, trial_ids: Iterable[str]):
        """The curves so far of these trials, with the columns of ``curves_frame``."""
        import pandas as pd

        cols = ["trial_id", "split", "step", "loss", "metric"]
        ids = list(trial_ids)
        if not ids or not self._columns("progress"):
            return pd.DataFrame(columns=cols)
        rows = self._progress_rows(ids)
        return rows[cols] if len(rows) else pd.DataFrame(columns=cols)

    # --- claims: several drivers on one store --------------------------------------------------------
    def claim(self, trial_id: str, run_id: str, stored_at: float | None, lease: float = LEASE_SECONDS) -> bool:
        """Take ``trial_id`` for ``run_id`` unless another live driver holds it, or its stored row is no
        longer the one this driver planned from (``stored_at``: that row's ``finished_at``, None for no
        row): then another driver has stored it meanwhile. One write transaction: two drivers asking at
        once cannot both win."""
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            row = self.conn.execute("SELECT finished_at FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
            if (row[0] if row else None) != stored_at:
                return False
            held = self.conn.execute(
                "SELECT run_id, host, pid, expires_at FROM claims WHERE trial_id = ?", (trial_id,)
            ).fetchone()
            if held is not None and held[0] != run_id and _alive(held[1], held[2], held[3], now):
                return False
            self.conn.execute(
                "INSERT OR REPLACE INTO claims (trial_id, run_id, host, pid, claimed_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (trial_id, run_id, HOST, os.getpid(), now, now + lease),
            )  # fmt: skip
        return True

    def renew_claims(self, run_id: str, lease: float = LEASE_SECONDS) -> None:
        with self.conn:
            self.conn.execute("UPDATE claims SET expires_at = ? WHERE run_id = ?", (time.time() + lease, run_id))

    def release_claims(self, run_id: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))

    def live_claims(self, exclude_run: str | None = None) -> dict[str, str]:
        """trial_id -> "host pid N" of every live claim (of drivers other than ``exclude_run``)."""
        return {t: f"{h} pid {p}" for t, (r, h, p) in self._live_claims(with_driver=True).items() if r != exclude_run}

    def _live_claims(self, with_driver: bool = False) -> dict[str, Any]:
        """trial_id -> run_id (or (run_id, host, pid) ``with_driver``) of every live claim."""
        if not self._columns("claims"):  # a read-only store of an older version
            return {}
        now = time.time()
        rows = self.conn.execute("SELECT trial_id, run_id, host, pid, expires_at FROM claims").fetchall()
        return {t: (r, h, p) if with_driver else r for t, r, h, p, e in rows if _alive(h, p, e, now)}

    # --- reading ------------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def trials_frame(self, expand_hparams: bool = True):
        """All trials as a pandas DataFrame; hyperparameters expanded into ``hp.<name>`` columns."""
        import pandas as pd

        df = pd.read_sql_query("SELECT * FROM trials ORDER BY task, length, variant, framework, trial_id", self.conn)
        if expand_hparams and len(df):
            hp = pd.json_normalize([json.loads(h) for h in df["hparams"]]).add_prefix("hp.")
            df = pd.concat([df.reset_index(drop=True), hp], axis=1)
        return df

    def curves_frame(self, trial_ids: Iterable[str] | None = None):
        import pandas as pd

        if trial_ids is None:
            return pd.read_sql_query("SELECT * FROM curves ORDER BY trial_id, split, step", self.conn)
        ids = list(trial_ids)
        if not ids:
            return pd.DataFrame(columns=["trial_id", "split", "step", "loss", "metric"])
        frames = [
            pd.read_sql_query(
                f"SELECT * FROM curves WHERE trial_id IN ({','.join('?' * len(chunk))}) ORDER BY trial_id, split, step",
                self.conn, params=chunk,
            )
            for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500))
        ]  # fmt: skip
        return pd.concat(frames, ignore_index=True)

    def test_lengths_frame(self):
        """The ``test_lengths`` table (trial_id, length, metric, loss), empty for a store without it."""
        import pandas as pd

        if not self._columns("test_lengths"):  # a read-only store of an older version
            return pd.DataFrame(columns=["trial_id", "length", "metric", "loss"])
        return pd.read_sql_query("SELECT * FROM test_lengths ORDER BY trial_id, length", self.conn)

    def runs_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM runs ORDER BY started_at", self.conn)

    def plans_frame(self):
        import pandas as pd

        return pd.read_sql_query("SELECT suite, trial_id, trial FROM plans ORDER BY suite, planned_at", self.conn)

    def status(self):
        """Per suite: planned, finished by status, remaining (planned and not stored)."""
        import pandas as pd

        q = """
            SELECT p.suite AS suite, COUNT(*) AS planned,
                   SUM(t.status = 'ok') AS ok, SUM(t.status = 'diverged') AS diverged,
                   SUM(t.status = 'failed') AS failed, SUM(t.status = 'timeout') AS timeout,
                   SUM(t.status IS NULL) AS remaining, SUM(t.solved) AS solved
            FROM plans p LEFT JOIN trials t ON t.trial_id = p.trial_id
            GROUP BY p.suite ORDER BY p.suite
        """
        df = pd.read_sql_query(q, self.conn)
        return df.fillna(0).astype({c: int for c in df.columns if c != "suite"})

    def metadata(self) -> Metadata:
        """The variant and task records the runs wrote (``harness.store.metadata``); empty for a store written
        before stores recorded them and opened read-only (``harness.store.metadata.complete`` fills the gaps)."""
        meta = Metadata()
        if self._columns("variants"):
            for v, name, ref, family, aliases, rank in self.conn.execute(
                "SELECT variant, name, reference, family, aliases, catalogue_rank FROM variants"
            ):
                meta.variants[v] = VariantMeta(v, name, ref, family, rank, tuple(json.loads(aliases or "[]")))
        if self._columns("tasks"):
            for task, T, name, ref, metric, hib, base, threshold in self.conn.execute(
                "SELECT task, length, name, reference, metric, higher_is_better, baseline, threshold FROM tasks"
            ):
                meta.tasks[(task, int(T))] = TaskMeta(task, int(T), name, metric, bool(hib), base, threshold, ref)
        return meta

    def suite_text(self, suite: str) -> str | None:
        """The TOML text of the suite file the latest run of ``suite`` ran (None when no run recorded one)."""
        if "suite_text" not in self._columns("runs"):
            return None
        row = self.conn.execute(
            "SELECT suite_text FROM runs WHERE suite = ? AND suite_text IS NOT NULL ORDER BY started_at DESC LIMIT 1",
            (suite,),
        ).fetchone()
        return row[0] if row else None

    def latest_environment(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT environment FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row and row[0] else {}


def _wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to write-ahead logging. The switch needs the database to itself and SQLite answers "database
    is locked" at once, without its busy timeout, while another driver creates the same store; so wait
    for that driver here, as long as a connection would (a race seen once in CI, 2026-12-06)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
