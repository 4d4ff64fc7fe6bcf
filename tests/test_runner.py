"""``rnn-bench run`` end to end: resume, kills, dying workers, divergence, time limits, broken plugins.

Every run here is real (worker processes, PyTorch) but tiny: the smoke suite narrowed to PyTorch, or a
suite file written to tmp_path over the adding task at T=2 with the misbehaving plugin variants of
tests/plugins/runner/.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from harness.suites.suite import SUITES_DIR, load_suite, plan

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")

PLUGINS = Path(__file__).resolve().parent / "plugins"
RUN_FLAGS = ("--no-progress", "--workers", "2")
ONE_WORKER = ("--no-progress", "--workers", "1")
SOLO = ("--population", "1")  # one trial per job: a kill then falls between trials, as these tests need


def write_suite(path: Path, variants: list[str], trials: int = 1, frameworks: tuple = ("torch",)) -> Path:
    """A tiny suite file: adding at T=2, a few training steps, ``trials`` random-search configurations."""
    path.write_text(f"""
name = "{path.stem}"
tasks = ["adding"]
variants = {json.dumps(variants)}
frameworks = {json.dumps(list(frameworks))}
trials = {trials}
time_limit = 120

[lengths]
adding = [2]

[training]
max_steps = 10
eval_every = 5
batch_size = 8
hidden_size = 4
validation_size = 32
test_size = 32

[search]
learning_rate = {{ log_uniform = [1e-3, 1e-2] }}
""")
    return path


def plugin_env(bench, **extra: str) -> dict[str, str]:
    return bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "runner"), **extra)


def query(store: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stored_count(store: Path) -> int:
    try:
        return query(store, "SELECT COUNT(*) FROM trials")[0][0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def wait_for_first_trial(proc: subprocess.Popen, store: Path, timeout: float = 120) -> None:
    """Wait until ``proc`` (a run) has stored a trial; fail if it ends or takes ``timeout`` s first."""
    deadline = time.monotonic() + timeout
    while stored_count(store) < 1:
        assert proc.poll() is None, "the run ended before its first trial was stored"
        assert time.monotonic() < deadline, f"no trial was stored in {timeout:.0f} s"
        time.sleep(0.05)


def hold_after_first_trial(proc: subprocess.Popen, store: Path, hold: Path, timeout: float = 120) -> None:
    """Wait until ``proc`` (a run of the sleepy plugin) has stored a trial, then create ``hold``: its worker
    then waits inside its next trial, as if that were a long one."""
    wait_for_first_trial(proc, store, timeout)
    hold.touch()


def assert_exactly(store: Path, planned_ids: set[str]) -> None:
    """The store holds each planned trial, and nothing else. (trial_id is the store's primary key, so
    no id can be stored twice: counting distinct ids against rows would test SQLite, not the runner.)"""
    assert {r[0] for r in query(store, "SELECT trial_id FROM trials")} == planned_ids


def rows_by_variant(store: Path) -> dict[str, dict]:
    conn = sqlite3.connect(store)
    conn.row_factory = sqlite3.Row
    try:
        return {r["variant"]: dict(r) for r in conn.execute("SELECT * FROM trials")}
    finally:
        conn.close()


# --- runs started together ---------------------------------------------------------------------------
# Most tests below read one finished run. Those runs are independent, and most of their time is worker
# start-up (importing a framework), so they are all started at once, when the module's first test
# starts, each in its own folder; a test waits only for the run it reads.
def _smoke(folder: Path) -> tuple[tuple, dict | None]:
    return ("run", "smoke", "--frameworks", "torch", *ONE_WORKER), None


# The dying ones last: fewer replacement workers to start (the pool runs trials in plan order).
MIXED = ["sleepy", "rnn", "np", "goes_nan", "exits", "killed"]
MIXED_TIME_LIMIT = 30


def _mixed(folder: Path) -> tuple[tuple, dict | None]:
    """A trial waits in its step past ``--time-limit`` (held by a file that stays), a loss becomes NaN,
    a worker exits, a worker is SIGKILLed; rnn and np are fine. tests/plugins/broken/ is on the plugin
    path too: a broken file must not stop the others. The limit is far above what the good trials
    need (about a second), since the module's runs share two cores."""
    suite = write_suite(folder / "suite.toml", MIXED)
    hold = folder / "hold"
    hold.touch()
    env = {"RNN_BENCH_PLUGINS": os.pathsep.join([str(PLUGINS / "runner"), str(PLUGINS / "broken")]),
           "RNN_BENCH_TEST_HOLD": str(hold)}  # fmt: skip
    return ("run", suite, *RUN_FLAGS, "--time-limit", str(MIXED_TIME_LIMIT)), env


def _both_frameworks(folder: Path) -> tuple[tuple, dict | None]:
    """One worker, a probe trial in each framework: the worker of one must be replaced, not reused."""
    suite = write_suite(folder / "suite.toml", ["probe"], frameworks=("torch", "tf"))
    env = {"RNN_BENCH_PLUGINS": str(PLUGINS / "runner"), "RNN_BENCH_TEST_PROBE": str(folder / "probe.txt")}
    return ("run", suite, *ONE_WORKER), env


def _tf_smoke(folder: Path) -> tuple[tuple, dict | None]:
    return ("run", "smoke", "--frameworks", "tf", "--tasks", "adding", *ONE_WORKER), None


BACKGROUND = {"smoke_run": _smoke, "mixed_run": _mixed, "both_run": _both_frameworks, "tf_run": _tf_smoke}


@dataclass
class Run:
    folder: Path
    proc: subprocess.Popen
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def store(self) -> Path:
        return self.folder / "store.sqlite"

    @property
    def suite(self) -> Path:
        return self.folder / "suite.toml"

    def wait(self) -> Run:
        if self.returncode is None:
            self.returncode = self.proc.wait(timeout=300)
            self.stdout, self.stderr = ((self.folder / n).read_text() for n in ("stdout", "stderr"))
        return self


@pytest.fixture(scope="module", autouse=True)
def background(bench, tmp_path_factory, request):
    """Start the runs that this session's selected tests of this module read."""
    wanted = {f for item in request.session.items if item.module is request.module for f in item.fixturenames}
    runs = {}
    for name, make in BACKGROUND.items():
        if name in wanted and not (name == "tf_run" and not _tf_backend_available()):
            folder = tmp_path_factory.mktemp(name)
            args, extra = make(folder)
            with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
                proc = subprocess.Popen(bench.argv(*args, "--store", folder / "store.sqlite"), cwd=folder,
                                        env=bench.env(**(extra or {})), stdout=out, stderr=err)  # fmt: skip
            runs[name] = Run(folder, proc)
    yield runs
    for run in runs.values():
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


@pytest.fixture(scope="module")
def smoke_run(background) -> Run:
    return background["smoke_run"].wait()


@pytest.fixture(scope="module")
def mixed_run(background) -> Run:
    return background["mixed_run"].wait()


@pytest.fixture(scope="module")
def both_run(background) -> Run:
    return background["both_run"].wait()


@pytest.fixture(scope="module")
def tf_run(background) -> Run:
    return background["tf_run"].wait()


def _tf_backend_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None and (
        Path(__file__).resolve().parent.parent / "harness" / "backends" / "tf_backend.py"
    ).exists()


# --- a run killed mid-way ------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_run_resumes_without_duplicates_and_orphans_exit(bench, tmp_path, use_plugins):
    suite = write_suite(tmp_path / "killed.toml", ["sleepy"], trials=6)
    store, hold = tmp_path / "killed.sqlite", tmp_path / "hold"
    proc = subprocess.Popen(
        bench.argv("run", suite, *ONE_WORKER, *SOLO, "--store", store), cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.05", RNN_BENCH_TEST_HOLD=hold),
    )  # fmt: skip
    try:
        hold_after_first_trial(proc, store, hold)
        time.sleep(0.3)
        workers = _children(proc.pid)
        assert workers, "the runner has no worker processes"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    kept = stored_count(store)
    assert 1 <= kept < 6

    deadline = time.monotonic() + 5
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [p for p in workers if _alive(p)]
    for p in orphans:  # do not leave them behind, but fail
        os.kill(p, signal.SIGKILL)
    assert not orphans, "workers busy with a trial outlived their killed runner by 5 s"

    rerun = bench.run("run", suite, *ONE_WORKER, "--store", store, env=plugin_env(bench))
    assert rerun.returncode == 0, rerun.stderr
    use_plugins("runner")
    assert_exactly(store, {t.id for t in plan(load_suite(str(suite)))})
    runs = [r[0] for r in query(store, "SELECT run_id FROM runs ORDER BY started_at")]
    assert len(runs) == 2
    by_run = dict(query(store, "SELECT run_id, COUNT(*) FROM trials GROUP BY run_id"))
    assert by_run == {runs[0]: kept, runs[1]: 6 - kept}  # the rerun did only what was left


# --- resume -------------------------------------------------------------------------------------------
def test_second_run_of_the_same_suite_does_nothing(smoke_run, bench, cli):
    assert smoke_run.returncode == 0, smoke_run.stderr
    store = smoke_run.store

    def exported() -> pd.DataFrame:
        code, out, err = cli("export", "-o", "-", "--store", store)
        assert code == 0, err
        return pd.read_csv(io.StringIO(out))

    before = exported()
    planned = {t.id for t in plan(load_suite("smoke").narrowed(frameworks=["torch"]))}
    assert set(before["trial_id"]) == planned
    assert len(before) == len(planned)
    assert set(before["status"]) == {"ok"}, before[["variant", "task", "status", "error"]]

    second = bench.run("run", "smoke", "--frameworks", "torch", *RUN_FLAGS, "--store", store)
    assert second.returncode == 0, second.stderr
    assert "Nothing to do" in second.stdout
    assert len(exported()) == len(before)
    assert query(store, "SELECT COUNT(*) FROM runs")[0][0] == 1  # the second run did not even start one
    assert_exactly(store, planned)


def test_a_run_of_an_edited_suite_file_replaces_its_plan(smoke_run, bench, tmp_path):
    """A whole-file run states the suite's plan: the trials the file no longer plans stop counting as
    remaining (``status``) though their results stay; a narrowed run only adds to the plan."""
    assert smoke_run.returncode == 0, smoke_run.stderr
    store = tmp_path / "copy.sqlite"
    with sqlite3.connect(smoke_run.store) as source, sqlite3.connect(store) as copy:
        source.backup(copy)  # the module's store stays as the other tests expect it
    text = (SUITES_DIR / "smoke.toml").read_text()
    edited = tmp_path / "smoke.toml"  # name = "smoke", torch only, one task: trials the store holds
    edited.write_text(text.replace('frameworks = ["torch", "tf"]', 'frameworks = ["torch"]')
                      .replace('tasks = ["adding", "copy", "delayed_recall"]', 'tasks = ["adding"]')
                      .replace("copy = [2]\n", "").replace("delayed_recall = [3]\n", ""))  # fmt: skip
    narrowed = bench.run("run", str(edited), "--variants", "lstm", *RUN_FLAGS, "--store", store)
    assert narrowed.returncode == 0 and "Nothing to do" in narrowed.stdout, narrowed.stderr
    before = query(store, "SELECT COUNT(*) FROM plans")[0][0]
    whole = bench.run("run", str(edited), *RUN_FLAGS, "--store", store)
    assert whole.returncode == 0 and "Nothing to do" in whole.stdout, whole.stderr
    wanted = {t.id for t in plan(load_suite(str(edited)))}
    assert {r[0] for r in query(store, "SELECT trial_id FROM plans")} == wanted and before > len(wanted)
    assert query(store, "SELECT COUNT(*) FROM trials")[0][0] > len(wanted)  # results are never dropped


# --- trials that go wrong -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed(mixed_run) -> dict[str, dict]:
    """The mixed run's rows by variant."""
    return rows_by_variant(mixed_run.store)


def test_dying_workers_cost_only_their_trial(mixed_run, mixed):
    assert mixed_run.returncode == 0, mixed_run.stderr
    assert sorted(mixed) == sorted(MIXED)
    assert mixed["rnn"]["status"] == mixed["np"]["status"] == "ok"


def test_worker_exit_is_recorded_failed_with_its_exit_code(mixed):
    assert mixed["exits"]["status"] == "failed"
    assert "exited with code 7" in mixed["exits"]["error"]


def test_worker_killed_by_a_signal_is_recorded_failed_with_the_signal(mixed):
    assert mixed["killed"]["status"] == "failed"
    assert "SIGKILL" in mixed["killed"]["error"]


def test_nan_loss_is_recorded_diverged(mixed):
    row = mixed["goes_nan"]
    assert row["status"] == "diverged"
    assert "nan" in row["error"].lower()
    assert 1 <= row["steps"] < 10  # it stopped at the NaN, not at the budget


def test_trial_over_its_time_limit_is_recorded_timeout(mixed):
    assert mixed["sleepy"]["status"] == "timeout"
    assert "time limit" in mixed["sleepy"]["error"]


def test_retry_failed_reruns_failed_and_timeout_trials_in_place(mixed_run, mixed, bench, tmp_path,
                                                                 use_plugins):  # fmt: skip
    store = tmp_path / "retry.sqlite"
    shutil.copy(mixed_run.store, store)  # the runner closed it: no WAL left to copy
    env = plugin_env(bench, RNN_BENCH_TEST_HEAL="1")

    plain = bench.run("run", mixed_run.suite, *RUN_FLAGS, "--store", store, env=env)
    assert plain.returncode == 0, plain.stderr
    assert "Nothing to do" in plain.stdout  # failures are results: not rerun unless asked

    retry = bench.run("run", mixed_run.suite, *ONE_WORKER, "--retry-failed", "--store", store, env=env)
    assert retry.returncode == 0, retry.stderr
    use_plugins("runner")
    assert_exactly(store, {t.id for t in plan(load_suite(str(mixed_run.suite)))})
    after = rows_by_variant(store)
    for v in ("exits", "killed", "sleepy"):
        assert after[v]["status"] == "ok", after[v]["error"]
        assert after[v]["run_id"] != mixed[v]["run_id"]
    for v in ("rnn", "np", "goes_nan"):  # ok and diverged are results to keep
        assert after[v]["run_id"] == mixed[v]["run_id"]
        assert after[v]["status"] == mixed[v]["status"]
    curve = query(store, f"SELECT COUNT(*) FROM curves WHERE trial_id = '{after['exits']['trial_id']}'")
    assert curve[0][0] > 0  # the replacement brought its learning curve


def _default_sigint() -> None:
    """A terminal's run takes Ctrl-C; a test run started in the background (`make test &`) inherits SIGINT
    ignored, and Python then never turns it into KeyboardInterrupt: give the child the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
@pytest.mark.parametrize("stop, code, said", [(signal.SIGINT, 130, "Interrupted"),
                                              (signal.SIGTERM, 143, "Terminated (SIGTERM)")])  # fmt: skip
def test_ctrl_c_stops_cleanly_keeping_finished_trials(bench, tmp_path, use_plugins, stop, code, said):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it (or SIGTERM, as a batch system
    ending a job sends it): the runner says what it kept and exits 130 (143), no worker prints a
    traceback, and the same command then does only the rest."""
    suite = write_suite(tmp_path / "ctrl_c.toml", ["sleepy"], trials=6)
    store, hold = tmp_path / "ctrl_c.sqlite", tmp_path / "hold"
    proc = subprocess.Popen(
        bench.argv("run", suite, *ONE_WORKER, *SOLO, "--store", store), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=_default_sigint,
        env=plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.05", RNN_BENCH_TEST_HOLD=hold),
    )  # fmt: skip
    try:
        hold_after_first_trial(proc, store, hold)
        time.sleep(0.3)
        os.killpg(proc.pid, stop)
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:  # stuck: its threads' stacks (rnn-bench prints them on SIGUSR1)
            proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"the run did not stop within 90 s of Ctrl-C; its stacks:\n{err}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, err
    kept = stored_count(store)
    assert 1 <= kept < 6
    assert f"{said}: the {kept} finished trial(s) are kept" in out
    assert "Traceback" not in err
    hold.unlink()
    rerun = bench.run("run", suite, *ONE_WORKER, "--store", store, env=plugin_env(bench))
    assert rerun.returncode == 0, rerun.stderr
    assert f"{kept} already in" in rerun.stdout
    use_plugins("runner")
    assert_exactly(store, {t.id for t in plan(load_suite(str(suite)))})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups")
def test_ctrl_c_during_the_preflight_prints_no_traceback(bench, tmp_path):
    """Ctrl-C in a run's first second, while the preflight's worker imports the framework (outside the
    loop of jobs that summarises an interruption): one clean line and exit 130, no KeyboardInterrupt
    traceback from the driver. (A starting worker's side: tests/test_workers.py.)"""
    store = tmp_path / "early.sqlite"
    proc = subprocess.Popen(
        bench.argv("run", "smoke", "--frameworks", "torch", "--variants", "rnn", "--no-progress", "--store", store),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=_default_sigint, env=bench.env(),
    )  # fmt: skip
    try:
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err, err
    assert "rnn-bench run: interrupted; every trial that finished is kept in the store" in err


# --- plugin files -------------------------------------------------------------------------------------
def test_broken_plugin_file_is_named_and_the_rest_still_runs(mixed_run, mixed, cli, tmp_path, use_plugins):
    use_plugins("broken")
    code, out, err = cli("list", "variants")
    assert code == 0
    assert "broken.py" in err
    assert {"rnn", "np"} <= {line.split()[0] for line in out.splitlines() if line.strip()}

    store = tmp_path / "s.sqlite"
    code, out, err = cli("run", "smoke", "--variants", "broken", "--frameworks", "torch", "--store", store)
    assert code == 2
    assert "broken.py" in err
    assert not store.exists()

    assert mixed_run.returncode == 0, mixed_run.stderr  # it ran with broken/ on the plugin path
    assert mixed["rnn"]["status"] == mixed["np"]["status"] == "ok"


def test_two_plugin_files_claiming_one_id_is_an_error_naming_both(cli, tmp_path, use_plugins):
    use_plugins("twins")
    for argv in (["list", "variants"], ["run", "smoke", "--dry-run", "--store", tmp_path / "s.sqlite"]):
        code, out, err = cli(*argv)
        assert code == 2
        assert "twin_one.py" in err and "twin_two.py" in err
        assert "'twin'" in err


# --- frameworks ---------------------------------------------------------------------------------------
def test_torch_and_tf_never_share_a_worker(both_run):
    assert both_run.returncode == 0, both_run.stderr
    loaded: dict[str, set[str]] = {}  # pid -> frameworks imported at some step
    backends: dict[str, set[str]] = {}  # pid -> backends it ran trials with
    for line in (both_run.folder / "probe.txt").read_text().splitlines():
        pid, backend, torch_loaded, tf_loaded, _ = line.split()
        backends.setdefault(pid, set()).add(backend)
        loaded.setdefault(pid, set()).update({"torch"} if torch_loaded == "True" else set())
        loaded.setdefault(pid, set()).update({"tf"} if tf_loaded == "True" else set())
    assert {"torch"} in backends.values(), backends
    assert all(len(b) == 1 for b in backends.values()), backends
    assert all(loaded[pid] == {"tf" if b == {"tf"} else "torch"} for pid, b in backends.items()), loaded
    statuses = dict(query(both_run.store, "SELECT framework, status FROM trials"))
    assert statuses["torch"] == "ok"
    if _tf_backend_available():
        assert statuses["tf"] == "ok"
        assert {"tf"} in backends.values(), backends


@pytest.mark.skipif(not _tf_backend_available(), reason="needs TensorFlow and harness/backends/tf_backend.py")
def test_smoke_runs_in_tensorflow(tf_run):
    assert tf_run.returncode == 0, tf_run.stderr
    rows = query(tf_run.store, "SELECT framework, status, error FROM trials")
    assert len(rows) == len(plan(load_suite("smoke").narrowed(frameworks=["tf"], tasks=["adding"])))
    assert all(r[:2] == ("tf", "ok") for r in rows), rows


# --- last, as it may spin until its timeout ---------------------------------------------------------------
def _pool_whose_workers(tmp_path, monkeypatch, behaviour: str):
    """A LocalPool whose every spawned process runs ``behaviour`` as it starts (as a framework import that
    segfaults or hangs would), and the smoke trials it is given, as jobs of one."""
    from harness.execution.local import LocalPool

    (tmp_path / "sitecustomize.py").write_text(
        f"import os, sys, time\nif '--multiprocessing-fork' in sys.argv:\n    {behaviour}\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    trials = plan(load_suite("smoke").narrowed(frameworks=["torch"], tasks=["adding"], variants=["np"]))
    return LocalPool(workers=1, time_limit=30), [[t] for t in trials]


def test_workers_that_die_before_ready_stop_the_run_instead_of_restarting_for_ever(tmp_path, monkeypatch):
    """Driven at the executor, since every spawned process dies (``run``'s preflight child too)."""
    from harness.execution.local import MAX_START_FAILURES, FrameworkUnavailable

    pool, trials = _pool_whose_workers(tmp_path, monkeypatch, "os._exit(9)")
    results = []
    started = time.monotonic()
    with pytest.raises(FrameworkUnavailable, match=rf"{MAX_START_FAILURES} torch workers in a row died.*code 9"):
        pool.run(trials, lambda trial, result: results.append(result))
    assert time.monotonic() - started < 60, "the pool kept restarting workers"
    assert results == []  # never tried: nothing recorded, a later run still does them
    assert pool.slots == []


def test_a_worker_that_never_becomes_ready_is_given_up(tmp_path, monkeypatch):
    import harness.execution.local as local_pool

    monkeypatch.setattr(local_pool, "START_TIMEOUT", 3.0)
    monkeypatch.setattr(local_pool, "MAX_START_FAILURES", 1)
    pool, trials = _pool_whose_workers(tmp_path, monkeypatch, "time.sleep(600)")
    with pytest.raises(local_pool.FrameworkUnavailable, match="not ready after 3 s"):
        pool.run(trials, lambda trial, result: None)
    assert pool.slots == []
