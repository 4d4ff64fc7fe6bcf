"""Replicate seeds (``replicates = k``): seed noise against hand-computed answers (harness/analysis/replicates.py),
the frameworks' equivalence check (harness/analysis/equivalence.py), the planner keeping a configuration's
replicates in one population job, and tiny real runs with ``replicates = 2`` through the local executor
(populations of 1 and 4) and a local Dask cluster."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis import study as A
from harness.analysis.equivalence import framework_equivalence, metric_scales, solved_pairs
from harness.analysis.replicates import SEED_NOISE_COLUMNS, one_way_random_effects, seed_noise, seed_noise_by_task
from harness.run.scheduling import make_jobs
from harness.suites.suite import SEED_STRIDE, load_suite, plan, split_seed


def trials(rows: list[dict]) -> pd.DataFrame:
    """A trials frame as the store gives it, prepared; ``k`` and ``r`` give the seed k + r * SEED_STRIDE."""
    base = {
        "task": "adding", "length": 10, "variant": "v", "framework": "torch", "status": "ok", "metric": "mse",
        "higher_is_better": 0, "baseline_metric": 1 / 6, "val_metric": np.nan, "val_loss": np.nan,
        "test_metric": np.nan, "solved": 0, "steps_to_solve": None, "steps_per_second": 100.0, "param_count": 100,
        "device": "cpu",
    }  # fmt: skip
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        k, rep = r.pop("k", 0), r.pop("r", 0)
        row = {**base, "seed": k + rep * SEED_STRIDE, **r}
        row.setdefault("trial_id", f"t{i:03d}")
        row.setdefault("hparams", json.dumps({"learning_rate": 1e-3 * (1 + k), "hidden_size": 32}))
        out.append(row)
    return A.prepare(pd.DataFrame(out))


def cell(values: dict[int, list[float]], **extra) -> list[dict]:
    """Rows of one cell: configuration k -> its replicates' test metrics."""
    return [{"k": k, "r": r, "test_metric": y, **extra} for k, ys in values.items() for r, y in enumerate(ys)]


# ------------------------------------------------------------------------------------------------------
# seed noise
# ------------------------------------------------------------------------------------------------------
def test_seed_noise_is_near_zero_where_configurations_differ_and_seeds_barely_do():
    values = {0: [0.01, 0.0101], 1: [0.08, 0.0801], 2: [0.16, 0.1599]}
    out = seed_noise(trials(cell(values)))
    assert list(out.columns) == SEED_NOISE_COLUMNS and len(out) == 1
    row = out.iloc[0]
    assert (row["configurations"], row["trials"], row["n0"]) == (3, 6, 2.0)
    assert row["seed_share"] < 1e-5 and row["icc"] > 1 - 1e-5
    assert row["seed_variance"] == pytest.approx(np.mean([0.0001**2 / 2] * 3), rel=1e-9)  # each pair: d^2 / 2
    assert row["p"] < 1e-6
    assert out["seed_share"].dtype == np.float64


def test_seed_noise_is_one_where_configurations_are_alike_and_only_seeds_differ():
    values = {k: [0.02, 0.09, 0.05] for k in range(4)}  # every configuration the same spread of seeds
    row = seed_noise(trials(cell(values))).iloc[0]
    assert row["ms_between"] == pytest.approx(0.0, abs=1e-15)
    assert row["seed_share"] == 1.0 and row["icc"] == 0.0 and row["configuration_variance"] == 0.0
    assert row["seed_variance"] == pytest.approx(np.var([0.02, 0.09, 0.05], ddof=1), rel=1e-12)
    assert row["total_variance"] == pytest.approx(row["seed_variance"], rel=1e-12)


def test_the_decomposition_matches_the_anova_and_the_icc_formula():
    """Unbalanced groups against statsmodels' one-way ANOVA; balanced against ICC(1,1)."""
    groups = [np.array([1.0, 2.0, 4.0]), np.array([5.0, 7.0]), np.array([3.0, 3.5, 2.5, 4.0])]
    got = one_way_random_effects(groups)
    sm = pytest.importorskip("statsmodels.formula.api")
    from statsmodels.stats.anova import anova_lm

    frame = pd.DataFrame({"y": np.concatenate(groups), "g": np.repeat([0, 1, 2], [3, 2, 4])})
    table = anova_lm(sm.ols("y ~ C(g)", data=frame).fit())
    assert got["ms_between"] == pytest.approx(table.loc["C(g)", "mean_sq"], rel=1e-12)
    assert got["ms_within"] == pytest.approx(table.loc["Residual", "mean_sq"], rel=1e-12)
    assert got["F"] == pytest.approx(table.loc["C(g)", "F"], rel=1e-12)
    assert got["p"] == pytest.approx(table.loc["C(g)", "PR(>F)"], rel=1e-9)
    N, n = 9, np.array([3, 2, 4])
    n0 = (N - (n**2).sum() / N) / 2
    assert got["n0"] == pytest.approx(n0)
    s2c = (got["ms_between"] - got["ms_within"]) / n0
    assert got["configuration_variance"] == pytest.approx(s2c)
    assert got["seed_share"] == pytest.approx(got["ms_within"] / (s2c + got["ms_within"]))

    balanced = [np.array([1.0, 1.4]), np.array([2.0, 2.2]), np.array([0.5, 1.1]), np.array([3.0, 2.9])]
    b = one_way_random_effects(balanced)
    icc11 = (b["ms_between"] - b["ms_within"]) / (b["ms_between"] + (2 - 1) * b["ms_within"])
    assert b["icc"] == pytest.approx(icc11, rel=1e-12)
    assert b["variance"] == pytest.approx(np.var(np.concatenate(balanced), ddof=1))
    assert one_way_random_effects(balanced) == b  # deterministic


def test_seed_noise_groups_by_search_index_and_counts_what_it_uses():
    rows = (
        cell({0: [0.1, 0.2], 1: [0.3, 0.5], 2: [0.4]})  # configuration 2 has one replicate: not used
        + [{"k": 3, "r": 0, "status": "failed"}, {"k": 3, "r": 1, "status": "failed"}]  # no metric: not used
        + cell({0: [0.1, 0.2], 1: [0.3, 0.4]}, variant="gru")
        + cell({0: [0.1, 0.2], 1: [0.3]}, variant="rnn")  # one configuration with 2 replicates: no row
        + cell({0: [0.1, 0.2], 1: [0.3, 0.5]}, framework="tf")  # the same seeds in TF: a cell of its own
    )
    df = trials(rows)
    out = seed_noise(df)
    expanded = df.drop(columns="hparams").assign(**{"hp.learning_rate": [json.loads(h)["learning_rate"]
                                                                         for h in df["hparams"]]})  # fmt: skip
    pd.testing.assert_frame_equal(seed_noise(expanded), out)  # hp.* columns when there is no hparams JSON
    assert [tuple(r) for r in out[["variant", "framework", "configurations", "trials"]].itertuples(index=False)] == [
        ("gru", "torch", 2, 4), ("v", "tf", 2, 4), ("v", "torch", 2, 4)]  # fmt: skip
    v = out[(out["variant"] == "v") & (out["framework"] == "torch")].iloc[0]
    # hand: means 0.15, 0.4, grand 0.275; MS_B = 2 (0.125^2 + 0.125^2) / 1 = 0.0625; MS_W = (0.005 + 0.02) / 2
    assert v["ms_between"] == pytest.approx(0.0625) and v["ms_within"] == pytest.approx(0.0125)
    assert v["configuration_variance"] == pytest.approx((0.0625 - 0.0125) / 2)
    assert v["seed_share"] == pytest.approx(0.0125 / (0.025 + 0.0125))
    # two suites whose k-th draws differ never pool: another learning rate is another configuration
    other = [{**r, "hparams": json.dumps({"learning_rate": 0.5, "hidden_size": 32})} for r in cell({0: [9.0]})]
    same = seed_noise(trials(cell({0: [0.1, 0.2], 1: [0.3, 0.5]}) + other)).iloc[0]
    assert (same["configurations"], same["trials"]) == (2, 4)


def test_seed_noise_counts_configurations_whose_replicates_split_on_solved():
    rows = [
        {"k": 0, "r": 0, "test_metric": 0.001, "solved": 1}, {"k": 0, "r": 1, "test_metric": 0.2},  # split
        {"k": 1, "r": 0, "test_metric": 0.001, "solved": 1}, {"k": 1, "r": 1, "test_metric": 0.002, "solved": 1},
        {"k": 2, "r": 0, "test_metric": 0.17}, {"k": 2, "r": 1, "status": "timeout"},  # 1 finished: not counted
        {"k": 3, "r": 0, "test_metric": 0.17}, {"k": 3, "r": 1, "test_metric": 0.3, "status": "diverged"},
    ]  # fmt: skip
    row = seed_noise(trials(rows)).iloc[0]
    assert (row["solved_configurations"], row["solved_split"]) == (3, 1)
    assert (row["configurations"], row["trials"]) == (3, 6)


def test_seed_noise_without_replicates_or_rows_is_empty():
    assert seed_noise(trials(cell({0: [0.1], 1: [0.2], 2: [0.3]}))).empty
    assert list(seed_noise(pd.DataFrame()).columns) == SEED_NOISE_COLUMNS
    assert seed_noise_by_task(seed_noise(pd.DataFrame())).empty


def test_constant_cells_have_no_share_and_the_task_summary_pools_cells():
    rows = (cell({0: [0.1, 0.1], 1: [0.1, 0.1]}, variant="rnn")  # every metric equal: no share
            + cell({0: [0.01, 0.0101], 1: [0.08, 0.0801]}, variant="v")
            + cell({0: [0.02, 0.09], 1: [0.02, 0.09]}, variant="gru")
            + cell({0: [0.1, 0.2]}, length=20) + cell({0: [0.1, 0.2], 1: [0.1, 0.3]}, length=20))  # fmt: skip
    noise = seed_noise(trials(rows))
    rnn = noise[noise["variant"] == "rnn"].iloc[0]
    assert rnn["total_variance"] == 0 and math.isnan(rnn["seed_share"]) and math.isnan(rnn["p"])
    by_task = seed_noise_by_task(noise)
    t10 = by_task[by_task["length"] == 10].iloc[0]
    assert (t10["cells"], t10["constant_cells"]) == (2, 1)
    v = noise[noise["variant"] == "v"]["seed_share"].iloc[0]
    assert t10["min_seed_share"] == v and t10["max_seed_share"] == 1.0
    assert t10["median_seed_share"] == pytest.approx((v + 1.0) / 2)
    t20 = by_task[by_task["length"] == 20].iloc[0]
    assert t20["cells"] == 1


# ------------------------------------------------------------------------------------------------------
# frameworks: an equivalence check of two implementations
# ------------------------------------------------------------------------------------------------------
def test_framework_equivalence_counts_pairs_within_the_tolerance_of_the_metrics_span():
    both = cell({0: [0.05], 1: [0.1], 2: [0.12], 3: [0.0]}, solved=0)
    tf = [{**r, "framework": "tf", "trial_id": f"tf{i}"} for i, r in enumerate(both)]
    tf[0]["test_metric"] += 1e-4  # within 1e-3 x (1/6)
    tf[1]["test_metric"] += 5e-3  # not
    tf[3]["solved"], tf[3]["test_metric"] = 1, 0.001  # the tipping point: another outcome
    acc = [{**r, "task": "delayed_recall", "metric": "accuracy", "higher_is_better": 1, "baseline_metric": 0.125,
            "test_metric": 0.5, "trial_id": f"a{fw}{i}", "framework": fw} for fw in ("torch", "tf")
           for i, r in enumerate(cell({0: [0.0]}))]  # fmt: skip
    df = trials(both + tf + acc)
    scales = metric_scales(df)
    assert scales == {("adding", 10): pytest.approx(1 / 6), ("delayed_recall", 10): pytest.approx(0.875)}
    out = framework_equivalence(A.framework_pairs(df), scales, 1e-3, solved_pairs(df))
    add = out[out["task"] == "adding"].iloc[0]
    assert (add["pairs"], add["within"], add["solved_pairs"], add["solved_agree"]) == (4, 2, 4, 3)
    assert add["tolerance"] == pytest.approx(1e-3 / 6)
    assert add["max_abs_difference"] == pytest.approx(5e-3)
    assert add["max_relative_difference"] == pytest.approx(5e-3 * 6)
    assert 0 < add["within_low"] < add["within_share"] == 0.5
    rec = out[out["task"] == "delayed_recall"].iloc[0]
    assert (rec["pairs"], rec["within"], rec["max_abs_difference"]) == (1, 1, 0.0)
    with pytest.raises(ValueError):
        framework_equivalence(A.framework_pairs(df), scales, -1.0)


# ------------------------------------------------------------------------------------------------------
# planning: a configuration's replicates in one population job
# ------------------------------------------------------------------------------------------------------
def _smoke(replicates: int, trials: int = 5):
    return load_suite("smoke").narrowed(tasks=["adding"], frameworks=["torch", "tf"], variants=["gru", "lstm"],
                                        trials=trials, replicates=replicates)  # fmt: skip


@pytest.mark.parametrize("population", [1, 2, 3, 4, 16, None])
def test_a_configurations_replicates_share_a_population_job(population):
    planned = plan(_smoke(2))
    jobs = make_jobs(planned, population)
    assert sorted(t.id for job in jobs for t in job) == sorted(t.id for t in planned)  # each trial once
    job_of = {t.id: i for i, job in enumerate(jobs) for t in job}
    replicates: dict[tuple, list] = {}
    for t in planned:
        replicates.setdefault((t.variant, t.framework, split_seed(t.seed)[0]), []).append(t)
    assert len(replicates) == 2 * 2 * 5 and all(len(r) == 2 for r in replicates.values())
    for (variant, framework, k), (r0, r1) in replicates.items():
        assert split_seed(r0.seed) == (k, 0) and split_seed(r1.seed) == (k, 1)
        assert r0.hparams == r1.hparams and r0.id != r1.id
        if population == 1 or (variant == "np" and framework == "torch" and population is None):
            assert job_of[r0.id] != job_of[r1.id]  # solo (np's fused kernel trains alone by default)
        else:
            assert job_of[r0.id] == job_of[r1.id]
    assert all(len(job) <= (population or 16) for job in jobs)


def test_more_replicates_than_a_population_fill_whole_populations():
    jobs = make_jobs(plan(_smoke(3, trials=2).narrowed(frameworks=["tf"], variants=["gru"])), 2)
    assert [[split_seed(t.seed) for t in job] for job in jobs] == [
        [(0, 0), (0, 1)], [(0, 2)], [(1, 0), (1, 1)], [(1, 2)]]  # fmt: skip


def test_replicate_zero_is_the_plan_of_one_replicate():
    one, two = plan(_smoke(1)), plan(_smoke(2))
    assert len(two) == 2 * len(one)
    assert [t.id for t in two if split_seed(t.seed)[1] == 0] == [t.id for t in one]
    assert {split_seed(t.seed)[1] for t in two} == {0, 1}


# ------------------------------------------------------------------------------------------------------
# end to end: replicates = 2 through every executor, solo and in populations
# ------------------------------------------------------------------------------------------------------
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")


def replicate_suite(path: Path) -> Path:
    """adding at T=2, 10 steps, two configurations x two replicates of two variants: 8 trials, PyTorch."""
    from test_runner import write_suite

    write_suite(path, ["gru", "v"], trials=2)
    path.write_text(path.read_text().replace("trials = 2\n", "trials = 2\nreplicates = 2\n", 1))
    return path


def stored(store: Path) -> pd.DataFrame:
    from harness.store.database import Store

    with Store(store, read_only=True) as s:
        return s.trials_frame()


def check_replicates(store: Path, suite: Path) -> pd.DataFrame:
    """Every planned (configuration, replicate) stored once, with its seed; replicates differ."""
    df = stored(store)
    planned = plan(load_suite(str(suite)))
    assert len(planned) == 8
    assert sorted(df["trial_id"]) == sorted(t.id for t in planned)
    assert set(df["status"]) == {"ok"}
    seeds = sorted(zip(df["variant"], df["seed"]))
    assert seeds == sorted((v, k + r * SEED_STRIDE) for v in ("gru", "v") for k in range(2) for r in range(2))
    for (variant, k), d in df.assign(k=[split_seed(s)[0] for s in df["seed"]]).groupby(["variant", "k"]):
        assert len(d) == 2 and len(set(d["hparams"])) == 1
        a, b = d["test_metric"]
        assert np.isfinite([a, b]).all() and a != b, f"{variant} configuration {k}: replicates agree"
    noise = seed_noise(A.prepare(df))
    assert list(noise["variant"]) == ["gru", "v"] and set(noise["configurations"]) == {2}
    assert set(noise["trials"]) == {4}
    return df


@needs_torch
@pytest.mark.slow
@pytest.mark.torch
def test_two_replicates_run_solo_and_in_populations_with_the_local_executor(bench, tmp_path):
    suite = replicate_suite(tmp_path / "replicates.toml")
    metrics = {}
    for population in ("1", "4"):
        store = tmp_path / f"pop{population}.sqlite"
        run = bench.run("run", suite, "--no-progress", "--workers", "1", "--population", population,
                        "--store", store)  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "8 trials planned" in run.stdout, run.stdout
        if population == "4":
            assert "as 2 job(s) (populations of up to 4)" in run.stdout, run.stdout
        df = check_replicates(store, suite)
        assert set(df["population"]) == {int(population)}  # at 4: each variant's 2 x 2 replicates in one job
        metrics[population] = dict(zip(df["trial_id"], df["test_metric"]))
    for tid, value in metrics["1"].items():
        assert metrics["4"][tid] == pytest.approx(value, rel=1e-4)  # a population trains as solo, up to rounding


@needs_torch
@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="Dask is not installed")
def test_two_replicates_run_on_a_local_dask_cluster(bench, tmp_path):
    suite = replicate_suite(tmp_path / "replicates.toml")
    store = tmp_path / "dask.sqlite"
    run = bench.run("run", suite, "--executor", "dask", "--workers", "1", "--population", "4", "--no-progress",
                    "--store", store, timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "a local Dask cluster of 1 worker(s)" in run.stdout
    check_replicates(store, suite)
