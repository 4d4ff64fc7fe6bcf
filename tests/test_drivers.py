"""Several drivers, and changed code: ``rnn-bench run`` never trains a trial twice, never loses one, and
never passes off results of code that has changed as current.

Real runs (worker processes, PyTorch) on tiny suites: adding at T=2, a few steps (tests/test_runner.py's
``write_suite``), with plugin variants from tests/plugins/runner/ or a plugin folder written here.
"""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_runner import ONE_WORKER, SOLO, assert_exactly, hold_after_first_trial, plugin_env, query, write_suite

from harness.suites.suite import load_suite, plan

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")

ROOT = Path(__file__).resolve().parent.parent
STORED = re.compile(r"(\d+) trial\(s\) finished in \d+ s and stored by this run")


def stored_by(stdout: str) -> int:
    """What a driver's summary says it stored (0 when it found nothing to do)."""
    match = STORED.search(stdout)
    return int(match.group(1)) if match else 0


def run_two_drivers(bench, tmp_path, argv: tuple, env: dict) -> list[str]:
    """Start two ``rnn-bench run`` with the same arguments at once; their standard outputs."""
    drivers = [
        subprocess.Popen(bench.argv(*argv), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [d.communicate(timeout=300) for d in drivers]
    for d, (_out, err) in zip(drivers, outputs):
        assert d.returncode == 0, err
    return [out for out, _ in outputs]


def test_two_drivers_on_the_smoke_suite_store_each_trial_once(bench, tmp_path):
    store = tmp_path / "smoke.sqlite"
    said = run_two_drivers(bench, tmp_path, ("run", "smoke", "--frameworks", "torch", *ONE_WORKER, "--store", store),
                           bench.env())  # fmt: skip
    planned = {t.id for t in plan(load_suite("smoke").narrowed(frameworks=["torch"]))}
    assert sum(stored_by(out) for out in said) == len(planned), said
    assert not any("another driver had stored them first" in out for out in said), said
    assert_exactly(store, planned)


def test_two_drivers_started_together_train_each_trial_once(bench, tmp_path, use_plugins):
    suite = write_suite(tmp_path / "pair.toml", ["sleepy"], trials=8)
    store = tmp_path / "pair.sqlite"
    env = plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.02")  # about a second per trial: the drivers overlap
    # one trial per job: a population of eight would be one claim, taken whole by whichever driver is first
    said = run_two_drivers(bench, tmp_path, ("run", suite, *ONE_WORKER, *SOLO, "--store", store), env)
    use_plugins("runner")
    planned = {t.id for t in plan(load_suite(str(suite)))}
    assert sum(stored_by(out) for out in said) == len(planned), said  # the summaries add up to the plan
    assert not any("another driver had stored them first" in out for out in said), said  # none ran twice
    assert_exactly(store, planned)
    assert query(store, "SELECT COUNT(*) FROM superseded")[0][0] == 0  # nothing was trained twice
    assert query(store, "SELECT COUNT(*) FROM claims")[0][0] == 0  # both released what they held


# --- a variant edited between runs ------------------------------------------------------------------------
def my_variant(folder: Path, step_body: str) -> None:
    """A plugin copy of the tanh RNN with id ``mine`` and the given recurrence."""
    folder.mkdir(exist_ok=True)
    text = (ROOT / "variants" / "rnn.py").read_text()
    text = text.replace('id = "rnn"', 'id = "mine"').replace('fused_kernel = "rnn"', "fused_kernel = None")
    text = text.replace('h = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"]) + p["b"])', step_body)
    (folder / "mine.py").write_text(text)


TANH = 'h = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"]) + p["b"])'


def test_an_edited_variant_is_rerun_and_its_old_results_superseded(bench, tmp_path):
    plugins = tmp_path / "plugins"
    my_variant(plugins, TANH)
    suite = write_suite(tmp_path / "mine.toml", ["mine"], trials=2)
    store = tmp_path / "mine.sqlite"
    env = bench.env(RNN_BENCH_PLUGINS=str(plugins))
    run = ("run", suite, *ONE_WORKER, "--store", store)

    first = bench.run(*run, env=env)
    assert first.returncode == 0, first.stderr
    (code_before,), = set(query(store, "SELECT DISTINCT variant_code FROM trials"))
    before = dict(query(store, "SELECT trial_id, test_metric FROM trials"))

    my_variant(plugins, TANH + "  # a comment does not change what the cell computes")
    unchanged = bench.run(*run, env=env)
    assert unchanged.returncode == 0 and "Nothing to do" in unchanged.stdout, unchanged.stdout

    my_variant(plugins, TANH.replace("ops.tanh(", "ops.sigmoid("))
    status = bench.run("status", "--store", store, env=env)
    assert "2 stored trial(s) were produced by code that has changed since: variant 'mine' (2 trials)" in status.stdout
    report = bench.run("report", "--store", store, "--out", tmp_path / "report", "--no-probe", env=env)
    assert report.returncode == 0, report.stderr
    assert "Out of date: 2 of these trials" in (tmp_path / "report" / "report.md").read_text()
    dry = bench.run(*run, "--dry-run", env=env)
    assert "variant 'mine' changed since 2 of its stored trial(s) were run" in dry.stdout, dry.stdout
    assert "2 to run" in dry.stdout
    second = bench.run(*run, env=env)
    assert second.returncode == 0, second.stderr
    assert "variant 'mine' changed since 2 of its stored trial(s) were run" in second.stdout
    assert stored_by(second.stdout) == 2
    (code_after,), = set(query(store, "SELECT DISTINCT variant_code FROM trials"))
    assert code_after != code_before
    after = dict(query(store, "SELECT trial_id, test_metric FROM trials"))
    assert set(after) == set(before) and after != before  # same trials, new numbers
    reasons = query(store, "SELECT reason FROM superseded")
    assert reasons == [("code changed: variant 'mine'",)] * 2  # the old numbers are kept, not current

    again = bench.run(*run, env=env)
    assert "Nothing to do" in again.stdout, again.stdout
    report = bench.run("report", "--store", store, "--out", tmp_path / "report", "--no-probe", env=env)
    assert "Out of date" not in (tmp_path / "report" / "report.md").read_text()


def test_a_killed_drivers_claimed_trial_is_run_by_the_next_driver(bench, tmp_path, use_plugins):
    """SIGKILL a driver while its worker holds a trial: the claim stays in the store, and the next
    driver (same host, the claimant's process gone) takes it at once."""
    suite = write_suite(tmp_path / "killed.toml", ["sleepy"], trials=3)
    store, hold = tmp_path / "killed.sqlite", tmp_path / "hold"
    proc = subprocess.Popen(
        bench.argv("run", suite, *ONE_WORKER, *SOLO, "--store", store), cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=plugin_env(bench, RNN_BENCH_TEST_SLEEP="0.05", RNN_BENCH_TEST_HOLD=hold),
    )  # fmt: skip
    try:
        hold_after_first_trial(proc, store, hold)
        deadline = time.monotonic() + 120
        while not query(store, "SELECT COUNT(*) FROM claims")[0][0]:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the driver claimed nothing"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    hold.unlink()
    (claimed, pid), = query(store, "SELECT trial_id, pid FROM claims")
    assert pid == proc.pid
    rerun = bench.run("run", suite, *ONE_WORKER, "--store", store, env=plugin_env(bench))
    assert rerun.returncode == 0, rerun.stderr
    use_plugins("runner")
    assert_exactly(store, {t.id for t in plan(load_suite(str(suite)))})
    assert claimed in {r[0] for r in query(store, "SELECT trial_id FROM trials")}
    assert query(store, "SELECT COUNT(*) FROM claims")[0][0] == 0
