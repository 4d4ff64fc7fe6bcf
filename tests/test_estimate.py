"""Plan-time estimates (harness.run.estimate): the cost model, the schedule, the store as a source of speeds,
and the dry run's time-limit warning."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from harness.run.estimate import FORWARD_SHARE, START_SECONDS, _schedule, estimate
from harness.trials.protocol import check_hparams
from harness.trials.trial import Trial


def trial(seed: int, length: int = 10, variant: str = "v", **hp) -> Trial:
    settings = {"max_steps": 100, "eval_every": 50, "batch_size": 32, "validation_size": 64, "test_size": 64, **hp}
    return Trial("adding", length, variant, "torch", "cpu", check_hparams(settings), seed)


def stored(variant: str = "v", population: int = 2, steps_per_second: float = 10.0, length: int = 10):
    """A trials frame with one trial of ``variant`` that trained at ``steps_per_second`` in a population."""
    return pd.DataFrame([{"task": "adding", "length": length, "variant": variant, "framework": "torch",
                          "device": "cpu", "steps_per_second": steps_per_second, "population": population}])


def test_list_scheduling_places_the_longest_first_on_the_free_worker():
    assert _schedule([3, 3, 2, 2, 2], 2) == 7  # 3+2+2 and 3+2: greedy, longest first
    assert _schedule([5, 1, 1], 2) == 5
    assert _schedule([1, 1, 1], 1) == 3
    assert _schedule([], 4) == 0


def test_a_job_costs_its_steps_and_evaluations_at_the_stored_speed():
    """One stored population of 2 at 10 steps/s: 0.05 s per trial-step, per time step 0.05 / L."""
    job = [trial(0), trial(1)]
    e = estimate([job], workers=1, time_limit=1e9, stored=stored())
    step = 1 / 10  # the population's step, two trials at once
    evals = 100 / 50 * 64 / 32 * FORWARD_SHARE + 2 * 64 / 32 * FORWARD_SHARE
    assert e.job_seconds == [pytest.approx(step * (100 + evals))]
    assert e.seconds == pytest.approx(e.job_seconds[0] + START_SECONDS["torch"])  # no worker started to measure
    assert e.start_seconds == {"torch": START_SECONDS["torch"]}
    assert e.source == {("torch", "v"): "store"}


def test_cost_grows_with_the_sequence_length_and_the_budget():
    base = estimate([[trial(0), trial(1)]], 1, 1e9, stored()).job_seconds[0]
    longer = estimate([[trial(0, length=40), trial(1, length=40)]], 1, 1e9, stored()).job_seconds[0]
    assert longer == pytest.approx(4 * base)
    bigger = estimate([[trial(0, max_steps=200), trial(1, max_steps=200)]], 1, 1e9, stored()).job_seconds[0]
    assert 1.9 * base < bigger < 2 * base  # the test-set evaluation does not double


def test_jobs_over_the_time_limit_are_named():
    short, long = [trial(0), trial(1)], [trial(2, max_steps=10_000), trial(3, max_steps=10_000)]
    e = estimate([short, long], workers=2, time_limit=60, stored=stored())
    assert [job for job, _ in e.over_limit] == [long]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
def test_dry_run_estimates_by_calibration_and_warns_of_timeouts(bench, tmp_path):
    from test_runner import write_suite

    suite = write_suite(tmp_path / "est.toml", ["v"], trials=2)
    dry = bench.run("run", suite, "--dry-run", "--time-limit", "0.001", "--store", tmp_path / "none.sqlite")
    assert dry.returncode == 0, dry.stderr
    assert "estimated time on this machine with" in dry.stdout and "from calibration" in dry.stdout
    assert "worker start-up torch" in dry.stdout and "docs/estimates.md" in dry.stdout
    assert "warning: 2 trial(s) of adding T=2 v (torch) would need up to about" in dry.stdout
    assert not (tmp_path / "none.sqlite").exists()


def test_warnings_name_each_cell_once_the_longest_first_and_count_the_rest():
    from harness.run.estimate import Estimate, describe

    over = [([trial(s, length=length)], 100.0 + length) for length in range(2, 14) for s in range(3)]
    lines = describe(Estimate(1e6, [], {("torch", "v"): "store"}, over, {"torch": 2.0}), workers=2, time_limit=60,
                     most=10)  # fmt: skip
    assert "about 12 days (278 h)" in lines[0] and "an upper bound where trials stop early" in lines[0]
    warnings = lines[1:]
    assert warnings[0].startswith("warning: 3 trial(s) of adding T=13 v (torch) would need up to about 113 s")
    assert "smaller --population" not in warnings[0]  # jobs of one trial: a smaller population cannot help
    assert len(warnings) == 11 and warnings[-1] == "warning: and 6 trial(s) of 2 more cell(s) over the time limit"


@pytest.mark.parametrize("scan, population, expected", [("auto", 1, True), ("auto", 4, True), ("off", 4, False),
                                                         ("on", 1, True)])  # fmt: skip
def test_calibration_measures_the_path_the_run_will_take(monkeypatch, scan, population, expected):
    """mLSTM's chunkwise form runs under ``auto`` in PyTorch on a CPU, solo or in a population; the dry run
    must calibrate that form, not the loop of steps (it once did: 15 h estimated for a 1.3 h suite)."""
    import harness.run.estimate as est

    asked: list[dict] = []
    monkeypatch.setattr(est, "_calibrate",
                        lambda fw, wanted: (asked.append(dict(wanted)) or [(1.0, 0.0)] * len(wanted), 1.0))  # fmt: skip
    jobs = [[trial(s, variant="mlstm") for s in range(population)], [trial(9, variant="np")]]
    est._costs(jobs, stored=None, scan=scan)
    by_variant = {key[1]: setting for key, setting in asked[0].items()}
    assert by_variant["mlstm"][3] is expected
    assert by_variant["np"][3] is False  # no linear form: always its loop


def test_a_population_is_calibrated_at_its_largest_hidden_size(monkeypatch):
    """Members are padded to the largest hidden size, so the population computes at that size: calibrating
    at the median underestimated greff (hidden sizes 16-64) by a third in PyTorch."""
    import harness.run.estimate as est

    asked: list[dict] = []
    monkeypatch.setattr(est, "_calibrate",
                        lambda fw, wanted: (asked.append(dict(wanted)) or [(1.0, 0.0)] * len(wanted), 1.0))  # fmt: skip
    est._costs([[trial(0, hidden_size=16), trial(1, hidden_size=20), trial(2, hidden_size=64)]], None)
    assert [setting[0] for setting in asked[0].values()] == [64]


def test_the_calibration_times_two_hidden_sizes_and_interpolates(monkeypatch):
    """Jobs of one variant whose largest hidden sizes are 16, 40 and 64: two cases are timed (16 and 64,
    1 and 5 ms), and 40 lies halfway between them."""
    import harness.run.estimate as est

    asked: list[dict] = []

    def calibrate(fw, wanted):
        asked.append(dict(wanted))
        return [(1.0 if setting[0] == 16 else 5.0, 0.0) for setting in wanted.values()], 1.0

    monkeypatch.setattr(est, "_calibrate", calibrate)
    jobs = [[trial(s, hidden_size=h)] for s, h in enumerate((16, 40, 64))]
    costs, _, _ = est._costs(jobs, None)
    assert sorted(setting[0] for setting in asked[0].values()) == [16, 64]
    per_ms = 1 / 1000 / est.CALIBRATION_LENGTH
    assert [costs[("torch", "v", 1, h)][0] / per_ms for h in (16, 40, 64)] == pytest.approx([1.0, 3.0, 5.0])


def _tf(task: str, T: int, members: int = 2, **hp) -> list[Trial]:
    return [Trial(task, T, "v", "tf", "cpu", check_hparams({"max_steps": 100, **hp}), seed) for seed in range(members)]


def test_setup_is_paid_per_job_on_training_and_held_out_lengths(monkeypatch):
    """A TensorFlow population pays the calibration's first-step setup twice at its training length and once
    at its held-out length and at each test length (its traces, each as long as what it unrolls); a solo
    model's symbolic loop pays what the calibration paid, once for training and once per prediction
    length; a continual task's held-out streams hold ten times as many strings."""
    import harness.run.estimate as est

    monkeypatch.setattr(est, "_calibrate", lambda fw, wanted: ([(0.0, 1000.0 * est.CALIBRATION_LENGTH)] * len(wanted),
                                                                3.0))  # fmt: skip
    e = estimate([_tf("adding", 10)], 1, 1e9)
    assert e.job_seconds == [pytest.approx(2 * 10 + 1 * 10)]  # 1 s per time step: no step cost at all
    assert e.start_seconds == {"tf": 3.0} and e.seconds == pytest.approx(30 + 3)
    reber = est.registry().task("continual_reber")
    held = est.held_out_length(reber, 2, 32)
    assert 5 * reber.seq_len(2) < held < 14 * reber.seq_len(2)  # streams of 10 T strings, padded
    s = _tf("continual_reber", 2)[0].settings
    expected = 2 * est.mean_sequence_length(reber, 2, s) + est.held_out_length(reber, 2, s.batch_size)
    assert estimate([_tf("continual_reber", 2)], 1, 1e9).job_seconds == [pytest.approx(expected)]
    ladder = _tf("adding", 10, test_lengths=[2, 4])
    assert estimate([ladder], 1, 1e9).job_seconds == [pytest.approx(2 * 10 + 10 * (1 + 2 + 4))]  # a trace each
    solo = _tf("adding", 50, members=1, test_lengths=[2, 4])
    calibration = est.CALIBRATION_LENGTH  # whatever T: the loop is traced once, as at calibration
    assert estimate([solo], 1, 1e9).job_seconds == [pytest.approx(calibration * (1 + 3))]


def test_the_dry_run_line_says_what_was_measured_and_what_assumed(monkeypatch):
    import harness.run.estimate as est

    from_store = est.describe(estimate([[trial(0), trial(1)]], 1, 1e9, stored()), 1, 1e9)[0]
    assert "measured: each step's speed, from store;" in from_store and "TensorFlow" not in from_store
    assert "assumed: worker start-up torch 2 s" in from_store
    monkeypatch.setattr(est, "_calibrate", lambda fw, wanted: ([(1.0, 1.0)] * len(wanted), 3.0))
    tf_job = [Trial("adding", 10, "v", "tf", "cpu", check_hparams({"max_steps": 100}), 0)]
    calibrated = est.describe(estimate([tf_job], 1, 1e9), 1, 1e9)[0]
    assert "measured: each step's speed, from calibration, TensorFlow's tracing, worker start-up tf 3 s;" in calibrated
    assert "assumed" not in calibrated


def test_evaluation_runs_on_the_held_out_length():
    """Validating a continual task costs its held-out streams' length, not its training sequences'."""
    import harness.run.estimate as est

    speed = stored().assign(task="continual_reber", length=2)
    cost = {n: estimate([[Trial("continual_reber", 2, "v", "torch", "cpu", check_hparams(
        {"max_steps": 100, "eval_every": 50, "batch_size": 32, "validation_size": n, "test_size": 64}), 0)]], 1, 1e9,
        speed.assign(population=1)).job_seconds[0] for n in (32, 64)}  # fmt: skip
    per_time_step = 1 / (10.0 * est.registry().task("continual_reber").seq_len(2))
    held = est.held_out_length(est.registry().task("continual_reber"), 2, 32)
    assert cost[64] - cost[32] == pytest.approx(per_time_step * 100 / 50 * 32 / 32 * FORWARD_SHARE * held)


def test_a_cell_timed_in_the_store_takes_its_stored_time_but_the_time_limit_check_keeps_the_budget():
    """A stored population of the same cell and size took 7 s (its longest member's wall time): the job is
    estimated at 7 s, its tracing, evaluation and early stopping included; a new one might still use the
    whole budget, so the time-limit check keeps the model's full-budget cost."""
    job = [trial(0), trial(1)]
    full = estimate([job], 1, 1e9, stored()).job_seconds[0]
    timed = pd.concat([stored().assign(wall_seconds=w, steps=50, status="ok", hparams='{"max_steps": 100}')
                       for w in (3.0, 7.0)])  # fmt: skip
    e = estimate([job], 1, time_limit=0.9 * full, stored=timed)
    assert e.job_seconds == [7.0] and e.learned_jobs == 1
    assert [j for j, _ in e.over_limit] == [job]
    other = estimate([[trial(0), trial(1), trial(2)]], 1, 1e9, stored=timed)  # another population size
    assert other.learned_jobs == 0
    solo = timed.assign(population=1)  # two solo jobs of the cell took 3 and 7 s: a third takes their mean
    assert estimate([[trial(5)]], 1, 1e9, stored=solo).job_seconds == [5.0]
