"""The export's promises (docs/export.md): a configuration id that pairs PyTorch with TensorFlow, the
replicate and search index of each seed, typed columns that survive CSV and Parquet, and the learning
curves with their trials' identifying columns."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest

from harness.plugins.registry import registry
from harness.report.export import export_format, hparam_columns
from harness.store.database import Store
from harness.suites.suite import SEED_STRIDE, parse_suite, plan, split_seed
from harness.training.solo import TrialResult
from harness.trials.trial import Trial, configuration_id

#: 2 configurations x 2 seeds x 2 variants (one without forget_bias) x 2 frameworks = 16 trials
SUITE = {"tasks": ["adding"], "variants": ["lstm", "gru"], "frameworks": ["torch", "tf"], "trials": 2, "seeds": 2,
         "lengths": {"adding": [2]}, "training": {"max_steps": 20},
         "search": {"forget_bias": {"choice": [1.0, "chrono"]},
                    "learning_rate": {"choice": [0.01, 0.001]}}}  # fmt: skip


def result(trial: Trial) -> TrialResult:
    """A made-up result: test MSE by framework and seed (so a pairing mistake shows), solved on seed 0."""
    mse = 0.01 * (1 + trial.seed % 7) * (1.0 if trial.framework == "torch" else 1.1)
    metrics = {"loss": mse, "mse": mse}
    return TrialResult(status="ok", steps=20, best_step=20, solved=trial.seed == 0, validation=metrics,
                       test_best=metrics, test_last=metrics, wall_seconds=1.0, param_count=10,
                       curve=[(0, "validation", 0.2, 0.2), (10, "train", 0.15, math.nan),
                              (10, "validation", mse, mse)])  # fmt: skip


@pytest.fixture
def store(tmp_path):
    """A store of SUITE's 16 trials, every one finished with a 3-point curve."""
    trials = plan(parse_suite(dict(SUITE), "test"))
    assert {t.hparams["forget_bias"] for t in trials if t.variant == "np"} == {1.0, "chrono"}
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.add_plan("test", trials)
        for t in trials:
            s.record("run-1", "test", t, registry().task(t.task), result(t))
    return path, trials


def export(cli, store, tmp_path, name, *flags) -> pd.DataFrame:
    """Run ``rnn-bench export -o name`` and read the file back as docs/export.md says."""
    target = tmp_path / name
    code, out, err = cli("export", "-o", target, "--store", store, *flags)
    assert code == 0, err
    if target.suffix == ".parquet":
        return pd.read_parquet(target)
    return pd.read_csv(target, parse_dates=["finished_at"])


# --- the configuration id and the seed's parts ----------------------------------------------------
def test_configuration_id_is_shared_by_the_frameworks_and_nothing_else():
    trials = plan(parse_suite(dict(SUITE), "test"))
    by_id = pd.DataFrame([(t.configuration_id, t.framework, t.variant, t.seed) for t in trials],
                         columns=["cid", "framework", "variant", "seed"])  # fmt: skip
    assert (by_id.groupby("cid")["framework"].agg(lambda f: ",".join(sorted(f))) == "tf,torch").all()
    assert by_id.groupby("cid")[["variant", "seed"]].nunique().eq(1).all().all()
    assert by_id["cid"].nunique() == len(trials) // 2
    # TensorFlow's hyperparameters carry `xla`, PyTorch's do not: the trial ids differ, the configuration's not
    tf, torch = (next(t for t in trials if (t.framework, t.seed, t.variant) == (f, 0, "np")) for f in ("tf", "torch"))
    assert "xla" in tf.hparams and "xla" not in torch.hparams and tf.id != torch.id
    assert tf.configuration_id == torch.configuration_id


def test_configuration_id_ignores_the_device_and_fused_but_not_what_is_trained():
    base = Trial("adding", 10, "np", "torch", "cpu", {"learning_rate": 0.01, "fused": True}, 3)
    same = Trial("adding", 10, "np", "tf", "cuda", {"learning_rate": 0.01, "fused": False, "xla": True}, 3)
    assert configuration_id(base) == configuration_id(same)
    for other in (Trial("adding", 10, "np", "torch", "cpu", {"learning_rate": 0.02, "fused": True}, 3),
                  Trial("adding", 10, "np", "torch", "cpu", {"learning_rate": 0.01, "fused": True}, 4),
                  Trial("adding", 20, "np", "torch", "cpu", {"learning_rate": 0.01, "fused": True}, 3),
                  Trial("adding", 10, "v", "torch", "cpu", {"learning_rate": 0.01, "fused": True}, 3)):  # fmt: skip
        assert configuration_id(other) != configuration_id(base)


def test_configuration_id_of_a_stored_row_is_the_planned_trials():
    """The export computes it from the stored JSON: whole floats (1.0) must stay floats on the way."""
    t = Trial("adding", 10, "np", "torch", "cpu", {"forget_bias": 1.0, "hidden_size": 8}, 0)
    back = Trial.from_json(t.to_json())
    assert back.configuration_id == t.configuration_id


def test_split_seed_inverts_the_planners_seeds():
    trials = plan(parse_suite(dict(SUITE), "test"))
    assert sorted({split_seed(t.seed) for t in trials}) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert split_seed(7 + 3 * SEED_STRIDE) == (7, 3) and split_seed(12) == (12, 0)


# --- the trials export --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["trials.csv", "trials.parquet"])
def test_torch_pairs_with_tf_by_configuration_id(cli, store, tmp_path, name):
    path, trials = store
    df = export(cli, path, tmp_path, name)
    assert len(df) == len(trials) and list(df.columns[:4]) == ["trial_id", "configuration_id", "search_index",
                                                               "replicate"]  # fmt: skip
    pairs = df.pivot(index="configuration_id", columns="framework", values="test_metric")
    assert len(pairs) == len(trials) // 2 and pairs.notna().all().all()
    assert (pairs["tf"] / pairs["torch"]).to_numpy() == pytest.approx(1.1)  # the made-up results' ratio
    assert sorted(set(zip(df["search_index"], df["replicate"]))) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert (df["seed"] == df["search_index"] + df["replicate"] * SEED_STRIDE).all()


@pytest.mark.parametrize("name", ["trials.csv", "trials.parquet"])
def test_columns_keep_their_types_through_the_file(cli, store, tmp_path, name):
    path, _ = store
    df = export(cli, path, tmp_path, name)
    assert pd.api.types.is_bool_dtype(df["solved"]) and pd.api.types.is_bool_dtype(df["higher_is_better"])
    assert set(df["solved"]) == {True, False} and not df["higher_is_better"].any()
    assert isinstance(df["finished_at"].dtype, pd.DatetimeTZDtype) and str(df["finished_at"].dt.tz) == "UTC"
    for col in ("length", "seed", "steps", "replicate", "search_index", "hp.hidden_size", "hp.batch_size"):
        assert pd.api.types.is_integer_dtype(df[col]), (col, df[col].dtype)
    for col in ("test_metric", "hp.learning_rate", "hp.forget_bias"):
        assert pd.api.types.is_float_dtype(df[col]), (col, df[col].dtype)
    lstm, gru = df[df["variant"] == "np"], df[df["variant"] == "gru"]
    assert set(lstm["hp.forget_bias_init"]) == {"constant", "chrono"}
    assert (lstm["hp.forget_bias"].isna() == (lstm["hp.forget_bias_init"] == "chrono")).all()
    assert set(lstm["hp.forget_bias"].dropna()) == {1.0}
    assert gru["hp.forget_bias"].isna().all() and gru["hp.forget_bias_init"].isna().all()
    if name.endswith(".parquet"):  # every column typed, also those the fixture leaves all empty (error, ...)
        assert [c for c in df.columns if df[c].dtype == object] == []
        assert pd.api.types.is_float_dtype(df["steps_per_second"]) and df["error"].isna().all()


def test_finished_at_is_the_stored_time_in_utc(cli, store, tmp_path):
    path, _ = store
    with Store(path, read_only=True) as s:
        stored = s.trials_frame(expand_hparams=False).set_index("trial_id")["finished_at"]
    for name in ("t.csv", "t.parquet"):
        df = export(cli, path, tmp_path, name).set_index("trial_id")
        seconds = (df["finished_at"] - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        assert seconds.reindex(stored.index).to_numpy() == pytest.approx(stored.to_numpy(), abs=1e-5)


def test_csv_writes_times_as_iso_8601_utc_and_booleans_as_words(cli, store):
    path, _ = store
    code, out, err = cli("export", "-o", "-", "--store", path)
    assert code == 0, err
    raw = pd.read_csv(io.StringIO(out), dtype=str)
    assert raw["finished_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").all()
    assert set(raw["solved"]) == {"True", "False"}


def test_hparam_columns_have_one_type_each():
    df = hparam_columns([
        {"a": True, "n": 3, "x": 0.5, "w": "adam", "fb": 1.0, "forget_bias": 3.0},
        {"a": False, "n": 4, "x": 1, "w": "sgd", "fb": "chrono"},
    ])  # fmt: skip
    assert str(df["hp.a"].dtype) == "boolean" and str(df["hp.n"].dtype) == "Int64"
    assert df["hp.x"].dtype == "float64" and list(df["hp.w"]) == ["adam", "sgd"]
    assert list(df["hp.fb"].isna()) == [False, True] and list(df["hp.fb_choice"]) == ["number", "chrono"]
    # forget_bias gets its scheme column even where no trial used chrono; a variant without it: missing
    assert df["hp.forget_bias"].tolist()[0] == 3.0 and pd.isna(df["hp.forget_bias"][1])
    assert df["hp.forget_bias_init"][0] == "constant" and pd.isna(df["hp.forget_bias_init"][1])


# --- the curves export ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["curves.csv", "curves.parquet"])
def test_curves_export_one_row_per_trial_split_and_step(cli, store, tmp_path, name):
    path, trials = store
    target = tmp_path / name
    code, out, err = cli("export", "--curves", "-o", target, "--store", path)
    assert code == 0, err
    assert f"wrote {3 * len(trials)} curve points of {len(trials)} trials to {target}" in err
    df = pd.read_parquet(target) if name.endswith(".parquet") else pd.read_csv(target)
    assert list(df.columns) == ["trial_id", "configuration_id", "search_index", "replicate", "task", "length",
                                "variant", "framework", "device", "seed", "metric_name", "split", "step", "loss",
                                "metric"]  # fmt: skip
    assert len(df) == 3 * len(trials) and not df.duplicated(["trial_id", "split", "step"]).any()
    assert set(df["metric_name"]) == {"mse"} and pd.api.types.is_integer_dtype(df["step"])
    first = df[df["trial_id"] == trials[0].id]
    assert list(zip(first["split"], first["step"])) == [("train", 10), ("validation", 0), ("validation", 10)]
    assert first["metric"].isna().tolist() == [True, False, False]
    # joined to the trials export on trial_id, each point finds its trial's configuration
    trials_df = export(cli, path, tmp_path, "trials" + target.suffix)
    both = df.merge(trials_df[["trial_id", "configuration_id", "test_metric"]], on="trial_id", suffixes=("", "_t"))
    assert len(both) == len(df) and (both["configuration_id"] == both["configuration_id_t"]).all()
    final = both[(both["split"] == "validation") & (both["step"] == 10)]
    assert final["metric"].to_numpy() == pytest.approx(final["test_metric"].to_numpy())


def test_curves_of_an_empty_store_are_a_header(cli, tmp_path):
    path = tmp_path / "empty.sqlite"
    Store(path).close()
    code, out, err = cli("export", "--curves", "-o", "-", "--store", path)
    assert code == 0, err
    assert out.strip().split(",")[:2] == ["trial_id", "configuration_id"] and len(out.strip().splitlines()) == 1


# --- the format ---------------------------------------------------------------------------------------
def test_format_follows_the_suffix_unless_given():
    assert export_format("a.parquet", None) == "parquet" and export_format("a.PQ", None) == "parquet"
    assert export_format("a.csv", None) == "csv" and export_format("a.txt", None) == "csv"
    assert export_format("-", None) == "csv" and export_format("a.txt", "parquet") == "parquet"


@pytest.mark.parametrize(("flags", "says"), [
    (["--format", "csv", "-o", "OUT.parquet"], "--format csv contradicts -o"),
    (["--format", "parquet", "-o", "-"], "-o - writes CSV to stdout"),
])  # fmt: skip
def test_contradicting_format_exits_2_and_writes_nothing(cli, store, tmp_path, flags, says):
    path, _ = store
    out_file = tmp_path / "OUT.parquet"
    code, out, err = cli("export", *[out_file if a == "OUT.parquet" else a for a in flags], "--store", path)
    assert code == 2 and says in err and "Traceback" not in err
    assert not out_file.exists()


# --- the comparisons export -------------------------------------------------------------------------
def _recorded(tmp_path, statistics: str) -> Path:
    """A synthetic store whose run recorded a suite file with ``statistics`` as its [statistics] table."""
    import sqlite3

    from synthetic_store import write_synthetic_store

    path = write_synthetic_store(tmp_path / "c.sqlite", tasks={"adding": (20,)}, variants=("v", "nfg", "rnn"),
                                 trials_per_cell=12, suite="synthetic")  # fmt: skip
    text = f'tasks = ["adding"]\nvariants = ["v", "nfg", "rnn"]\nbaseline = "v"\n\n[statistics]\n{statistics}\n'
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET suite_text = ?", (text,))
    return path


def test_comparisons_export_is_the_reports_comparisons_under_the_recorded_plan(cli, tmp_path):
    from harness.analysis.comparisons import COMPARISON_COLUMNS
    from harness.analysis.study import analyse
    from harness.suites.analysis_plan import AnalysisPlan

    path = _recorded(tmp_path, 'test = "welch"\nfamily = "block"')
    target = tmp_path / "comparisons.parquet"
    code, out, err = cli("export", "--comparisons", "--suite", "synthetic", "-o", target, "--store", path)
    assert code == 0, err
    df = pd.read_parquet(target)
    assert list(df.columns) == COMPARISON_COLUMNS and len(df) == 2 * 2 * 2  # 2 variants x 2 frameworks x 2 selections
    assert set(df.loc[df["selection"] == "all", "test"]) == {"welch"}  # the recorded plan, not the default
    assert df["paired"].dtype == "boolean" and df["family_size"].dtype == "Int64"
    with Store(path, create=False) as s:
        expected = analyse(s.trials_frame(), baseline="v", plan=AnalysisPlan(test="welch", family="block")).comparisons
    pd.testing.assert_series_equal(df["p_adjusted"], expected["p_adjusted"].reset_index(drop=True),
                                   check_names=False)  # fmt: skip
    assert df["shift_low"].notna().any() and df["solved_difference_high"].notna().all()


def test_suite_and_baseline_belong_to_the_comparisons_export(cli, store, tmp_path):
    path, _ = store
    code, out, err = cli("export", "--suite", "test", "-o", tmp_path / "t.csv", "--store", path)
    assert code == 2 and "--comparisons" in err and not (tmp_path / "t.csv").exists()
    code, out, err = cli("export", "--comparisons", "--curves", "-o", tmp_path / "t.csv", "--store", path)
    assert code == 2 and "not allowed with" in err
