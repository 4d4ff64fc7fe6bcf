"""``rnn-bench speed``: its rows, its reference, its formats and its refusals (tiny sizes: a few seconds)."""

from __future__ import annotations

import csv
import importlib.util
import io

import pytest

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
TINY = ("--hidden-sizes", "4", "--length", "3", "--batch-size", "2", "--steps", "1")


@needs_torch
def test_speed_rows_have_the_reference_and_one_row_per_variant_and_population(bench):
    run = bench.run("speed", "--variants", "rnn,gru", "--populations", "1,2", "--frameworks", "torch", *TINY,
                    "--format", "csv")  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert list(rows[0]) == ["variant", "framework", "device", "hidden_size", "population", "path",
                             "ms_per_trial_step", "trials_per_hour", "ratio_to_fused", "mflop_per_trial_step",
                             "gflop_per_s", "shape_gflop_per_s", "peak_gflop_per_s", "of_peak"]  # fmt: skip
    got = [(r["variant"], r["population"], r["path"]) for r in rows]
    assert got == [("np", "1", "fused"), ("rnn", "1", "fused"), ("rnn", "2", "population"),
                   ("gru", "1", "generic"), ("gru", "2", "population")]  # fmt: skip
    reference = float(rows[0]["ms_per_trial_step"])
    assert rows[0]["ratio_to_fused"] == "1.00"
    for r in rows:
        ms = float(r["ms_per_trial_step"])
        assert ms > 0 and float(r["ratio_to_fused"]) == pytest.approx(ms / reference, rel=0.01, abs=0.006)
        assert float(r["trials_per_hour"]) == pytest.approx(3.6e6 / (ms * 1000), rel=0.01)
        achieved = float(r["mflop_per_trial_step"]) * 1e6 / (ms / 1000) / 1e9
        assert float(r["gflop_per_s"]) == pytest.approx(achieved, rel=0.01)
        assert float(r["of_peak"]) == pytest.approx(float(r["gflop_per_s"]) / float(r["peak_gflop_per_s"]), rel=0.02)
    assert len({r["peak_gflop_per_s"] for r in rows}) == 1  # one peak per framework and run
    # a fused row counts its generic path's products: rnn's solo count is the tanh RNN's formula
    # (tests/test_roofline.py) at H = 4, T = 3, B = 2 on adding (I = 2, O = 1)
    assert float(rows[1]["mflop_per_trial_step"]) == pytest.approx(848 / 1e6)


@needs_torch
def test_speed_table_is_aligned_text(bench):
    run = bench.run("speed", "--variants", "rnn", "--populations", "2", "--frameworks", "torch", *TINY)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:5] == ["variant", "framework", "device", "hidden_size", "population"]
    assert [line.split()[0] for line in lines[1:]] == ["np", "rnn"]


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("torch") is None,
                    reason="needs TensorFlow and PyTorch")  # fmt: skip
def test_a_tensorflow_row_has_its_own_products_and_the_count_of_the_same_step(bench):
    run = bench.run("speed", "--variants", "rnn", "--populations", "1", "--frameworks", "tf", *TINY, "--format", "csv")
    assert run.returncode == 0, run.stderr
    rnn = [r for r in csv.DictReader(io.StringIO(run.stdout)) if r["variant"] == "rnn"][0]
    assert float(rnn["mflop_per_trial_step"]) == pytest.approx(848 / 1e6)  # PyTorch's count of the same step
    assert float(rnn["peak_gflop_per_s"]) > 0 and float(rnn["shape_gflop_per_s"]) > 0


@pytest.mark.parametrize("argv, says", [
    (("--variants", "nope"), "unknown variant 'nope' (from --variants)"),
    (("--frameworks", "jax"), "unknown framework 'jax' (from --frameworks)"),
    (("--populations", "0,4"), "--populations 0,4 is impossible"),
    (("--hidden-sizes", "-1"), "--hidden-sizes -1 is impossible"),
])  # fmt: skip
def test_bad_speed_arguments_exit_2_naming_the_value(cli, argv, says):
    code, out, err = cli("speed", *argv)
    assert code == 2 and says in err and "Traceback" not in err


@needs_torch
def test_speed_on_cuda_without_a_gpu_exits_2(cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, out, err = cli("speed", "--device", "cuda", "--frameworks", "torch", "--variants", "rnn", *TINY)
    assert code == 2 and "--device cuda: torch cannot use a GPU here" in err


@needs_torch
def test_speed_measures_a_linear_form_on_its_loop_and_as_a_scan(bench):
    run = bench.run("speed", "--variants", "min_gru,rnn", "--populations", "1,2", "--frameworks", "torch", *TINY,
                    "--format", "csv")  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = [(r["variant"], r["population"], r["path"]) for r in csv.DictReader(io.StringIO(run.stdout))]
    assert got == [("np", "1", "fused"), ("min_gru", "1", "generic"), ("min_gru", "1", "scan"),
                   ("min_gru", "2", "population"), ("min_gru", "2", "population-scan"),
                   ("rnn", "1", "fused"), ("rnn", "2", "population")]  # fmt: skip
    off = bench.run("speed", "--variants", "min_gru", "--populations", "1", "--frameworks", "torch", *TINY,
                    "--scan", "off", "--format", "csv")  # fmt: skip
    assert [r["path"] for r in csv.DictReader(io.StringIO(off.stdout))] == ["fused", "generic"]


def test_scan_on_keeps_the_loop_of_a_variant_without_a_linear_form():
    from harness.cli.speed import _jobs

    jobs = _jobs(["rnn", "min_gru"], [4], [1, 2], 3, 2, 1, True, "cpu", scan="on")
    got = [(j["variant_id"], j["members"], j["scan"]) for j in jobs]
    assert got == [("np", 0, False), ("rnn", 0, False), ("rnn", 2, False), ("min_gru", 0, True), ("min_gru", 2, True)]
