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
                             "ms_per_trial_step", "trials_per_hour", "ratio_to_fused"]  # fmt: skip
    got = [(r["variant"], r["population"], r["path"]) for r in rows]
    assert got == [("np", "1", "fused"), ("rnn", "1", "fused"), ("rnn", "2", "population"),
                   ("gru", "1", "generic"), ("gru", "2", "population")]  # fmt: skip
    reference = float(rows[0]["ms_per_trial_step"])
    assert rows[0]["ratio_to_fused"] == "1.00"
    for r in rows:
        ms = float(r["ms_per_trial_step"])
        assert ms > 0 and float(r["ratio_to_fused"]) == pytest.approx(ms / reference, rel=0.01, abs=0.006)
        assert float(r["trials_per_hour"]) == pytest.approx(3.6e6 / (ms * 1000), rel=0.01)


@needs_torch
def test_speed_table_is_aligned_text(bench):
    run = bench.run("speed", "--variants", "rnn", "--populations", "2", "--frameworks", "torch", *TINY)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:5] == ["variant", "framework", "device", "hidden_size", "population"]
    assert [line.split()[0] for line in lines[1:]] == ["np", "rnn"]


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
