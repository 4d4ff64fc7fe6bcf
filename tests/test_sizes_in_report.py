"""What a result costs, in the report: parameters and state size beside every comparison, and the
metric against both (the Pareto figure)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from harness.analysis.study import state_sizes
from harness.plugins.registry import registry
from harness.report.figures import pareto_front
from harness.store.database import Store
from harness.suites.suite import parse_suite, plan
from harness.training.solo import TrialResult


def test_the_front_keeps_what_no_smaller_point_beats():
    points = [(10, 0.5), (20, 0.4), (30, 0.9), (40, 0.9), (5, 0.1)]
    assert pareto_front(points, higher_is_better=True) == [(5, 0.1), (10, 0.5), (30, 0.9)]
    assert pareto_front(points, higher_is_better=False) == [(5, 0.1)]
    assert pareto_front([(10, 0.3), (10, 0.2)], higher_is_better=False) == [(10, 0.2)]


def test_state_size_is_stored_and_taken_from_the_code_for_older_rows():
    hp = json.dumps({"hidden_size": 8})
    rows = pd.DataFrame({"variant": ["np", "mlstm", "np", "nonexistent"], "hparams": [hp] * 4,
                         "state_size": [None, None, 3, None]})  # fmt: skip
    got = list(state_sizes(rows))
    mlstm = registry().variant("mlstm")
    assert got[:3] == [16.0, float(sum(mlstm.state_sizes(8))), 3.0] and pd.isna(got[3])
    assert sum(mlstm.state_sizes(8)) >= 64  # the matrix memory: H² floats


def test_a_trial_records_its_state_size_and_the_report_shows_it(tmp_path):
    pytest.importorskip("torch")
    from harness.report.build import build_report
    from harness.training.population import train_population

    s = parse_suite({"name": "z", "tasks": ["parity"], "variants": ["np", "gru"], "trials": 2,
                     "lengths": {"parity": [4]}, "training": {"max_steps": 3, "eval_every": 3, "batch_size": 4,
                                                               "validation_size": 8, "test_size": 8,
                                                               "hidden_size": 6}}, "z.toml")  # fmt: skip
    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("z", ["rnn-bench"], {})
        for trial in plan(s):
            result = train_population([trial], "torch")[0]
            assert result.state_size == (12 if trial.variant == "np" else 6)
            store.record(run, "z", trial, registry().task("parity"), result)
        assert sorted(store.trials_frame()["state_size"]) == [6, 6, 12, 12]
    build_report(tmp_path / "s.sqlite", out_dir=tmp_path / "rep", probe=False)
    assert (tmp_path / "rep" / "figures" / "pareto_parity_T4.png").exists()
    summary = pd.read_csv(next((tmp_path / "rep" / "tables").glob("summary*.csv")))
    assert list(summary["state"].dropna().astype(int).unique()) in ([12, 6], [6, 12])


def test_a_result_without_a_state_size_stores_null(tmp_path):
    s = parse_suite({"name": "z", "tasks": ["parity"], "variants": ["np"], "lengths": {"parity": [4]}}, "z.toml")
    with Store(tmp_path / "s.sqlite") as store:
        store.record(None, "z", plan(s)[0], registry().task("parity"), TrialResult(status="failed", error="x"))
        assert store.trials_frame()["state_size"].isna().all()
