"""Trials, ids, suites and planning: deterministic, paired, validated before any work."""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.suites.analysis_plan import AnalysisPlan
from harness.suites.search_space import sample
from harness.suites.suite import MAX_TRIALS, SEED_STRIDE, list_suites, load_suite, parse_suite, plan, plan_size
from harness.trials.protocol import DEFAULTS, SETTINGS, Settings, check_hparams
from harness.trials.trial import Trial


def small_suite(**changes):
    data = {
        "name": "t", "tasks": ["adding", "delayed_recall"], "variants": ["lstm", "rnn", "peephole"],
        "frameworks": ["torch", "tf"], "trials": 3, "replicates": 2,
        "lengths": {"adding": [5, 10], "delayed_recall": [4]},
        "search": {"learning_rate": {"log_uniform": [1e-3, 1e-1]}, "hidden_size": {"log_uniform_int": [4, 64]},
                   "forget_bias": {"choice": [0.0, 3.0, "chrono"]}},
        "training": {"max_steps": 10},
    }  # fmt: skip
    data.update(changes)
    return parse_suite(data, "test.toml")


def test_trial_id_is_stable_and_sensitive_to_every_field():
    hp = check_hparams({})
    t = Trial("adding", 10, "np", "torch", "cpu", hp, 0)
    assert t.id == Trial("adding", 10, "np", "torch", "cpu", dict(hp), 0).id
    assert len(t.id) == 16
    changed = [
        Trial("copy", 10, "np", "torch", "cpu", hp, 0), Trial("adding", 11, "np", "torch", "cpu", hp, 0),
        Trial("adding", 10, "v", "torch", "cpu", hp, 0), Trial("adding", 10, "np", "tf", "cpu", hp, 0),
        Trial("adding", 10, "np", "torch", "cuda", hp, 0), Trial("adding", 10, "np", "torch", "cpu", hp, 1),
        Trial("adding", 10, "np", "torch", "cpu", {**hp, "learning_rate": 0.002}, 0),
    ]  # fmt: skip
    assert len({c.id for c in changed} | {t.id}) == len(changed) + 1


def test_trial_json_round_trip_keeps_id():
    t = Trial("adding", 10, "np", "torch", "cpu", check_hparams({"forget_bias": "chrono"}), 3)
    assert Trial.from_json(t.to_json()).id == t.id


def test_plan_is_deterministic_and_complete():
    s = small_suite()
    a, b = plan(s), plan(small_suite())
    assert [t.id for t in a] == [t.id for t in b]
    # (2 + 1 lengths) x 3 configurations x 3 variants x 2 frameworks x 2 seeds
    assert len(a) == 3 * 3 * 3 * 2 * 2 == len({t.id for t in a})
    assert {t.variant for t in a} == {"np", "rnn", "v"}  # aliases resolved to canonical ids


def test_configurations_are_paired_across_variants_and_frameworks():
    trials = [t for t in plan(small_suite()) if t.task == "adding" and t.length == 5 and t.seed == 0]
    lrs = {(t.variant, t.framework): t.hparams["learning_rate"] for t in trials}
    assert len(set(lrs.values())) == 1
    lstm = next(t for t in trials if t.variant == "np")
    rnn = next(t for t in trials if t.variant == "rnn")
    assert "forget_bias" in lstm.hparams and "forget_bias" not in rnn.hparams


def test_narrowing_trials_keeps_the_first_configurations():
    full = {t.id for t in plan(small_suite())}
    narrow = plan(small_suite().narrowed(trials=1, frameworks=["torch"], variants=["lstm"]))
    assert narrow and {t.id for t in narrow} <= full
    assert {t.seed for t in narrow} == {0, SEED_STRIDE}  # configuration 0, replicates 0 and 1


def test_search_space_draws_inside_bounds():
    space = {"learning_rate": {"log_uniform": [1e-3, 1e-1]}, "hidden_size": {"log_uniform_int": [4, 64]},
             "forget_bias": {"choice": [0.0, 3.0]}, "optimizer": "sgd"}  # fmt: skip
    draws = [sample(space, 0, "adding", 10, k) for k in range(200)]
    assert all(1e-3 <= d["learning_rate"] <= 1e-1 and 4 <= d["hidden_size"] <= 64 for d in draws)
    assert {d["forget_bias"] for d in draws} == {0.0, 3.0}
    assert {d["optimizer"] for d in draws} == {"sgd"}
    # log-uniform: about half the draws below the geometric midpoint 1e-2
    assert 0.35 < sum(d["learning_rate"] < 1e-2 for d in draws) / len(draws) < 0.65


def test_shipped_suites_load_and_plan():
    assert {"smoke", "quick", "greff", "full", "learnability"} <= set(list_suites())
    for name in list_suites():
        s = load_suite(name)
        trials = plan(s)
        assert trials and s.baseline in s.variants
    full = load_suite("full")
    from harness.plugins.registry import registry

    assert set(full.variants) == set(registry().variants)  # the full study covers the whole catalogue
    learnability = load_suite("learnability")  # the reference cell on the state tracking and recall tasks
    assert learnability.variants == ["np"] and learnability.training["max_steps"] == 1000
    assert set(learnability.tasks) == {"parity", "cycle_navigation", "associative_recall", "selective_copy"}


def test_greff_is_the_study_the_readme_cites():
    """Greff's nine LSTM cells plus gru and rnn; every core and continual task at two lengths; at least 20
    configurations per cell, two replicates each; both frameworks; the vanilla LSTM as the baseline; its
    statistics declared (what the README's results section reports and docs/greff.md describes)."""
    greff = load_suite("greff")
    assert greff.variants == ["v", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr", "gru", "rnn"]
    assert set(greff.tasks) == {"adding", "delayed_recall", "copy", "continual_reber", "continual_adding"}
    assert all(len(greff.lengths[task]) == 2 for task in greff.tasks)
    assert greff.trials >= 20 and greff.frameworks == ["torch", "tf"] and greff.baseline == "v"
    assert greff.replicates == 2 and greff.statistics.test == "paired" and greff.statistics.family == "study"
    assert len(plan(greff)) == 11 * 5 * 2 * greff.trials * 2 * 2


def test_a_suite_stays_whole_unless_the_command_line_changes_what_it_plans():
    quick = load_suite("quick")
    assert quick.whole
    assert quick.narrowed(time_limit=10, training=dict(quick.training), tasks=None).whole
    assert not quick.narrowed(tasks=["adding"]).whole
    assert not quick.narrowed(max_steps=5).whole
    assert not quick.narrowed(training={**quick.training, "fused": False}).whole
    assert not quick.narrowed(trials=3).narrowed(time_limit=10).whole  # once narrowed, always narrowed


def test_full_runs_each_continual_task_at_several_lengths():
    full = load_suite("full")
    for task in ("continual_reber", "continual_adding"):
        assert task in full.tasks and len(full.lengths[task]) >= 2
        # long held-out streams: fewer of them (the suite's comments say why)
        assert full.overrides[task]["validation_size"] < full.training["validation_size"]


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"training": {"learning_rate": 0}}, "learning_rate=0"),
        ({"training": {"learning_rate": -1e-3}}, "learning_rate=-0.001"),
        ({"training": {"hidden_size": 0}}, "hidden_size=0"),
        ({"training": {"batch_size": 0}}, "batch_size=0"),
        ({"lengths": {"adding": [1], "delayed_recall": [4]}}, "T=1"),
        ({"variants": ["lstm", "nope"]}, "'nope'"),
        ({"tasks": ["adding", "adition"]}, "'adition'"),
        ({"frameworks": ["jax"]}, "'jax'"),
        ({"search": {"dropout": 0.1}}, "'dropout'"),
        ({"search": {"learning_rate": {"log_uniform": [0, 1]}}}, "learning_rate"),
        # a variant hyperparameter's every value, though --trials 1 samples only the first
        ({"search": {"forget_bias": {"choice": [1.0, "chrono", "banana"]}}, "trials": 1},
         "[search] forget_bias: variant 'np': forget_bias='banana' is not allowed"),
        ({"search": {"forget_bias": "banana"}}, "[search] forget_bias: variant 'np'"),
        ({"search": {"forget_bias": {"uniform": [1.0, 1e400]}}}, "[search] forget_bias"),
        ({"trials": 0}, "trials = 0"),
        ({"lengths": {"adding": [5]}}, "delayed_recall"),
    ],
)
def test_impossible_or_unknown_values_are_refused_before_any_work(changes, needle):
    with pytest.raises(UsageError) as e:
        small_suite(**changes)
    assert needle in str(e.value) and "test.toml" in str(e.value)


def test_names_listed_twice_are_planned_once_and_said():
    """A task, length, variant (or an alias of one already listed) or framework named twice plans its cells
    once, in first place, with a note for each repeat; so does the command line's narrowing."""
    s = small_suite(tasks=["adding", "delayed_recall", "adding"], variants=["lstm", "rnn", "np"],
                    frameworks=["torch", "torch"], lengths={"adding": [5, 10, 5], "delayed_recall": [4]})  # fmt: skip
    assert (s.tasks, s.variants, s.frameworks) == (["adding", "delayed_recall"], ["np", "rnn"], ["torch"])
    assert s.lengths["adding"] == [5, 10]
    assert len(plan(s)) == plan_size(s) == 3 * 3 * 2 * 1 * 2
    assert any("variant 'np' is listed more than once ('np' and 'lstm' name the same variant)" in n for n in s.notes)
    assert any("test.toml, [lengths] adding: length 5" in n for n in s.notes)
    assert any("task 'adding'" in n for n in s.notes) and any("framework 'torch'" in n for n in s.notes)
    n = s.narrowed(variants=["rnn", "rnn"], lengths=[5, 5])
    assert n.variants == ["rnn"] and n.lengths == {"adding": [5], "delayed_recall": [5]}
    assert any(note.startswith("--lengths: length 5 is listed more than once") for note in n.notes)
    assert len({t.id for t in plan(n)}) == len(plan(n)) == plan_size(n)


def test_unknown_top_level_key_names_file_and_key():
    with pytest.raises(UsageError, match=r"'lenghts'.*test.toml|test.toml.*'lenghts'"):
        parse_suite({"tasks": ["adding"], "variants": ["np"], "lenghts": {}}, "test.toml")


def test_protocol_defaults_fill_and_check():
    hp = check_hparams({"learning_rate": 0.01})
    assert hp["learning_rate"] == 0.01 and hp["optimizer"] == DEFAULTS["optimizer"]
    with pytest.raises(UsageError, match="optimizer='rmsprop'"):
        check_hparams({"optimizer": "rmsprop"})


@pytest.mark.parametrize("setting, needle", [
    ({"fused": 1}, "fused=1 must be true or false"), ({"nesterov": "yes"}, "nesterov='yes' must be true or false"),
    ({"learning_rate": 0}, "learning_rate=0 is impossible; it must be above 0"),
    ({"learning_rate": -0.1}, "learning_rate=-0.1 is impossible; it must be above 0"),
    ({"momentum": 1.0}, "momentum=1.0 is impossible; it must be in"),
    ({"batch_size": 0}, "batch_size=0 must be at least 1"),
    ({"hidden_size": 2.5}, "hidden_size=2.5 must be a whole number"), ({"clip_norm": -1}, "clip_norm=-1"),
])  # fmt: skip
def test_the_protocol_settings_are_checked_as_variants_check_theirs(setting, needle):
    """One check for both (HyperParameter.check), plus the two open bounds and strict booleans."""
    with pytest.raises(UsageError, match=needle):
        check_hparams(setting)


def test_a_whole_number_given_as_a_float_is_the_same_setting():
    hp = check_hparams({"hidden_size": 8.0, "learning_rate": 1})
    assert hp["hidden_size"] == 8 and type(hp["hidden_size"]) is int and type(hp["learning_rate"]) is float
    assert check_hparams({"hidden_size": 8, "learning_rate": 1.0}) == hp


def test_settings_are_typed_checked_on_construction_and_declared_once():
    """``Settings`` is what crosses to a worker: every instance is checked and normalised, whichever way it
    was made, and ``SETTINGS`` (what suites and docs list) is read off its fields, not kept beside them."""
    from dataclasses import fields

    s = Settings.of({"hidden_size": 8.0, "learning_rate": 1, "forget_bias": 2.0})  # a variant's key is not a setting
    assert s.hidden_size == 8 and type(s.hidden_size) is int and type(s.learning_rate) is float
    assert Settings(hidden_size=8.0) == Settings(hidden_size=8)
    assert [f.name for f in fields(Settings)] == list(SETTINGS) and Settings() == Settings.of(DEFAULTS)
    with pytest.raises(UsageError, match="learning_rate=-1 is impossible"):
        Settings(learning_rate=-1)
    with pytest.raises(UsageError, match=r"adding/T=10/np/torch/seed=3: fused=1 must be true or false"):
        _ = Trial("adding", 10, "np", "torch", "cpu", {**DEFAULTS, "fused": 1}, 3).settings
    assert Settings(optimizer="sgd", momentum=0.0).sgd_momentum() == (0.0, False)  # Nesterov needs momentum


def test_adding_a_search_key_changes_no_other_draw():
    base = {"learning_rate": {"log_uniform": [1e-3, 1e-1]}}
    wider = {**base, "hidden_size": {"log_uniform_int": [4, 64]}, "batch_size": {"choice": [8, 16]}}
    for k in range(5):
        assert sample(base, 0, "adding", 10, k)["learning_rate"] == sample(wider, 0, "adding", 10, k)["learning_rate"]


def test_more_seeds_keep_the_trials_already_planned():
    one = {t.id for t in plan(small_suite(replicates=1))}
    two = {t.id for t in plan(small_suite(replicates=2))}
    assert one < two and len(two) == 2 * len(one)


def test_settings_that_cannot_change_a_trial_do_not_change_its_id():
    fused = {t.id: t for t in plan(small_suite())}
    generic = {t.id: t for t in plan(small_suite(training={"max_steps": 10, "fused": False}))}
    shared = set(fused) & set(generic)
    assert {fused[i].variant for i in shared} == {"rnn", "np", "v"} - {"rnn", "np"}  # only v has no kernel
    xla = {t.id for t in plan(small_suite(training={"max_steps": 10, "xla": True}))}
    torch_ids = {i for i, t in fused.items() if t.framework == "torch"}
    assert torch_ids <= xla and not ({i for i, t in fused.items() if t.framework == "tf"} & xla)


@pytest.mark.parametrize("training, needle", [
    ({"learning_rate": float("nan")}, "learning_rate=nan"), ({"learning_rate": float("inf")}, "learning_rate=inf"),
    ({"momentum": 1.5}, "momentum=1.5"), ({"clip_norm": float("nan")}, "clip_norm=nan"),
])  # fmt: skip
def test_non_finite_or_out_of_range_settings_are_refused(training, needle):
    with pytest.raises(UsageError, match=needle):
        small_suite(training=training)


@pytest.mark.parametrize("changes, needle", [
    ({"search_seed": "x"}, "search_seed = 'x'"), ({"search_seed": -1}, "search_seed = -1"),
    ({"time_limit": True}, "time_limit = True"),
    ({"search": {"learning_rate": {"log_uniform": [1e-3, float("nan")]}}}, "learning_rate"),
    ({"search": {"learning_rate": {"log_uniform": [0, 1]}}}, r"\(need 0 < low <= high, finite: a log range\)"),
    # a plain range is not told about logs
    ({"search": {"learning_rate": {"uniform": [0.03, 0.001]}}},
     r"uniform \[0.03, 0.001\] is impossible \(need low <= high, both finite\)"),
])  # fmt: skip
def test_malformed_suite_settings_are_refused(changes, needle):
    with pytest.raises(UsageError, match=needle):
        small_suite(**changes)


def test_a_missing_suite_file_is_named():
    with pytest.raises(UsageError, match="suite file /nonexistent/x.toml does not exist"):
        load_suite("/nonexistent/x.toml")


# --- keys that would be silently ignored ----------------------------------------------------------------
@pytest.mark.parametrize("changes, needles", [
    ({"lengths": {"adding": [5], "delayed_recall": [4], "addin": [5]}}, ["[lengths] addin", "'adding'"]),
    ({"lengths": {"adding": [5], "delayed_recall": [4], "copy": [5]}}, ["[lengths] copy", "does not list"]),
    ({"overrides": {"adition": {"max_steps": 5}}}, ["[overrides.adition]", "'adding'"]),
    ({"overrides": {"copy": {"max_steps": 5}}}, ["[overrides.copy]", "does not list"]),
    ({"baseline": "gru"}, ["baseline = 'gru'", "np, rnn, v"]),
    ({"search": {"modules": {"choice": [2, 4]}}}, ["[search] modules", "clockwork"]),
])  # fmt: skip
def test_keys_naming_what_the_suite_does_not_list_are_refused(changes, needles):
    with pytest.raises(UsageError) as e:
        small_suite(**changes)
    for needle in needles + ["test.toml"]:
        assert needle in str(e.value)
    if "lengths" in changes or "overrides" in changes:
        assert "adding, delayed_recall" in str(e.value)  # the tasks the suite lists


def test_narrowing_keeps_the_tables_of_tasks_narrowed_away():
    suite = small_suite(overrides={"delayed_recall": {"max_steps": 5}}).narrowed(tasks=["adding"], variants=["rnn"])
    assert {t.task for t in plan(suite)} == {"adding"}


# --- plan size ------------------------------------------------------------------------------------------
def test_plan_size_is_the_length_of_the_plan():
    s = small_suite()
    assert plan_size(s) == len(plan(s)) == 3 * 3 * 3 * 2 * 2


def test_a_plan_over_the_limit_is_refused_before_any_trial_is_built(monkeypatch):
    import harness.suites.suite

    def no_sampling(*args):
        raise AssertionError("the plan was materialised")

    monkeypatch.setattr(harness.suites.suite, "sample", no_sampling)
    with pytest.raises(UsageError) as e:
        plan(small_suite(trials=100_000_000))
    message = str(e.value)
    for needle in ["test.toml", "3,600,000,000 trials", "100,000,000 configuration", f"{MAX_TRIALS:,}", "--trials"]:
        assert needle in message, message


def test_the_plan_limit_is_inclusive_and_narrowing_gets_under_it(monkeypatch):
    import harness.suites.suite

    s = small_suite()
    monkeypatch.setattr(harness.suites.suite, "MAX_TRIALS", len(plan(s)))
    assert len(plan(s)) == harness.suites.suite.MAX_TRIALS
    with pytest.raises(UsageError, match="over the limit"):
        plan(small_suite(replicates=3))
    assert plan(small_suite(replicates=3).narrowed(replicates=2))


def test_seeds_is_the_old_name_of_replicates_and_both_together_are_refused():
    data = {"name": "t", "tasks": ["adding"], "variants": ["lstm"], "lengths": {"adding": [5]}, "seeds": 3}
    assert parse_suite(data, "old.toml").replicates == 3
    with pytest.raises(UsageError, match="replicates or its old name seeds"):
        parse_suite({**data, "replicates": 2}, "both.toml")


def test_the_statistics_table_is_validated_and_defaults_to_the_documented_plan():
    from harness.suites.analysis_plan import AnalysisPlan

    assert small_suite().statistics == AnalysisPlan()
    s = small_suite(statistics={"primary": "solved", "test": "welch", "correction": "bh", "family": "block"})
    assert (s.statistics.primary, s.statistics.test, s.statistics.correction) == ("solved", "welch", "bh")
    with pytest.raises(UsageError, match=r"unknown \[statistics\] test 'wilcoxon'.*paired"):
        small_suite(statistics={"test": "wilcoxon"})
    with pytest.raises(UsageError, match="unknown statistics key 'alfa'.*Did you mean 'alpha'"):
        small_suite(statistics={"alfa": 0.01})
    with pytest.raises(UsageError, match=r"alpha = 1.5 must be a number in \(0, 1\)"):
        small_suite(statistics={"alpha": 1.5})


def test_a_recorded_suite_keeps_its_analysis_plan():
    """The report tests a store's suite by the [statistics] table its run recorded, not today's file."""
    from harness.report.build import RecordedSuite

    text = 'variants = ["v", "nfg"]\n[statistics]\nprimary = "solved"\ncorrection = "bh"\n'
    recorded = RecordedSuite.parse("old", text)
    assert (recorded.statistics.primary, recorded.statistics.correction, recorded.baseline) == ("solved", "bh", "v")
    assert RecordedSuite.parse("older", 'variants = ["v"]\n').statistics == AnalysisPlan()


def test_a_recorded_analysis_plan_that_cannot_be_read_is_named_in_the_report_notes(tmp_path):
    """A store edited by hand can hold a [statistics] table the run would have refused: the report uses
    the default plan and says so, rather than fail or silently test by another plan."""
    from harness.report.build import RecordedSuite, load
    from harness.store.database import Store
    from tests.synthetic_store import write_synthetic_store

    bad = 'variants = ["v", "rnn"]\n[statistics]\ntest = "wilcoxon"\n'
    recorded = RecordedSuite.parse("edited", bad)
    assert recorded.statistics == AnalysisPlan() and "'wilcoxon'" in recorded.problem
    assert RecordedSuite.parse("fine", 'variants = ["v"]\n').problem is None
    assert "not valid TOML" in RecordedSuite.parse("broken", "variants = [").problem

    path = write_synthetic_store(tmp_path / "s.sqlite", variants=("v", "rnn"), tasks={"adding": (10,)},
                                 frameworks=("torch",), trials_per_cell=4, failures=False)  # fmt: skip
    with Store(path) as store:
        store.start_run("synthetic", ["rnn-bench", "run", "synthetic"], {}, suite_text=bad)
    data = load(path, suite="synthetic")
    assert data.plan == AnalysisPlan()
    assert any("'wilcoxon'" in n and "default statistics plan" in n for n in data.notes), data.notes


def test_the_comparisons_export_says_when_the_recorded_plan_cannot_be_read(tmp_path, capsys):
    from harness.cli.main import main
    from harness.store.database import Store
    from tests.synthetic_store import write_synthetic_store

    path = write_synthetic_store(tmp_path / "s.sqlite", variants=("v", "rnn"), tasks={"adding": (10,)},
                                 frameworks=("torch",), trials_per_cell=4, failures=False)  # fmt: skip
    with Store(path) as store:
        store.start_run("synthetic", ["rnn-bench", "run"], {}, suite_text='variants = ["v"]\n[statistics]\nalpha = 2\n')
    assert main(["export", "--store", str(path), "--comparisons", "--suite", "synthetic", "-o",
                 str(tmp_path / "c.csv")]) == 0  # fmt: skip
    assert "alpha = 2 must be a number in (0, 1)" in capsys.readouterr().err
