"""``--executor dask``: a real ``dask.distributed.LocalCluster`` of process workers (never a mock).

What it must guarantee (harness/execution/dask_cluster.py): the same trials and, on CPU, the same numbers as the
local executor; a lost Dask worker costs its job one attempt, then the trial is recorded failed and the
run goes on; a driver killed at any moment leaves a store that the same command completes, every trial
exactly once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_runner import (
    assert_exactly,
    plugin_env,
    query,
    rows_by_variant,
    stored_count,
    wait_for_first_trial,
    write_suite,
)

from benchmarks.dask_processes import SeparateCluster
from harness.suites.suite import load_suite, plan

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="Dask is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch"),
]
QUIET = ("--no-progress",)


def _metrics(store: Path) -> dict[str, tuple]:
    sql = "SELECT trial_id, status, test_metric, val_metric, steps, best_step FROM trials"
    return {r[0]: r[1:] for r in query(store, sql)}


def test_a_local_dask_cluster_stores_what_the_local_executor_stores(bench, tmp_path):
    """Both frameworks, so the Dask workers' framework processes are tested too (TF where installed)."""
    frameworks = "torch,tf" if importlib.util.find_spec("tensorflow") else "torch"
    args = ("run", "smoke", "--tasks", "adding", "--frameworks", frameworks, "--workers", "2", *QUIET)
    local = bench.run(*args, "--store", tmp_path / "local.sqlite", timeout=300)
    dask = bench.run(*args, "--executor", "dask", "--store", tmp_path / "dask.sqlite", timeout=300)
    assert local.returncode == 0, local.stderr
    assert dask.returncode == 0, dask.stderr
    assert "a local Dask cluster of 2 worker(s)" in dask.stdout
    a, b = _metrics(tmp_path / "local.sqlite"), _metrics(tmp_path / "dask.sqlite")
    planned = {t.id for t in plan(load_suite("smoke").narrowed(tasks=["adding"], frameworks=frameworks.split(",")))}
    assert set(a) == set(b) == planned
    assert a == b  # CPU, one thread, the same seeds: the same numbers to the last bit
    environment = json.loads(query(tmp_path / "dask.sqlite", "SELECT environment FROM runs")[0][0])
    assert "torch" in environment["workers"]["torch"]  # the run records its workers' versions, as locally


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_one_dask_worker_serves_both_frameworks_without_one_process_importing_both(bench, tmp_path):
    suite = write_suite(tmp_path / "both.toml", ["probe"], frameworks=("torch", "tf"))
    probe = tmp_path / "probe.txt"
    result = bench.run("run", suite, "--executor", "dask", "--workers", "1", *QUIET, "--store", tmp_path / "s.sqlite",
                       env=plugin_env(bench, RNN_BENCH_TEST_PROBE=probe), timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = {}
    for line in probe.read_text().splitlines():
        pid, backend, torch_loaded, tf_loaded, _ = line.split()
        assert not (torch_loaded == "True" and tf_loaded == "True"), f"process {pid} imported both frameworks"
        seen[backend] = pid
    assert set(seen) == {"torch", "tf"} and seen["torch"] != seen["tf"]


def _wait_for_lines(path: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return lines
        assert proc.poll() is None, f"the run ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no attempt {count} within {timeout:.0f} s"
        time.sleep(0.1)


def test_a_lost_dask_worker_is_retried_then_its_trial_is_recorded_failed(bench, tmp_path):
    """``sleepy`` waits in its step (the hold file stays); its Dask worker is SIGKILLed twice: the job is
    resubmitted once (--retries 1), then recorded failed with the reason; ``rnn`` is stored ok."""
    suite = write_suite(tmp_path / "lost.toml", ["sleepy", "rnn"])
    store, hold, parents = tmp_path / "lost.sqlite", tmp_path / "hold", tmp_path / "parents"
    hold.touch()
    env = plugin_env(bench, RNN_BENCH_TEST_HOLD=hold, RNN_BENCH_TEST_PARENTS=parents)
    proc = subprocess.Popen(
        bench.argv("run", suite, "--executor", "dask", "--workers", "1", "--retries", "1", "--population", "1",
                   *QUIET, "--store", store), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        for attempt in (1, 2):
            dask_worker = int(_wait_for_lines(parents, attempt, proc)[-1])
            os.kill(dask_worker, signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    rows = rows_by_variant(store)
    assert rows["rnn"]["status"] == "ok"
    assert rows["sleepy"]["status"] == "failed"
    assert "lost 2 time(s) (--retries 1)" in rows["sleepy"]["error"]
    assert "KilledWorker" in rows["sleepy"]["error"]


def test_a_driver_killed_three_times_then_completes_every_trial_exactly_once(bench, tmp_path, use_plugins):
    """SIGKILL the driver at seeded random moments three times; the same command then completes the plan."""
    suite = write_suite(tmp_path / "killed.toml", ["sleepy", "rnn"], trials=3)
    store = tmp_path / "killed.sqlite"
    argv = bench.argv("run", suite, "--executor", "dask", "--workers", "2", "--population", "1", *QUIET,
                      "--store", store)  # fmt: skip
    env = plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.02")
    moments = random.Random(7)
    for _ in range(3):
        proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = stored_count(store)
        deadline = time.monotonic() + 120
        while stored_count(store) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # wait for the cluster to start and a trial to land, then kill at a random moment
        time.sleep(moments.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
    final = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    use_plugins("runner")
    ids = {t.id for t in plan(load_suite(str(suite)))}
    assert_exactly(store, ids)
    assert {r[0] for r in query(store, "SELECT status FROM trials")} == {"ok"}
    assert query(store, "SELECT COUNT(*) FROM superseded")[0][0] == 0  # nothing stored twice and replaced


def test_ctrl_c_keeps_what_finished_closes_the_cluster_and_prints_no_traceback(bench, tmp_path):
    store = tmp_path / "s.sqlite"
    argv = bench.argv("run", "smoke", "--executor", "dask", "--workers", "2", *QUIET, "--store", store)
    proc = subprocess.Popen(argv, cwd=tmp_path, env=bench.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while stored_count(store) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Interrupted: the" in out and "Traceback" not in err and "KeyboardInterrupt" not in err
    assert stored_count(store) >= 1


@pytest.fixture
def running_cluster():
    """A cluster started apart from the driver, as a user's would be: a scheduler and one worker process
    with two threads (``dask worker``'s default is a thread per core), non-daemonic (docs/cluster.md), with
    no resources."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.daemon": False}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


def test_a_run_on_a_running_cluster_stores_every_trial(bench, tmp_path, running_cluster):
    address = running_cluster.scheduler_address
    args = ("run", "smoke", "--tasks", "adding", "--frameworks", "torch", *QUIET, "--store", tmp_path / "s.sqlite")
    result = bench.run(*args, "--executor", "dask", "--scheduler", address, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"the Dask cluster at {address}" in result.stdout
    planned = {t.id for t in plan(load_suite("smoke").narrowed(tasks=["adding"], frameworks=["torch"]))}
    stored = _metrics(tmp_path / "s.sqlite")
    assert set(stored) == planned
    assert {row[0] for row in stored.values()} == {"ok"}  # two jobs at once on one worker never share a process


def test_resources_no_worker_offers_are_refused(bench, tmp_path, running_cluster):
    result = bench.run("run", "smoke", "--executor", "dask", "--scheduler", running_cluster.scheduler_address,
                       "--resources", "GPU=1", *QUIET, "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "--resources GPU=1: no worker of the cluster" in result.stderr and "Traceback" not in result.stderr


def test_dask_flags_are_checked_before_anything_runs(cli, tmp_path):
    code, _, err = cli("run", "smoke", "--scheduler", "tcp://nowhere:8786", "--store", tmp_path / "s.sqlite")
    assert code == 2 and "--scheduler applies to --executor dask" in err
    code, _, err = cli("run", "smoke", "--executor", "dask", "--resources", "GPU", "--store", tmp_path / "s.sqlite")
    assert code == 2 and "'GPU' is not NAME=AMOUNT" in err
    code, _, err = cli("run", "smoke", "--executor", "dask", "--retries", "-1", "--store", tmp_path / "s.sqlite")
    assert code == 2 and "--retries -1 is impossible" in err
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize("address", ["foo", "tcp://localhost", "http://127.0.0.1:8786"])
def test_a_malformed_scheduler_address_is_a_usage_error(cli, tmp_path, address):
    code, _, err = cli("run", "smoke", "--tasks", "adding", "--frameworks", "torch", "--executor", "dask",
                       "--scheduler", address, *QUIET, "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert code == 2 and "is not a scheduler address" in err and "tcp://HOST:PORT" in err, err


def test_no_scheduler_at_the_address_is_a_usage_error(bench, tmp_path):
    result = bench.run("run", "smoke", "--tasks", "adding", "--frameworks", "torch", "--executor", "dask",
                       "--scheduler", "tcp://127.0.0.1:9", *QUIET, "--store", tmp_path / "s.sqlite")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "no Dask scheduler answers there" in result.stderr
    assert "Traceback" not in result.stderr



# --- the scheduler's loss -----------------------------------------------------------------------------------
def _run_on(bench, cluster: SeparateCluster, suite: Path, store: Path, env: dict[str, str],
            grace: float) -> subprocess.Popen:  # fmt: skip
    argv = bench.argv("run", suite, "--executor", "dask", "--scheduler", cluster.address, "--population", "1",
                      "--scheduler-grace", str(grace), *QUIET, "--store", store)  # fmt: skip
    return subprocess.Popen(argv, cwd=suite.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("comes_back", [True, False])
def test_a_killed_scheduler_loses_nothing_and_the_run_goes_on_or_the_same_command_resumes(bench, tmp_path, use_plugins,
                                                                                          comes_back):  # fmt: skip
    """SIGKILL of the scheduler mid-run. Back within --scheduler-grace (a new scheduler and worker on its
    port): the run submits its stranded jobs again and completes (exit 0). Not back: exit 75 with the
    reason, every finished trial kept, no claim left; the same command completes the plan once a
    scheduler is back. Either way every planned trial is stored exactly once, none failed."""
    suite = write_suite(tmp_path / "sched.toml", ["sleepy"], trials=4)
    store = tmp_path / "sched.sqlite"
    env = plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.15")
    cluster = SeparateCluster(env, tmp_path)
    cluster.start()
    try:
        proc = _run_on(bench, cluster, suite, store, env, grace=60 if comes_back else 2)
        try:
            wait_for_first_trial(proc, store)
            cluster.kill_scheduler()
            if comes_back:
                cluster.start()
            out, err = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
        if comes_back:
            assert proc.returncode == 0, err
        else:
            assert proc.returncode == 75, err
            assert f"the Dask scheduler at {cluster.address} was lost" in err and "--scheduler-grace" in err
            assert "Run the same command again once the scheduler is back" in err and "Traceback" not in err
            kept = stored_count(store)
            assert 1 <= kept < 4
            assert query(store, "SELECT COUNT(*) FROM claims")[0][0] == 0
            cluster.start()
            again = _run_on(bench, cluster, suite, store, env, grace=60)
            out, err = again.communicate(timeout=240)
            assert again.returncode == 0, err
            assert f"{kept} already in" in out
    finally:
        cluster.stop()
    use_plugins("runner")
    assert_exactly(store, {t.id for t in plan(load_suite(str(suite)))})
    assert {row[0] for row in query(store, "SELECT status FROM trials")} == {"ok"}


# --- a secured cluster --------------------------------------------------------------------------------------
def _self_signed(folder: Path) -> dict[str, Path]:
    """A certificate authority made for this test and one certificate it signs (for 127.0.0.1), which the
    scheduler, the worker and the driver all present: mutual TLS, as docs/cluster.md sets it up."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=rnn-bench test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "node.key", "-out",
            "node.csr")
    (folder / "san.ext").write_text("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
            "-extfile", "san.ext", "-out", "node.pem")
    return {"ca": folder / "ca.pem", "cert": folder / "node.pem", "key": folder / "node.key"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_smoke_runs_end_to_end_on_a_tls_secured_cluster_and_no_client_without_certificates(bench, tmp_path):
    from distributed import Security

    pem = _self_signed(tmp_path)
    tls = ("--tls-ca-file", str(pem["ca"]), "--tls-cert", str(pem["cert"]), "--tls-key", str(pem["key"]))
    cluster = SeparateCluster(bench.env(), tmp_path, threads=2, protocol="tls", extra=tls)
    cluster.start({"security": Security(tls_ca_file=str(pem["ca"]), tls_client_cert=str(pem["cert"]),
                                        tls_client_key=str(pem["key"]), require_encryption=True)})  # fmt: skip
    try:
        store = tmp_path / "tls.sqlite"
        args = ("run", "smoke", "--tasks", "adding", "--frameworks", "torch", *QUIET, "--executor", "dask",
                "--scheduler", cluster.address)  # fmt: skip
        secured = bench.run(*args, *tls, "--store", store, timeout=300)
        assert secured.returncode == 0, secured.stderr
        assert "warning" not in secured.stderr
        planned = {t.id for t in plan(load_suite("smoke").narrowed(tasks=["adding"], frameworks=["torch"]))}
        assert set(_metrics(store)) == planned
        bare = bench.run(*args, "--store", tmp_path / "bare.sqlite", timeout=120)
        assert bare.returncode == 2 and "needs certificates: give --tls-ca-file and --tls-cert" in bare.stderr
        plain = bench.run(*args[:-1], f"tcp://127.0.0.1:{cluster.port}", "--store", tmp_path / "plain.sqlite",
                          timeout=120)  # fmt: skip
        assert plain.returncode == 2 and "no Dask scheduler answers there" in plain.stderr, plain.stderr
    finally:
        cluster.stop()


def test_a_plain_tcp_scheduler_off_this_machine_gets_a_warning_and_tls_flags_need_tls(cli, tmp_path):
    from harness.execution.cluster_security import exposure_warning

    for address in ("tcp://10.1.2.3:8786", "10.1.2.3:8786", "tcp://scheduler.example.org:8786", "TCP://10.0.0.1:1",
                    "ws://10.1.2.3:8786", "[", "tcp://a..b:8786", "tcp://" + "x" * 80 + ":8786"):  # fmt: skip
        assert "neither encrypted nor authenticated" in exposure_warning(address), address  # never resolved
    for address in ("tcp://127.0.0.1:8786", "tcp://localhost:8786", "tcp://[::1]:8786", "tls://10.1.2.3:8786", None):
        assert exposure_warning(address) is None, address
    code, out, err = cli("run", "smoke", "--tls-cert", tmp_path / "x.pem", "--dry-run", "--store", tmp_path / "s")
    assert code == 2 and "--tls-cert applies to --scheduler tls://HOST:PORT" in err
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    code, out, err = cli("run", "smoke", "--executor", "dask", "--scheduler", "tls://127.0.0.1:9", "--tls-ca-file",
                         not_pem, "--tls-cert", not_pem, "--dry-run", "--store", tmp_path / "s")  # fmt: skip
    assert code == 2 and f"--tls-ca-file {not_pem}: not a readable PEM certificate" in err, err
    code, out, err = cli("run", "smoke", "--frameworks", "torch", "--executor", "dask", "--scheduler", "[",
                         "--dry-run", "--store", tmp_path / "s2")  # fmt: skip
    assert code == 0 and "--scheduler [ is neither encrypted" in err  # (a dry run connects to nothing)
