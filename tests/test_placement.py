"""Where workers go (harness/execution/placement.py): flags, GPU pinning, and live progress under both executors."""

from __future__ import annotations

import importlib.util
import subprocess
import time

import pytest
from test_runner import plugin_env, query, write_suite

from harness.errors import UsageError
from harness.execution.placement import Placement, parse_resources

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
EXECUTORS = ["local"] + (["dask"] if importlib.util.find_spec("distributed") else [])


def test_resources_parse_and_bad_ones_name_the_part():
    assert parse_resources("GPU=1, MEMORY=8e9") == {"GPU": 1.0, "MEMORY": 8e9}
    assert parse_resources("") == {}
    with pytest.raises(UsageError, match=r"'GPU=one' is not NAME=AMOUNT"):
        parse_resources("GPU=one")
    with pytest.raises(UsageError, match=r"'GPU=0' asks for nothing"):
        parse_resources("GPU=0")


@pytest.mark.parametrize("kwargs, message", [
    ({"executor": "slurm"}, "--executor 'slurm' is unknown; valid: local, dask"),
    ({"workers": 0}, "--workers 0 is impossible"),
    ({"workers_per_gpu": 0}, "--workers-per-gpu 0 is impossible"),
    ({"executor": "dask", "workers_per_gpu": 2}, "--workers-per-gpu applies to --executor local"),
    ({"resources": {"GPU": 1}}, "--resources applies to --executor dask"),
    ({"retries": 2}, "--retries applies to --executor dask"),
])  # fmt: skip
def test_placement_refuses_impossible_settings(kwargs, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        Placement(**kwargs)


@needs_torch
def test_workers_per_gpu_pins_each_worker_to_one_gpu(tmp_path, use_plugins, monkeypatch):
    """Two workers given GPUs "0" and "1" (on CPU: only the pinning is tested) each see one of them."""
    from harness.execution.local import LocalPool
    from harness.suites.suite import load_suite, plan

    use_plugins("runner")
    suite = write_suite(tmp_path / "pinned.toml", ["probe"], trials=2)
    probe = tmp_path / "probe.txt"
    monkeypatch.setenv("RNN_BENCH_TEST_PROBE", str(probe))  # inherited by the workers
    trials = plan(load_suite(str(suite)))
    LocalPool(2, "cpu", 60, gpus=["0", "1"]).run([[t] for t in trials], lambda trial, result: None)
    seen = {line.split()[0]: line.split()[4] for line in probe.read_text().splitlines()}
    assert sorted(seen.values()) == ["0", "1"], seen  # two processes, one GPU each


def test_workers_per_gpu_on_the_cpu_is_refused():
    with pytest.raises(UsageError, match="--workers-per-gpu applies to --device cuda, not cpu"):
        Placement(workers_per_gpu=2).check_device("cpu")


@needs_torch
def test_workers_per_gpu_without_a_gpu_exits_2(bench, tmp_path):
    result = bench.run("run", "smoke", "--device", "cuda", "--workers-per-gpu", "2", "--no-progress",
                       "--store", tmp_path / "s.sqlite")  # fmt: skip
    if "cuda" in result.stdout and result.returncode == 0:
        pytest.skip("this machine has a GPU")
    assert result.returncode == 2, result.stderr
    assert "cuda" in result.stderr and "Traceback" not in result.stderr


@needs_torch
@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_running_trial_shows_its_curve_so_far(bench, tmp_path, executor):
    """While ``sleepy`` trains slowly, each evaluation reaches the store at once and ``status`` shows it
    running with its latest step; when it ends its progress rows are gone and its row is stored."""
    suite = write_suite(tmp_path / "live.toml", ["sleepy"])
    store = tmp_path / "live.sqlite"
    env = plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.15")  # 10 steps of T=2, an evaluation every 5
    proc = subprocess.Popen(bench.argv("run", suite, "--executor", executor, "--workers", "1", "--no-progress",
                                       "--store", store), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline, points = time.monotonic() + 120, []
        while not points and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                points = query(store, "SELECT step, metric FROM progress WHERE split = 'validation'")
            except Exception:  # the store or its table does not exist yet
                points = []
        assert points, f"no evaluation point reached the store while the trial ran: {proc.communicate()}"
        status = bench.run("status", "--store", store, env=env)
        assert status.returncode == 0, status.stderr
        assert "running: 1 trial" in status.stdout and "sleepy" in status.stdout
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert query(store, "SELECT COUNT(*) FROM progress")[0][0] == 0
    assert query(store, "SELECT status FROM trials") == [("ok",)]
    assert "worker output goes to" in out and "absl" not in err and "oneDNN" not in err
