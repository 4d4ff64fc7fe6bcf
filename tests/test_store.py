"""The store: one transaction per trial, never a duplicate, readable while a run goes on."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.store import database as store_module
from harness.store.database import Store, StoreError
from harness.training.solo import TrialResult
from harness.trials.protocol import check_hparams
from harness.trials.trial import Trial

VERSION = str(store_module.SCHEMA_VERSION)


def a_trial(seed=0, variant="np"):
    return Trial("adding", 10, variant, "torch", "cpu", check_hparams({"max_steps": 5}), seed)


def a_result(status="ok", metric=0.05):
    return TrialResult(
        status=status,
        path="fused",
        steps=100,
        best_step=100,
        validation={"loss": metric, "mse": metric},
        test_best={"loss": metric, "mse": metric},
        test_last={"loss": metric, "mse": metric},
        wall_seconds=1.5,
        steps_per_second=80.0,
        param_count=123,
        curve=[(0, "validation", 0.2, 0.2), (100, "validation", metric, metric)],
    )


def test_record_and_read_back(tmp_path):
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("t", ["rnn-bench"], {"python": "3"})
        store.record(run, "t", a_trial(), task, a_result())
        df = store.trials_frame()
        assert len(df) == 1
        row = df.iloc[0]
        assert row["trial_id"] == a_trial().id and row["status"] == "ok" and row["test_metric"] == 0.05
        assert row["metric"] == "mse" and row["higher_is_better"] == 0
        assert row["baseline_metric"] == pytest.approx(1 / 6)
        assert row["hp.learning_rate"] == 1e-3
        curves = store.curves_frame([a_trial().id])
        assert list(curves["step"]) == [0, 100]


def test_a_trial_is_never_stored_twice(tmp_path):
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        store.record(None, "t", a_trial(), task, a_result(metric=0.05))
        store.record(None, "t", a_trial(), task, a_result(metric=0.5))  # a second writer: ignored
        assert store.count() == 1
        assert store.trials_frame().iloc[0]["test_metric"] == 0.05
        assert len(store.curves_frame()) == 2
        stored_at = store.stored()[a_trial().id].finished_at
        store.record(None, "t", a_trial(), task, a_result(metric=0.01), replaces=stored_at)  # a retry: replaced
        assert store.count() == 1 and store.trials_frame().iloc[0]["test_metric"] == 0.01
        assert len(store.curves_frame()) == 2


def test_a_replaced_result_is_kept_as_superseded_not_lost(tmp_path):
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        assert store.record(None, "t", a_trial(), task, a_result(metric=0.05))
        assert not store.record(None, "t", a_trial(), task, a_result(metric=0.5))  # stored already: False
        stored_at = store.stored()[a_trial().id].finished_at
        assert store.record(None, "t", a_trial(), task, a_result(metric=0.01), replaces=stored_at,
                            reason="code changed")  # fmt: skip
        (trial_id, reason, row, curve), = store.conn.execute("SELECT trial_id, reason, row, curve FROM superseded")
        assert trial_id == a_trial().id and reason == "code changed"
        assert json.loads(row)["test_metric"] == 0.05 and len(json.loads(curve)) == 2
        assert store.trials_frame().iloc[0]["test_metric"] == 0.01  # the current one


def test_a_rerun_never_replaces_a_row_another_driver_stored_since_it_planned(tmp_path):
    """Driver A planned to replace row r0; driver B replaced r0 with a fresh r1 first: A's late result
    must not supersede r1 (it is B's current, fresh result), and A is told it stored nothing."""
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        store.record("old", "t", a_trial(), task, a_result(metric=0.5))
        r0 = store.stored()[a_trial().id].finished_at
        assert store.record("run-b", "t", a_trial(), task, a_result(metric=0.01), replaces=r0)
        assert not store.record("run-a", "t", a_trial(), task, a_result(metric=0.02), replaces=r0)
        assert store.trials_frame().iloc[0]["test_metric"] == 0.01
        assert store.conn.execute("SELECT COUNT(*) FROM superseded").fetchone()[0] == 1  # r0 only


def test_recording_releases_only_the_recording_drivers_claim(tmp_path):
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        assert store.claim(a_trial().id, "run-b", None)
        store.record("run-a", "t", a_trial(), task, a_result())  # a straggler of run-a
        assert store.conn.execute("SELECT run_id FROM claims").fetchall() == [("run-b",)]


def test_a_row_records_the_code_that_produced_it(tmp_path):
    result = a_result()
    result.code = {"variant": "a" * 16, "task": "b" * 16}
    with Store(tmp_path / "s.sqlite") as store:
        store.record(None, "t", a_trial(), registry().task("adding"), result)
        row = store.stored()[a_trial().id]
        assert (row.status, row.variant_code, row.task_code) == ("ok", "a" * 16, "b" * 16)
        assert row.code_changed("a" * 16, "b" * 16) == []
        assert row.code_changed("c" * 16, "b" * 16) == ["variant"]
        assert row.code_changed("a" * 16, "c" * 16) == ["task"]


# --- claims: two drivers on one store ------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_claim_keeps_a_trial_from_a_second_driver(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as a, Store(path) as b:
        assert a.claim("t1", "run-a", None)
        assert not b.claim("t1", "run-b", None)  # held by a live driver (this process)
        assert a.claim("t1", "run-a", None)  # its owner may ask again
        assert b.claim("t2", "run-b", None)
        assert a.live_claims(exclude_run="run-a") == {"t2": f"{store_module.HOST} pid {os.getpid()}"}
        a.release_claims("run-a")
        assert b.claim("t1", "run-b", None)


def test_a_dead_drivers_claims_are_free_at_once_and_expired_ones_anywhere(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        now = time.time()
        store.conn.execute("INSERT INTO claims VALUES ('dead', 'run-x', ?, ?, ?, ?)",
                           (store_module.HOST, dead_pid(), now, now + 3600))  # fmt: skip
        store.conn.execute("INSERT INTO claims VALUES ('elsewhere', 'run-y', 'other-host', 1, ?, ?)", (now, now + 3600))
        store.conn.execute("INSERT INTO claims VALUES ('expired', 'run-z', 'other-host', 1, ?, ?)", (now, now - 1))
        store.conn.commit()
        assert store.claim("dead", "run-b", None)  # SIGKILLed on this host: its process is gone
        assert not store.claim("elsewhere", "run-b", None)  # another host, lease running: assumed alive
        assert store.claim("expired", "run-b", None)  # lease ran out: its driver stopped renewing


def test_renewing_extends_the_lease_and_recording_releases_the_claim(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        assert store.claim(a_trial().id, "run-a", None, lease=5)
        (before,), = store.conn.execute("SELECT expires_at FROM claims").fetchall()
        store.renew_claims("run-a", lease=100)
        (after,), = store.conn.execute("SELECT expires_at FROM claims").fetchall()
        assert after > before + 90
        store.record("run-a", "t", a_trial(), registry().task("adding"), a_result())
        assert store.conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # its own claim: released


def test_a_trial_stored_since_the_plan_cannot_be_claimed(tmp_path):
    """A driver planned from a snapshot: a row that appeared (or changed) since means another driver did it."""
    with Store(tmp_path / "s.sqlite") as store:
        store.record(None, "t", a_trial(), registry().task("adding"), a_result())
        stored_at = store.stored()[a_trial().id].finished_at
        assert not store.claim(a_trial().id, "run-a", None)  # planned as missing, now stored
        assert store.claim(a_trial().id, "run-a", stored_at)  # planned to replace exactly this row


def test_a_version_1_store_is_migrated_and_its_rows_have_no_fingerprint(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    added = ",\n    variant_code TEXT, task_code TEXT, population INTEGER, generalisation REAL"
    conn.executescript(store_module.SCHEMA.replace(added, ""))
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute("INSERT INTO trials (trial_id, task, length, variant, framework, device, seed, hparams, status, "
                 "finished_at) VALUES ('old', 'adding', 10, 'np', 'torch', 'cpu', 0, '{}', 'ok', 1.0)")  # fmt: skip
    conn.commit()
    assert "variant_code" not in {r[1] for r in conn.execute("PRAGMA table_info(trials)")}
    conn.close()
    with Store(path) as store:
        old = store.stored()["old"]
        assert (old.variant_code, old.task_code) == (None, None)
        assert old.code_changed("x", "y") == []  # nothing known against it
        assert store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == VERSION


def test_failed_trial_keeps_its_reason_and_nan_becomes_null(tmp_path):
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        store.record(None, "t", a_trial(1), task, TrialResult(status="failed", error="worker died"))
        bad = a_result(status="diverged", metric=float("nan"))
        store.record(None, "t", a_trial(2), task, bad)
        df = store.trials_frame().set_index("seed")
        assert df.loc[1, "error"] == "worker died"
        assert df.loc[2, "status"] == "diverged" and df["test_metric"].isna()[2]


def test_status_counts_planned_finished_and_remaining(tmp_path):
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        store.add_plan("t", [a_trial(s) for s in range(4)])
        store.add_plan("t", [a_trial(s) for s in range(4)])  # planning twice adds nothing
        store.record(None, "t", a_trial(0), task, a_result())
        store.record(None, "t", a_trial(1), task, TrialResult(status="failed", error="x"))
        row = store.status().iloc[0]
        assert (row["planned"], row["ok"], row["failed"], row["remaining"]) == (4, 1, 1, 2)


def test_a_whole_plan_replaces_the_suites_plan_and_a_narrowed_one_adds_to_it(tmp_path):
    """An edited suite file's old trials must not stay 'remaining' forever (a greff run whose lengths were
    changed midway reported 3,520 trials it would never run as not finished)."""
    task = registry().task("adding")
    with Store(tmp_path / "s.sqlite") as store:
        store.add_plan("t", [a_trial(s) for s in range(4)], whole=True)
        store.add_plan("other", [a_trial(3)], whole=True)
        store.record(None, "t", a_trial(0), task, a_result())
        store.add_plan("t", [a_trial(s) for s in (4, 5)])  # narrowed: adds
        assert store.status().set_index("suite").loc["t", "planned"] == 6
        store.add_plan("t", [a_trial(s) for s in (0, 1, 6)], whole=True)  # the edited file: replaces
        status = store.status().set_index("suite")
        assert (status.loc["t", "planned"], status.loc["t", "ok"], status.loc["t", "remaining"]) == (3, 1, 2)
        assert status.loc["other", "planned"] == 1  # another suite's plan is its own
        assert set(store.plans_frame().query("suite == 't'")["trial_id"]) == {a_trial(s).id for s in (0, 1, 6)}
        assert len(store.trials_frame()) == 1  # a stored trial is never touched


def test_wal_mode_and_concurrent_reader(tmp_path):
    path = tmp_path / "s.sqlite"
    store = Store(path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.record(None, "t", a_trial(), registry().task("adding"), a_result())
    reader = sqlite3.connect(path)
    assert reader.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 1
    store.close()


def test_missing_or_foreign_store_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no results store"):
        Store(tmp_path / "missing.sqlite", create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_text("this is not a database" * 100)
    with pytest.raises(UsageError, match="not an rnn-bench results store"):
        Store(junk)


def test_run_environment_gains_what_the_workers_reported(tmp_path):
    import json

    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("t", ["rnn-bench", "run", "t"], {"python": "3.11", "cpu": "x"})
        store.finish_run(run, {"torch": {"torch": "2.13.0", "gpu": "H100"}})
        row = store.runs_frame().iloc[0]
        env = json.loads(row["environment"])
        assert env["cpu"] == "x" and env["workers"]["torch"]["gpu"] == "H100"
        assert row["finished_at"] >= row["started_at"]
        assert store.latest_environment()["workers"]["torch"]["torch"] == "2.13.0"


def corrupt(path):
    """Overwrite every page after the first (the header and schema stay intact)."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    path.write_bytes(data)


def not_writable(monkeypatch):
    """As if the store's file and folder were read-only (tests run as root, whom permissions do not stop)."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real(p, mode, **kw))


def test_read_only_store_is_read_and_nothing_appears_beside_it(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.record(None, "t", a_trial(), registry().task("adding"), a_result())
    not_writable(monkeypatch)
    with Store(path, read_only=True) as store:
        assert store.count() == 1 and len(store.curves_frame()) == 2
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM trials")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]
    with pytest.raises(StoreError, match=f"{path}.*cannot be written"):
        with Store(path, read_only=True) as store:
            store.record(None, "t", a_trial(1), registry().task("adding"), a_result())


def test_read_only_store_sees_a_live_writer(tmp_path):
    path = tmp_path / "s.sqlite"
    task = registry().task("adding")
    with Store(path) as writer:
        writer.record(None, "t", a_trial(0), task, a_result())
        with Store(path, read_only=True) as reader:
            assert reader.count() == 1
            writer.record(None, "t", a_trial(1), task, a_result())
            assert reader.count() == 2


def test_a_reader_refuses_writes_and_leaves_a_live_writers_files_alone(tmp_path):
    """A read-only Store on a writable store nobody has open reads through a normal connection that refuses
    every write; with a writer open it reads beside it, and closing it removes nothing the writer uses."""
    path, task = tmp_path / "s.sqlite", registry().task("adding")
    with Store(path) as writer:
        writer.record(None, "t", a_trial(0), task, a_result())
    with Store(path, read_only=True) as reader:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.conn.execute("DELETE FROM trials")
        assert reader.count() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]
    with Store(path) as writer:
        with Store(path, read_only=True) as reader:
            assert reader.count() == 1
        assert (tmp_path / "s.sqlite-wal").exists() and (tmp_path / "s.sqlite-shm").exists()
        writer.record(None, "t", a_trial(1), task, a_result())
        with Store(path, read_only=True) as reader:
            assert reader.count() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]


def test_read_only_refuses_missing_empty_and_foreign_files(tmp_path):
    with pytest.raises(UsageError, match="no results store"):
        Store(tmp_path / "missing.sqlite", read_only=True)
    assert not (tmp_path / "missing.sqlite").exists()
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    (tmp_path / "empty.sqlite").write_bytes(b"")
    with pytest.raises(UsageError, match="empty.sqlite is an empty database"):
        Store(tmp_path / "empty.sqlite", read_only=True)
    with pytest.raises(UsageError, match="is a folder"):
        Store(tmp_path, read_only=True)


def test_damaged_store_is_a_store_error_naming_it(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        for seed in range(20):
            store.record(None, "t", a_trial(seed), registry().task("adding"), a_result())
    corrupt(path)
    with pytest.raises(StoreError, match=f"{path} is damaged") as err:
        with Store(path, read_only=True) as store:
            store.trials_frame()
    assert err.value.exit_code == 2


def test_full_disk_while_recording_is_a_store_error_and_keeps_what_was_stored(tmp_path):
    path = tmp_path / "s.sqlite"
    task = registry().task("adding")
    big = a_result()
    big.curve = [(step, "validation", 0.1, 0.1) for step in range(2000)]
    with pytest.raises(StoreError, match=f"disk holding the results store {path} is full"):
        with Store(path) as store:
            store.record(None, "t", a_trial(0), task, big)
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
            store.record(None, "t", a_trial(1), task, big)
    with Store(path, read_only=True) as store:
        assert store.count() == 1


def test_the_heartbeat_keeps_a_drivers_claims_alive_and_lets_them_lapse_when_stopped(tmp_path):
    from harness.run.recorder import ClaimHeartbeat

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        assert store.claim("t1", "run-a", None, lease=0.6)
        beat = ClaimHeartbeat(path, "run-a", lease=0.6)
        try:
            time.sleep(1.5)  # over twice the lease: only renewals keep it
            (expires,), = store.conn.execute("SELECT expires_at FROM claims").fetchall()
            assert expires > time.time()
        finally:
            beat.stop()
        time.sleep(0.8)
        (expires,), = store.conn.execute("SELECT expires_at FROM claims").fetchall()
        assert expires < time.time()  # stopped: the lease ran out (another host would take the trial now)


# --- what a report needs: the suite as run, variant and task metadata (schema version 3) ------------------
def some_metadata(name="Vanilla LSTM", threshold=0.04, rank=0):
    from harness.store.metadata import Metadata, TaskMeta, VariantMeta

    return Metadata(
        {"v": VariantMeta("v", name, "Greff et al. 2015", "lstm", rank, ("lstm", "peephole"))},
        {("adding", 10): TaskMeta("adding", 10, "Adding problem", "mse", False, 1 / 6, threshold, "Hochreiter 1997")},
    )


def test_a_run_records_its_suite_text_and_metadata_and_the_newest_run_wins(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.start_run("mine", ["rnn-bench"], {}, 'name = "mine"\n', some_metadata())
        assert store.suite_text("mine") == 'name = "mine"\n'
        assert store.suite_text("other") is None
        meta = store.metadata()
        assert meta.variants["v"].name == "Vanilla LSTM" and meta.variants["v"].aliases == ("lstm", "peephole")
        assert meta.tasks[("adding", 10)].threshold == 0.04 and meta.tasks[("adding", 10)].baseline == 1 / 6
        time.sleep(0.01)  # a later start
        store.start_run("mine", ["rnn-bench"], {}, 'name = "mine"\n# edited\n', some_metadata("LSTM", 0.01, 3))
        meta = store.metadata()
        assert store.suite_text("mine").endswith("# edited\n")
        assert (meta.variants["v"].name, meta.variants["v"].catalogue_rank) == ("LSTM", 3)
        assert meta.tasks[("adding", 10)].threshold == 0.01
        assert store.conn.execute("SELECT COUNT(*) FROM variants").fetchone()[0] == 1  # upserted, not added


def v2_store(path) -> None:
    """A store as schema version 2 wrote it (no suite_text, no variants, tasks or progress tables), with one
    trial of np on adding T=10 and a plan of gru there."""
    import re

    schema = store_module.SCHEMA.replace(", suite_text TEXT", "").replace(", generalisation REAL", "")
    schema = re.sub(r"CREATE TABLE IF NOT EXISTS (variants|tasks|progress|test_lengths) \(.*?\);\n", "", schema,
                    flags=re.S)
    schema = schema.replace("CREATE INDEX IF NOT EXISTS progress_by_run ON progress (run_id);\n", "")
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "runs", "plans", "trials", "curves", "claims", "superseded"}
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute("INSERT INTO trials (trial_id, task, length, variant, framework, device, seed, hparams, status, "
                 "finished_at) VALUES ('old', 'adding', 10, 'np', 'torch', 'cpu', 0, '{}', 'ok', 1.0)")  # fmt: skip
    conn.execute("INSERT INTO plans VALUES ('s', 'p1', ?, 1.0)", (a_trial(variant="gru").to_json(),))
    conn.commit()
    conn.close()


def test_a_version_2_store_opened_for_writing_gets_the_metadata_of_what_it_holds(tmp_path):
    from harness.plugins.catalogue import catalogue_rank

    path = tmp_path / "v2.sqlite"
    v2_store(path)
    with Store(path) as store:
        assert store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == VERSION
        meta = store.metadata()
        assert set(meta.variants) == {"np", "gru"}  # stored and planned
        np_cls = registry().variants["np"]
        assert meta.variants["np"].name == np_cls.name and meta.variants["np"].catalogue_rank == catalogue_rank("np")
        task = registry().task("adding")
        assert set(meta.tasks) == {("adding", 10)}
        assert meta.tasks[("adding", 10)].threshold == task.solved_threshold
        assert meta.tasks[("adding", 10)].baseline == pytest.approx(task.baseline(10)["mse"])
        assert "suite_text" in {r[1] for r in store.conn.execute("PRAGMA table_info(runs)")}
        assert store.running().empty


def test_a_version_2_store_opened_read_only_stays_as_it_is_and_has_no_metadata(tmp_path):
    path = tmp_path / "v2.sqlite"
    v2_store(path)
    with Store(path, read_only=True) as store:
        meta = store.metadata()
        assert not meta.variants and not meta.tasks
        assert store.suite_text("s") is None and store.running().empty
        assert store.progress_frame(["old"]).empty
    assert "variants" not in {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}


# --- progress: the curves of trials being trained ---------------------------------------------------------
def test_recording_a_result_deletes_the_trials_progress_rows(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("t", [], {})
        assert store.claim(a_trial(0).id, run, None) and store.claim(a_trial(1).id, run, None)
        for step in (0, 5):
            store.record_progress(run, a_trial(0), step, "validation", 0.2, 0.2)
            store.record_progress(run, a_trial(1), step, "validation", 0.3, 0.3)
        store.record_progress(run, a_trial(0), 5, "train", 0.25, float("nan"))
        assert len(store.progress_frame([a_trial(0).id])) == 3
        store.record(run, "t", a_trial(0), registry().task("adding"), a_result())
        assert store.progress_frame([a_trial(0).id]).empty  # its final curve is in curves now
        assert len(store.progress_frame([a_trial(1).id])) == 2  # another trial's rows stay
        assert list(store.running()["trial_id"]) == [a_trial(1).id]


def test_running_shows_each_live_claim_with_its_latest_point(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("t", [], {})
        store.add_plan("t", [a_trial(0), a_trial(1)])
        for seed in (0, 1):
            assert store.claim(a_trial(seed).id, run, None)
        store.record_progress(run, a_trial(0), 0, "validation", 0.2, 0.21)
        store.record_progress(run, a_trial(0), 10, "validation", 0.1, 0.11)
        store.record_progress(run, a_trial(0), 15, "train", 0.09, float("nan"))
        running = store.running().set_index("trial_id")
        first, second = running.loc[a_trial(0).id], running.loc[a_trial(1).id]
        assert (first["suite"], first["task"], first["length"], first["variant"]) == ("t", "adding", 10, "np")
        assert (first["step"], first["metric"]) == (15, 0.11)  # the latest step; the latest validation metric
        assert first["at"] == pytest.approx(time.time(), abs=10)
        assert second["task"] == "adding" and math.isnan(second["step"]) and math.isnan(second["at"])  # no point yet
        curve = store.progress_frame([a_trial(0).id])
        assert list(curve.columns) == ["trial_id", "split", "step", "loss", "metric"]
        assert curve["metric"].isna().sum() == 1  # the train point's NaN metric: NULL
    with pytest.raises(ValueError, match="'test'"):
        Store(tmp_path / "s.sqlite").record_progress(run, a_trial(0), 20, "test", 0.1, 0.1)


def test_a_runs_leftover_progress_goes_when_it_finishes(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        run, other = store.start_run("t", [], {}), store.start_run("t", [], {})
        store.record_progress(run, a_trial(0), 5, "validation", 0.2, 0.2)
        store.record_progress(other, a_trial(1), 5, "validation", 0.2, 0.2)
        store.finish_run(run)
        assert store.progress_frame([a_trial(0).id]).empty
        assert len(store.progress_frame([a_trial(1).id])) == 1


def test_a_dead_drivers_progress_never_shows_as_running_and_the_next_run_clears_it(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        dead = store.start_run("t", [], {})
        store.record_progress(dead, a_trial(0), 5, "validation", 0.2, 0.2)
        store.record_progress(dead, a_trial(1), 5, "validation", 0.2, 0.2)
        now = time.time()
        store.conn.execute("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                           (a_trial(0).id, dead, store_module.HOST, dead_pid(), now, now + 3600))  # fmt: skip
        store.conn.commit()  # the driver was SIGKILLed holding trial 0 (trial 1's claim is long gone)
        live = store.start_run("t", [], {})
        assert store.claim(a_trial(2).id, live, None)
        store.record_progress(live, a_trial(2), 5, "validation", 0.2, 0.2)
        assert list(store.running()["trial_id"]) == [a_trial(2).id]  # a dead claim is not running
        store.start_run("t", [], {})  # the next run on this store
        left = store.conn.execute("SELECT DISTINCT trial_id FROM progress").fetchall()
        assert left == [(a_trial(2).id,)]  # the live driver's rows stay


def test_the_recorder_writes_progress_points_through_the_store(tmp_path):
    from harness.run.recorder import Recorder, RunSummary
    from harness.run.runner import Work

    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("t", [], {})
        recorder = Recorder(store, run, "t", Work([], {}, {}, None), RunSummary(0, 0, 0), None, sys.stdout)
        recorder.on_progress(a_trial(), 10, "validation", 0.5, 0.25)
        recorder.on_progress(a_trial(), 10, "train", 0.6, float("nan"))
        rows = store.conn.execute("SELECT run_id, suite, split, step, loss, metric FROM progress ORDER BY split")
        assert rows.fetchall() == [(run, "t", "train", 10, 0.6, None), (run, "t", "validation", 10, 0.5, 0.25)]
        recorder.close_run({})
        assert store.conn.execute("SELECT COUNT(*) FROM progress").fetchone()[0] == 0


def _open_new_store(path: str, results) -> None:
    from harness.store.database import Store

    try:
        Store(path).close()
        results.put("ok")
    except Exception as e:  # noqa: BLE001 (the test reports what a driver would have printed)
        results.put(str(e))


def test_drivers_creating_one_store_at_once_all_open_it(tmp_path):
    """Switching a new store to write-ahead logging needs the database to itself, and SQLite said
    "database is locked" at once, without its busy timeout, to a driver that came while another created
    the store (seen once in CI; 7 of 180 opens failed in 60 rounds of three before the fix)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for i in range(30):
        results = context.Queue()
        path = str(tmp_path / f"s{i}.sqlite")
        drivers = [context.Process(target=_open_new_store, args=(path, results)) for _ in range(3)]
        for d in drivers:
            d.start()
        for d in drivers:
            d.join()
        assert [results.get() for _ in drivers] == ["ok"] * 3
