"""Length generalisation (harness.training.lengths): uniform training lengths, the test ladder, the score,
their place in trial ids, the store, the export, the analysis and the report."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from harness.analysis.generalisation import length_generalisation
from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.store import database as store_module
from harness.store.database import Store
from harness.suites.analysis_plan import AnalysisPlan, parse_analysis_plan
from harness.suites.suite import parse_suite, plan
from harness.training.lengths import (
    generalisation,
    length_schedule,
    longer_test_set,
    mean_sequence_length,
    training_stream,
)  # fmt: skip
from harness.training.solo import TrialResult
from harness.trials.protocol import LADDER, Settings, check_hparams, id_hparams
from harness.trials.trial import Trial

PARITY = registry().task("parity")


def suite(training=None, **top):
    data = {"name": "g", "tasks": ["parity"], "variants": ["np", "gru"], "frameworks": ["torch"], "trials": 2,
            "lengths": {"parity": [8]}, "training": {"max_steps": 10, **(training or {})}, **top}  # fmt: skip
    return parse_suite(data, "g.toml")


# --- settings and ids ------------------------------------------------------------------------------------
def test_uniform_training_brings_the_default_ladder_and_an_explicit_one_is_sorted():
    assert check_hparams({"train_lengths": "uniform"})["test_lengths"] == LADDER == (2, 4, 8)
    assert check_hparams({})["test_lengths"] == () and check_hparams({})["train_lengths"] == "fixed"
    assert check_hparams({"test_lengths": [8, 2, 2]})["test_lengths"] == (2, 8)
    assert check_hparams({"train_lengths": "uniform", "test_lengths": []})["test_lengths"] == ()


@pytest.mark.parametrize("bad", [[1], [2.5], ["4"], "2,4", 4, [True]])
def test_a_bad_ladder_is_refused_naming_it(bad):
    with pytest.raises(UsageError, match="test_lengths") as e:
        check_hparams({"test_lengths": bad}, "suite file s.toml, [training]")
    assert "s.toml" in str(e.value) and "multiples of T" in str(e.value)


def test_a_bad_training_length_mode_is_refused():
    with pytest.raises(UsageError, match="train_lengths='random'"):
        check_hparams({"train_lengths": "random"})


def test_a_suite_without_the_new_settings_plans_the_ids_it_always_did():
    """The committed stores' trials keep their ids: the settings are absent from hparams at their defaults."""
    fixed = plan(suite())
    assert all("train_lengths" not in t.hparams and "test_lengths" not in t.hparams for t in fixed)
    trial = fixed[0]
    older = Trial(trial.task, trial.length, trial.variant, trial.framework, trial.device,
                  {k: v for k, v in trial.hparams.items()}, trial.seed)  # fmt: skip
    assert older.id == trial.id and older.settings.train_lengths == "fixed" and older.settings.test_lengths == ()


def test_uniform_training_changes_the_id_and_its_default_ladder_is_implied():
    fixed, uniform = plan(suite())[0], plan(suite({"train_lengths": "uniform"}))[0]
    assert uniform.id != fixed.id
    assert uniform.hparams["train_lengths"] == "uniform" and "test_lengths" not in uniform.hparams
    assert uniform.settings.test_lengths == LADDER
    no_ladder = plan(suite({"train_lengths": "uniform", "test_lengths": []}))[0]
    assert list(no_ladder.hparams["test_lengths"]) == [] and no_ladder.settings.test_lengths == ()
    assert Trial.from_json(no_ladder.to_json()).settings.test_lengths == ()
    ladder = plan(suite({"test_lengths": [3]}))[0]
    assert list(ladder.hparams["test_lengths"]) == [3] and ladder.settings.train_lengths == "fixed"


def test_id_hparams_drops_only_what_check_hparams_would_fill_in():
    hp = check_hparams({"train_lengths": "uniform", "test_lengths": [2, 4]})
    assert id_hparams(hp)["test_lengths"] == (2, 4)
    assert "train_lengths" not in id_hparams(check_hparams({}))


# --- the training stream and the test sets ---------------------------------------------------------------
def test_the_length_schedule_is_uniform_over_the_range_and_fixed():
    s = length_schedule(1, 8, 20_000)
    assert s.min() == 1 and s.max() == 8 and len(s) == 20_000
    counts = np.bincount(s, minlength=9)[1:]
    assert np.all(np.abs(counts / len(s) - 1 / 8) < 0.01)  # 20,000 draws: within 1 point of 12.5 %
    assert np.array_equal(length_schedule(1, 8, 5000), s[:5000])  # the same schedule, block by block


def test_uniform_batches_follow_the_schedule_whatever_the_seed():
    settings = Settings(train_lengths="uniform", batch_size=3)
    want = length_schedule(PARITY.min_length, 6, 12)
    for seed in (0, 7):
        stream = training_stream(PARITY, 6, settings, seed)
        assert [next(stream).inputs.shape[1] for _ in range(12)] == list(want)
    a, b = training_stream(PARITY, 6, settings, 0), training_stream(PARITY, 6, settings, 1)
    assert not np.array_equal(next(a).inputs, next(b).inputs)  # replicates differ in their data


def test_fixed_training_is_the_tasks_own_stream():
    ours, its = training_stream(PARITY, 6, Settings(batch_size=3), 4), PARITY.training_stream(6, 3, 4)
    for _ in range(3):
        assert np.array_equal(next(ours).inputs, next(its).inputs)


def test_each_test_length_has_its_own_fixed_set():
    a, b = longer_test_set(PARITY, 16, 32), longer_test_set(PARITY, 16, 32)
    assert np.array_equal(a.inputs, b.inputs) and a.inputs.shape == (32, 16, 2)
    assert not np.array_equal(a.inputs, PARITY.fixed_set("test", 16, 32).inputs)


def test_the_score_is_the_mean_beyond_T_and_the_mean_length_under_uniform():
    assert generalisation("acc", {16: {"acc": 0.5}, 32: {"acc": 1.0}}) == 0.75
    assert generalisation("acc", {}) is None
    assert mean_sequence_length(PARITY, 8, Settings(train_lengths="uniform")) == 4.5
    assert mean_sequence_length(PARITY, 8, Settings()) == 8.0


# --- training ---------------------------------------------------------------------------------------------
def test_a_uniform_trial_is_tested_at_each_length_of_its_ladder_and_a_population_agrees():
    torch = pytest.importorskip("torch")  # noqa: F841
    from harness.training.population import train_population
    from tests.population_cases import SMALL, assert_same_result, make_trial

    trials = [make_trial("np", seed=s, task="parity", T=5, max_steps=6, eval_every=3, train_lengths="uniform",
                         test_lengths=[2, 3], learning_rate=0.01 * (s + 1), **SMALL) for s in range(2)]  # fmt: skip
    together = train_population(trials, "torch", scan="off")
    for trial, result in zip(trials, together):
        assert sorted(result.test_lengths) == [10, 15] and result.population == 2
        assert set(result.test_lengths[15]) == {"loss", "final_accuracy", "step_accuracy"}
        assert_same_result(result, train_population([trial], "torch", scan="off")[0])


def test_a_tensorflow_trial_under_uniform_lengths_trains_alone():
    from harness.training.grouping import population_groups
    from tests.population_cases import make_trial

    trials = [make_trial("np", seed=s, task="parity", T=5, framework="tf", train_lengths="uniform") for s in range(3)]
    assert [len(g) for g in population_groups(trials, 8)] == [1, 1, 1]
    fixed = [make_trial("np", seed=s, task="parity", T=5, framework="tf") for s in range(3)]
    assert [len(g) for g in population_groups(fixed, 8)] == [3]


# --- store, export, analysis ------------------------------------------------------------------------------
def ladder_result(metric_at_T=0.9, beyond=(0.7, 0.5)):
    m = {"loss": 0.1, "final_accuracy": metric_at_T, "step_accuracy": 0.9}
    return TrialResult(status="ok", steps=10, best_step=10, validation=m, test_best=m, test_last=m,
                       test_lengths={16: {"loss": 0.3, "final_accuracy": beyond[0]},
                                     32: {"loss": 0.5, "final_accuracy": beyond[1]}},
                       curve=[(10, "validation", 0.1, metric_at_T)])  # fmt: skip


def test_the_store_keeps_the_metric_at_every_test_length_and_the_score(tmp_path):
    trial = plan(suite({"train_lengths": "uniform", "test_lengths": [2, 4]}))[0]
    plain = plan(suite())[0]
    with Store(tmp_path / "s.sqlite") as store:
        store.record(None, "g", trial, PARITY, ladder_result())
        store.record(None, "g", plain, PARITY, TrialResult(status="ok", test_best={"loss": 1, "final_accuracy": 0.5}))
        rows = store.test_lengths_frame()
        assert list(rows["length"]) == [8, 16, 32] and list(rows["metric"]) == [0.9, 0.7, 0.5]
        assert set(rows["trial_id"]) == {trial.id}  # a trial tested at T only has no rows
        frame = store.trials_frame().set_index("trial_id")
        assert frame.loc[trial.id, "generalisation"] == pytest.approx(0.6)
        assert pd.isna(frame.loc[plain.id, "generalisation"])
        assert json.loads(frame.loc[trial.id, "metrics"])["test_lengths"]["32"]["final_accuracy"] == 0.5
        # a rerun supersedes the row: the old one's metrics JSON keeps its ladder, the table holds the new
        stored = store.stored()[trial.id].finished_at
        store.record(None, "g", trial, PARITY, ladder_result(beyond=(1.0, 1.0)), replaces=stored)
        assert list(store.test_lengths_frame()["metric"]) == [0.9, 1.0, 1.0]
        old = json.loads(store.conn.execute("SELECT row FROM superseded").fetchone()[0])
        assert json.loads(old["metrics"])["test_lengths"]["16"]["final_accuracy"] == 0.7


def test_a_version_3_store_opens_read_only_and_is_migrated_when_written(tmp_path):
    import re

    path = tmp_path / "v3.sqlite"
    schema = store_module.SCHEMA.replace(", generalisation REAL", "")
    schema = re.sub(r"CREATE TABLE IF NOT EXISTS test_lengths \(.*?\);\n", "", schema, flags=re.S)
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    conn.commit()
    conn.close()
    with Store(path, read_only=True) as store:
        assert store.test_lengths_frame().empty
    with Store(path) as store:
        assert "generalisation" in store._columns("trials") and store._columns("test_lengths")
        assert store.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "4"


def test_the_export_has_one_row_per_trial_and_test_length(tmp_path):
    from harness.report.export import LENGTH_COLUMNS, lengths_table

    trial = plan(suite({"train_lengths": "uniform", "test_lengths": [2, 4]}))[0]
    with Store(tmp_path / "s.sqlite") as store:
        assert list(lengths_table(store).columns) == LENGTH_COLUMNS
        store.record(None, "g", trial, PARITY, ladder_result())
        table = lengths_table(store)
    assert list(table["test_length"]) == [8, 16, 32] and list(table["multiple"]) == [1.0, 2.0, 4.0]
    assert list(table["metric"]) == [0.9, 0.7, 0.5] and set(table["metric_name"]) == {"final_accuracy"}
    assert str(table["test_length"].dtype) == "Int64"


def test_the_analysis_gives_median_quartiles_and_the_best_configuration():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "task": "parity", "length": 8, "variant": "np",
                           "framework": "torch", "higher_is_better": True, "test_metric": [1.0, 0.9, 0.8],
                           "generalisation": [0.5, 0.8, 0.6]})  # fmt: skip
    lengths = pd.DataFrame({"trial_id": ["a", "a", "b", "b", "c", "c"], "length": [8, 16] * 3,
                            "metric": [1.0, 0.5, 0.9, 0.8, 0.8, 0.6], "loss": 0.0})  # fmt: skip
    out = length_generalisation(trials, lengths).set_index("test_length")
    assert out.loc[16, "median"] == 0.6 and out.loc[16, "q25"] == 0.55 and out.loc[16, "q75"] == 0.7
    assert out.loc[16, "best"] == 0.8 and out.loc[8, "best"] == 0.9 and set(out["best_trial"]) == {"b"}
    lower = trials.assign(higher_is_better=False)
    assert set(length_generalisation(lower, lengths)["best_trial"]) == {"a"}
    assert length_generalisation(trials, None).empty


def test_a_plan_can_make_the_score_the_metric_of_its_verdicts():
    from harness.analysis.study import generalisation_as_metric

    plan_ = parse_analysis_plan({"primary": "generalisation"}, "s.toml")
    assert "generalisation score" in plan_.short() and "generalisation score" in plan_.describe()
    df = generalisation_as_metric(pd.DataFrame({"test_metric": [1.0, 0.9], "generalisation": [0.5, None]}))
    assert df["test_metric"].iloc[0] == 0.5 and np.isnan(df["test_metric"].iloc[1])
    assert AnalysisPlan().primary == "metric"


def test_the_report_draws_the_metric_against_the_evaluation_length(tmp_path):
    from harness.report.build import build_report

    trials = plan(suite({"train_lengths": "uniform", "test_lengths": [2, 4]}, trials=3))
    with Store(tmp_path / "s.sqlite") as store:
        run = store.start_run("g", ["rnn-bench"], {})
        for k, trial in enumerate(trials):
            store.record(run, "g", trial, PARITY, ladder_result(0.9, (0.8 - 0.1 * k, 0.6 - 0.1 * k)))
    build_report(tmp_path / "s.sqlite", out_dir=tmp_path / "rep", probe=False)
    assert (tmp_path / "rep" / "figures" / "generalisation_parity_T8.png").exists()
    assert "Length generalisation" in (tmp_path / "rep" / "index.html").read_text()


def ladder_store(path, ladder: bool = True):
    """A store of suite ``g``: 3 configurations of parity T = 8 in both frameworks, each tested at 16 and 32
    with scores 0.7 - 0.1 k (``ladder``), or tested at T only."""
    trials = plan(suite({"train_lengths": "uniform", "test_lengths": [2, 4]}, trials=3))
    with Store(path) as store:
        run = store.start_run("g", ["rnn-bench"], {})
        for k, trial in enumerate(trials):
            result = ladder_result(0.9, (0.8 - 0.1 * k, 0.6 - 0.1 * k))
            store.record(run, "g", trial, PARITY, result if ladder else replace(result, test_lengths={}))
    return trials


def test_report_primary_tests_the_score_as_a_secondary_analysis(tmp_path):
    """``--primary generalisation`` puts the score in the verdicts' place and says the outcome departs from
    the declared one; an outcome no trial has is refused."""
    from harness.report.build import load

    trials = ladder_store(tmp_path / "s.sqlite")
    declared = load(tmp_path / "s.sqlite")
    assert not declared.secondary and set(declared.trials["test_metric"]) == {0.9}
    scored = load(tmp_path / "s.sqlite", primary="generalisation")
    assert scored.secondary and scored.plan.primary == "generalisation"
    beyond = sorted(round(0.7 - 0.1 * k, 6) for k in range(len(trials)))  # the mean of (0.8, 0.6) - 0.1 k
    assert sorted(scored.trials["test_metric"].round(6)) == beyond
    assert any(n.startswith("A secondary analysis: --primary generalisation") and "'metric'" in n
               for n in scored.notes)  # fmt: skip
    assert any(n.startswith("--primary generalisation makes the generalisation score") for n in scored.notes)
    assert not any(n.startswith("The suite's analysis plan makes") for n in scored.notes)  # it did not
    assert not load(tmp_path / "s.sqlite", primary="metric").secondary  # the declared outcome: nothing changes
    with pytest.raises(UsageError, match="unknown primary outcome 'best'"):
        load(tmp_path / "s.sqlite", primary="best")
    ladder_store(tmp_path / "plain.sqlite", ladder=False)
    with pytest.raises(UsageError, match="no trial of 'g' in .* has a generalisation score"):
        load(tmp_path / "plain.sqlite", primary="generalisation")


def test_report_and_export_primary_write_beside_the_declared_report(cli, tmp_path, monkeypatch):
    ladder_store(tmp_path / "s.sqlite")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("report", "--store", "s.sqlite", "--no-probe", "--primary", "generalisation")
    assert code == 0, err
    page = (tmp_path / "reports" / "g-generalisation" / "index.html").read_text()
    assert "A secondary analysis" in page and not (tmp_path / "reports" / "g").exists()
    code, out, err = cli("export", "--store", "s.sqlite", "--comparisons", "--primary", "generalisation",
                         "-o", "c.csv")  # fmt: skip
    assert code == 0 and "note: A secondary analysis" in err
    code, out, err = cli("export", "--store", "s.sqlite", "--primary", "solved", "-o", "t.csv")
    assert code == 2 and "--primary choose" in err


def test_the_estimate_counts_uniform_lengths_and_the_ladder():
    from harness.run.estimate import _job_seconds

    fixed, uniform = plan(suite())[0], plan(suite({"train_lengths": "uniform", "test_lengths": []}))[0]
    ladder = plan(suite({"test_lengths": [2, 4, 8]}))[0]
    # training steps at the mean length 4.5 of 8; validation and tests on held-out sequences at T either way
    assert _job_seconds([fixed], 1.0, 0.0) - _job_seconds([uniform], 1.0, 0.0) == pytest.approx(10 * (8 - 4.5))
    assert _job_seconds([ladder], 1.0, 0.0) > _job_seconds([fixed], 1.0, 0.0)
