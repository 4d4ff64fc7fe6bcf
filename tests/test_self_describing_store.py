"""A store reports on its own: a real run of a suite file with a plugin variant and a plugin task, then
the suite file and the plugin folder are deleted and the plugin variable unset, and the report still
shows the plugin's name, the recorded variant order and the recorded success threshold.

One tiny run (PyTorch, adding-like task at T=2, 10 steps) in a subprocess, as a user runs it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from test_runner import ONE_WORKER, write_suite

from harness.plugins import registry
from harness.report import build_report

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 0.123  # the plugin task's success threshold: no shipped task has it


def write_plugins(folder: Path) -> None:
    """A plugin variant ``mine`` (a tanh RNN named "My tanh cell") and a plugin task ``adding_mine`` (the
    adding problem with its own name and threshold)."""
    folder.mkdir()
    text = (ROOT / "variants" / "rnn.py").read_text()
    text = text.replace('id = "rnn"', 'id = "mine"').replace('fused_kernel = "rnn"', "fused_kernel = None")
    text = text.replace('name = "tanh RNN"', 'name = "My tanh cell"').replace("Elman 1990", "Nobody 2026")
    (folder / "mine.py").write_text(text)
    (folder / "adding_mine.py").write_text(textwrap.dedent(f"""
        from tasks.adding import Adding


        class AddingMine(Adding):
            id = "adding_mine"
            name = "My adding problem"
            solved_threshold = {THRESHOLD}
    """))


@pytest.fixture(scope="module")
def orphaned(bench, tmp_path_factory):
    """A store written by a run whose suite file and plugin files are gone afterwards."""
    root = tmp_path_factory.mktemp("orphaned")
    plugins, suite = root / "plugins", root / "tiny.toml"
    write_plugins(plugins)
    write_suite(suite, ["rnn", "np", "mine"])
    suite.write_text(suite.read_text().replace('tasks = ["adding"]', 'tasks = ["adding_mine"]')
                     .replace("adding = [2]", "adding_mine = [2]")
                     .replace('name = "tiny"', 'name = "tiny"\ndescription = "the description as run"'))  # fmt: skip
    store = root / "s.sqlite"
    done = bench.run("run", suite, *ONE_WORKER, "--store", store, env=bench.env(RNN_BENCH_PLUGINS=plugins))
    assert done.returncode == 0, done.stderr
    shutil.rmtree(plugins)
    suite.unlink()
    return {"store": store, "suite": suite, "root": root}


@pytest.fixture
def without_plugins(monkeypatch):
    """This process's registry without any plugin folder (the variable unset)."""
    monkeypatch.delenv("RNN_BENCH_PLUGINS", raising=False)
    registry.registry.cache_clear()
    assert "mine" not in registry.registry().variants and "adding_mine" not in registry.registry().tasks
    yield
    registry.registry.cache_clear()


def test_the_store_records_the_suite_text_and_the_plugins_metadata(orphaned):
    conn = sqlite3.connect(orphaned["store"])
    (text,), = conn.execute("SELECT suite_text FROM runs").fetchall()
    assert 'tasks = ["adding_mine"]' in text and "the description as run" in text
    assert conn.execute("SELECT name, reference, family FROM variants WHERE variant = 'mine'").fetchall() == [
        ("My tanh cell", "Nobody 2026", "rnn")]  # fmt: skip
    assert conn.execute("SELECT name, threshold FROM tasks WHERE task = 'adding_mine'").fetchall() == [
        ("My adding problem", THRESHOLD)]  # fmt: skip
    conn.close()


@pytest.mark.parametrize("suite", [None, "given"])
def test_a_report_needs_neither_the_suite_file_nor_the_plugin(orphaned, without_plugins, tmp_path, suite):
    given = str(orphaned["suite"]) if suite else None  # the deleted file: its name is all that is left of it
    index = build_report(orphaned["store"], tmp_path / "out", suite=given, probe=False)
    md, page = (index.parent / "report.md").read_text(), index.read_text()
    assert "My tanh cell" in page and "Nobody 2026" in page  # the plugin's name and reference, as recorded
    assert f"solved when mse < {THRESHOLD:g}" in md  # the plugin task's recorded threshold
    assert "current code" not in md  # nothing came from the code here
    order = list(pd.read_csv(index.parent / "tables" / "summary.csv")["variant"])
    if suite:  # the recorded suite's baseline first, then the recorded ranks
        assert order == ["rnn", "np", "mine"]
        assert "the description as run" in md and 'tasks = ["adding_mine"]' in md  # the suite text as run
    else:  # no suite: the first in the recorded order is the baseline
        assert order == ["np", "rnn", "mine"]


def test_the_report_follows_the_recorded_order_not_the_code(orphaned, without_plugins, tmp_path):
    """Had the catalogue of the run put ``mine`` first, the report would too: the order is the store's."""
    copy = tmp_path / "copy.sqlite"
    shutil.copy(orphaned["store"], copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE variants SET catalogue_rank = -1 WHERE variant = 'mine'")
    conn.close()
    index = build_report(copy, tmp_path / "out", suite=str(orphaned["suite"]), probe=False)
    assert list(pd.read_csv(index.parent / "tables" / "summary.csv")["variant"]) == ["rnn", "mine", "np"]
