"""``rnn-bench run`` with populations, end to end: the same trials, the same numbers as solo runs, each
member stored as its own trial, and a member's fate its own.

Real runs (worker processes, PyTorch) on tests/test_runner.py's tiny suites (adding at T=2, 10 steps).
"""

from __future__ import annotations

import importlib.util

import pytest
from test_runner import ONE_WORKER, PLUGINS, plugin_env, query, write_suite

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")


def rows(store) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in query(store, "SELECT trial_id, status, population, test_metric, steps FROM trials")}


def test_a_population_run_stores_the_trials_a_solo_run_stores_with_the_same_numbers(bench, tmp_path):
    suite = write_suite(tmp_path / "pop.toml", ["v", "gru"], trials=4)
    together, alone = tmp_path / "together.sqlite", tmp_path / "alone.sqlite"
    first = bench.run("run", suite, *ONE_WORKER, "--population", "3", "--store", together)
    assert first.returncode == 0, first.stderr
    assert "as 4 job(s) (populations of up to 3)" in first.stdout
    second = bench.run("run", suite, *ONE_WORKER, "--population", "1", "--store", alone)
    assert second.returncode == 0, second.stderr
    a, b = rows(together), rows(alone)
    assert set(a) == set(b) and len(a) == 8
    assert sorted(r[1] for r in a.values()) == [1, 1, 3, 3, 3, 3, 3, 3]  # 4 configurations: 3 + 1 per variant
    assert {r[1] for r in b.values()} == {1}
    for tid in a:
        assert a[tid][0] == b[tid][0] == "ok" and a[tid][3] == b[tid][3]
        assert a[tid][2] == pytest.approx(b[tid][2], rel=1e-4)
    again = bench.run("run", suite, *ONE_WORKER, "--store", together)
    assert "Nothing to do" in again.stdout  # resume is by trial id, whatever the population


def test_a_worker_that_dies_in_a_population_fails_each_unfinished_member(bench, tmp_path, use_plugins):
    suite = write_suite(tmp_path / "dies.toml", ["killed"], trials=2)
    store = tmp_path / "dies.sqlite"
    run = bench.run("run", suite, *ONE_WORKER, "--population", "2", "--store", store, env=plugin_env(bench))
    assert run.returncode == 0, run.stderr
    assert "as 1 job(s) (populations of up to 2)" in run.stdout
    failed = query(store, "SELECT status, error, population FROM trials")
    assert len(failed) == 2
    assert all(status == "failed" and "SIGKILL" in error and size == 2 for status, error, size in failed)


@pytest.mark.parametrize("population", ["0", "-2"])
def test_an_impossible_population_exits_2(bench, tmp_path, population):
    suite = write_suite(tmp_path / "bad.toml", ["v"], trials=2)
    run = bench.run("run", suite, "--population", population, "--store", tmp_path / "s.sqlite")
    assert run.returncode == 2 and f"--population {population} is impossible" in run.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_a_variant_broken_only_in_the_worker_fails_its_trials_with_the_reason(bench, tmp_path):
    suite = write_suite(tmp_path / "broken.toml", ["breaks_in_workers"], trials=2)
    store = tmp_path / "broken.sqlite"
    env = bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "worker_only"))
    run = bench.run("run", suite, *ONE_WORKER, "--population", "2", "--store", store, env=env)
    assert run.returncode == 0, run.stderr
    rows = query(store, "SELECT status, error FROM trials")
    assert len(rows) == 2
    assert all(status == "failed" and "refuses to load in a benchmark worker" in error for status, error in rows)
