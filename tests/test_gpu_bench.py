"""benchmarks/gpu_bench.py on the CPU, a tiny grid: every (variant, population, compile mode, workers) row
is measured and plausible, a compiled population trains as the eager one does, and a device that cannot
run ends in exit 2 with a message."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")
ROOT = Path(__file__).resolve().parents[1]


def test_the_benchmark_measures_every_row_of_a_tiny_grid_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.csv"
    argv = [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--device", "cpu", "--variants", "rnn,v",
            "--populations", "2", "--compile", "off,eager", "--workers-per-gpu", "1,2", "--length", "3",
            "--hidden", "8", "--batch", "4", "--steps", "2", "--budget", "100", "--out", str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [(r["variant"], r["compile"], r["workers"]) for r in rows] == [
        (v, c, w) for w in ("1", "2") for v in ("rnn", "v") for c in ("off", "eager")
    ]
    assert all(r["error"] == "" for r in rows), rows
    for r in rows:  # trials per hour at 100 steps: 3600 / (ms x 100 / 1000) per worker, summed
        ms, workers = float(r["ms/trial-step"]), int(r["workers"])
        assert 0 < ms < 1000
        assert float(r["trials/hour"]) >= workers * 3600 / (ms * 100 / 1000) * 0.999  # ms is the slowest worker's
    assert "trials/hour" in done.stdout and "rnn" in done.stdout


def test_a_device_that_cannot_run_is_a_usage_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    argv = [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--device", "cuda", "--variants", "rnn",
            "--populations", "2", "--workers-per-gpu", "1", "--compile", "off"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2 and "could not run on cuda" in done.stderr and "Traceback" not in done.stderr


def test_a_compiled_population_trains_as_the_eager_one():
    """The compiled path (on HoistingOps, TorchDynamo's tracing) gives the eager path's losses and parameters
    after three steps, to float32 rounding (the sums are added in another order than FusingOps' fused ones)."""
    import torch

    from harness.backends import torch_population as tp
    from harness.cell.model import init_model_params
    from harness.plugins.registry import registry
    from harness.trials.protocol import Settings

    task, variant = registry().task("adding"), registry().variant("v")
    settings = [Settings(hidden_size=h, batch_size=4) for h in (6, 8)]
    params = [init_model_params(variant, task, s.hidden_size, seed, lag=3) for seed, s in enumerate(settings)]
    models = {mode: tp.Population(variant, task, settings, params, compile=mode) for mode in (None, "eager")}
    rng = np.random.default_rng(0)
    for _ in range(3):
        batches = [task.generate(3, 4, rng) for _ in settings]
        x = np.stack([b.inputs for b in batches])
        y = np.stack([b.targets for b in batches])
        losses = {mode: m.train_step(x, y) for mode, m in models.items()}
        np.testing.assert_allclose(losses["eager"], losses[None], rtol=1e-5)
    for k in models[None].params:
        torch.testing.assert_close(models["eager"].params[k], models[None].params[k], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="compile mode 'fast' is not one of"):
        tp.Population(variant, task, settings, params, compile="fast")
