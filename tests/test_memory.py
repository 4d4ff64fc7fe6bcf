"""What a plan needs in memory (``harness.run.memory``): counted step sizes, populations split to fit,
and a refusal, before anything is stored, of a trial that cannot fit even alone."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.run import memory
from harness.run.memory import BYTES_PER_FLOAT, bytes_per_float, fit_to_memory, floats_per_step, job_bytes
from harness.trials.protocol import check_hparams
from harness.trials.trial import Trial


def _job(variant: str, members: int, hidden: int = 16, batch: int = 8, length: int = 20, framework: str = "torch"):
    hp = check_hparams({"hidden_size": hidden, "batch_size": batch})
    return [Trial("adding", length, variant, framework, "cpu", hp, seed) for seed in range(members)]


def test_a_step_is_counted_float_by_float():
    """rnn: x W, h R, their sum, + b and tanh, H floats each per sequence; nothing else."""
    rnn = registry().variant("rnn")
    assert [floats_per_step(rnn, h) for h in (4, 16, 64)] == [20, 80, 320]


def test_the_matrix_memory_of_mlstm_is_counted_as_h_squared():
    mlstm, np_lstm = registry().variant("mlstm"), registry().variant("np")
    assert 3.5 < floats_per_step(mlstm, 64) / floats_per_step(mlstm, 32) < 4.0  # H² dominates
    assert floats_per_step(np_lstm, 64) == 2 * floats_per_step(np_lstm, 32)  # an LSTM's is linear in H
    assert floats_per_step(mlstm, 64) > 2 * 64 * 64


def test_a_jobs_bytes_are_its_training_steps_or_one_evaluation_step_whichever_is_larger():
    """Training keeps members × batch × L steps; evaluation holds one step of up to EVAL_BATCH sequences;
    each member's parameters with their gradients and Adam's moments come on top."""
    weights = memory.PARAMETER_BYTES * (2 * 16 + 16 * 16 + 16)  # rnn at I = 2 (adding), H = 16: W, R, b
    long = _job("rnn", 4, hidden=16, batch=64, length=1000)
    assert job_bytes(long) == pytest.approx(4 * (64 * 1000 * 80 * bytes_per_float("torch", "rnn") + weights))
    short = _job("rnn", 4, hidden=16, batch=8, length=5)  # validation and test sets of 512 and 1024
    assert job_bytes(short) == pytest.approx(4 * (1024 * 80 * bytes_per_float("torch", "rnn") + weights))
    assert job_bytes(_job("rnn", 4, framework="tf")) > job_bytes(_job("rnn", 4))  # TensorFlow keeps more


def test_a_population_too_large_is_halved_until_it_fits_and_keeps_every_trial():
    job = _job("mlstm", 16, hidden=64, batch=64, length=100)
    one = job_bytes(job[:1])
    fitted = fit_to_memory([job], workers=2, available=int(2 * 4.5 * one / memory.USABLE_SHARE))
    assert [len(j) for j in fitted] == [4, 4, 4, 4]  # 16 -> 8 -> 4: four fit in a worker's 4.5 trials' share
    assert [t.id for j in fitted for t in j] == [t.id for t in job]
    assert fit_to_memory([job], workers=1, available=10 * 2**40) == [job]  # plenty: unchanged


def test_a_trial_that_cannot_fit_alone_is_refused_by_name():
    job = _job("mlstm", 2, hidden=256, batch=64, length=1000)
    with pytest.raises(UsageError) as info:
        fit_to_memory([job], workers=2, available=8 * 2**30)
    text = str(info.value)
    assert "2 planned trial(s) would not fit in memory even alone" in text
    assert "adding/T=1000/mlstm/torch/seed=0 (hidden_size 256, batch_size 64): about" in text
    assert "--workers" in text and "Nothing was run or stored" in text


@pytest.mark.parametrize("variant", ["np", "mlstm"])
def test_above_the_probed_size_a_steps_floats_are_extrapolated_by_their_power_of_h(variant, monkeypatch):
    """Above PROBE_HIDDEN the step is not run (it would allocate H × H weights in the driver): its floats
    grow from the largest probed size by the power of H measured there, 1 for an LSTM, ~2 for mLSTM."""
    v = registry().variant(variant)
    counted = floats_per_step(v, 256)
    monkeypatch.setattr(memory, "PROBE_HIDDEN", 64)
    assert floats_per_step(v, 256) == pytest.approx(counted, rel=0.1)


def test_a_hidden_size_of_a_hundred_million_is_refused_by_name_without_allocating_it():
    """A user's hidden_size = 100000000: refused in milliseconds, naming it (the probe used to try to
    allocate its 71 PiB of weights and end the dry run with a traceback)."""
    with pytest.raises(UsageError, match=r"hidden_size 100000000, batch_size 8\): about"):
        fit_to_memory([_job("np", 1, hidden=100_000_000)], workers=1, available=10 * 2**40)
    assert job_bytes(_job("np", 1, hidden=30_000)) > memory.PARAMETER_BYTES * 4 * 30_000**2  # weights dominate


def test_a_run_that_cannot_fit_is_refused_before_its_store_exists(tmp_path, monkeypatch):
    from harness.run.runner import run_suite
    from harness.suites.suite import load_suite

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    suite = load_suite("smoke").narrowed(frameworks=["torch"], tasks=["adding"], variants=["rnn"])
    store = tmp_path / "results.sqlite"
    with pytest.raises(UsageError, match="would not fit in memory"):
        run_suite(suite, store, workers=1, progress=False)
    assert not store.exists()


def test_trials_already_stored_are_not_refused(tmp_path, monkeypatch):
    """Only what is left to do is sized: a plan whose large trials were all run elsewhere goes through."""
    from harness.run import runner
    from harness.store.database import StoredTrial
    from harness.suites.suite import load_suite, plan

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    suite = load_suite("smoke").narrowed(frameworks=["torch"], tasks=["adding"], variants=["rnn"])
    done = {t.id: StoredTrial("ok", 0.0, None, None) for t in plan(suite)}  # None: no fingerprint to compare
    monkeypatch.setattr(runner, "_stored", lambda path: done)
    monkeypatch.setattr(runner.Store, "stored", lambda self: done)
    summary = runner.run_suite(suite, tmp_path / "results.sqlite", workers=1, progress=False)
    assert summary.already_done == len(done) and summary.to_run == 0


def test_a_measured_variant_gets_its_ratio_with_a_margin_and_a_plugin_the_largest():
    measured = memory.MEASURED_BYTES_PER_FLOAT
    assert bytes_per_float("torch", "np") == pytest.approx(memory.MARGIN * measured["torch"]["np"])
    assert bytes_per_float("torch", "my_plugin_cell") == BYTES_PER_FLOAT["torch"] == max(
        memory.MEASURED_BYTES_PER_FLOAT["torch"].values())
    assert bytes_per_float("jax", "np") == max(BYTES_PER_FLOAT.values())  # no measurement at all: the largest
    assert set(memory.MEASURED_BYTES_PER_FLOAT["tf"]) == set(registry().variants)  # the whole catalogue measured
    scans = memory.MEASURED_SCAN_BYTES_PER_FLOAT
    assert bytes_per_float("tf", "mlstm", scanned=True) == pytest.approx(memory.MARGIN * scans["tf"]["mlstm"])
    assert bytes_per_float("tf", "my_plugin_cell", scanned=True) == max(scans["tf"].values())
    from harness.scan import LINEAR_FORMS

    assert set(scans["torch"]) == set(scans["tf"]) == set(LINEAR_FORMS)  # every linear form measured


def test_what_numpy_returns_as_plain_arrays_is_counted_too():
    """``np.concatenate`` (ops.concat) returns a plain array: it is counted, once, like a ufunc's result."""
    from harness.variant import Variant

    class Halves(Variant):
        id = "halves"

        def parameter_shapes(self, input_size, hidden_size):
            return {"W1": (input_size, hidden_size // 2), "W2": (input_size, hidden_size // 2)}

        def step(self, ops, p, x, state):
            h = ops.concat([ops.matmul(x, p["W1"]), ops.matmul(x, p["W2"])])  # H/2 + H/2, then H
            return h, (h,)

    assert floats_per_step(Halves(), 8) == 16


def test_a_scanned_job_is_counted_from_its_linear_form():
    """mLSTM's chunkwise form holds L × L products per chunk, not an H × H memory per step: its training
    estimate is far below the loop's, and a plan the loop cannot fit goes through where the job scans."""
    from harness.run.memory import floats_of_linear_form

    mlstm = registry().variant("mlstm")
    per_step, alive = floats_of_linear_form(mlstm, 64, 1000)
    assert per_step < floats_per_step(mlstm, 64) / 5
    assert 5 * 64 * 1000 < alive < per_step * 1000  # every step's q, k, v, h... alive at once, not every chunk's
    job = _job("mlstm", 2, hidden=64, batch=64, length=1000)
    assert job_bytes(job, "on") < job_bytes(job, "off") * 0.6  # its evaluation, not its training, is the peak
    assert job_bytes(job, "auto") == job_bytes(job, "on")  # mLSTM's form was measured faster on a CPU
    one_scanned = int(job_bytes(job[:1], "on") / memory.USABLE_SHARE) + 1
    with pytest.raises(UsageError):
        fit_to_memory([job], workers=1, available=one_scanned)
    assert fit_to_memory([job], workers=1, available=one_scanned, scan="on") == [job[:1], job[1:]]


def test_the_peak_counts_what_is_alive_at_once_not_what_was_ever_allocated():
    memory._Counting.reset()
    before = memory._Counting.live
    x = np.ones(100).view(memory._Counting)
    for _ in range(10):
        y = x * 2.0  # the previous y is freed as this one is bound
    del y
    assert memory._Counting.allocated == 1100 and memory._Counting.peak - before == 300  # x, y and the next y
    del x
    assert memory._Counting.live == before


def test_a_runs_scan_choice_decides_what_its_plan_is_sized_by(tmp_path, monkeypatch):
    """The run sizes its jobs by the path they will take: memory for mLSTM's scans but not for its loops
    refuses ``--scan off`` and runs ``--scan auto``."""
    from harness.run.runner import run_suite
    from harness.suites.suite import load_suite, plan

    suite = load_suite("smoke").narrowed(frameworks=["torch"], tasks=["adding"], variants=["mlstm"])
    trials = plan(suite)
    scanned, looped = (max(job_bytes([t], scan) for t in trials) for scan in ("on", "off"))
    assert looped > 1.2 * scanned
    monkeypatch.setattr(memory, "available_bytes", lambda: int(1.1 * scanned / memory.USABLE_SHARE))
    with pytest.raises(UsageError, match="would not fit in memory"):
        run_suite(suite, tmp_path / "off.sqlite", workers=1, progress=False, scan="off")
    summary = run_suite(suite, tmp_path / "auto.sqlite", workers=1, progress=False, scan="auto")
    assert summary.to_run == len(trials) and summary.counts["ok"] == len(trials)
