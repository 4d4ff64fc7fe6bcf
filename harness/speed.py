"""Training-step cost per trial, solo and in populations: the measurement behind choosing a population
size and behind preferring a fused kernel (``harness.population``). One framework per process (call it
in a worker, or a fresh interpreter): it runs ``backend.setup(device)``, one thread.

``step_ms(framework, variant_id, members)`` is the median CPU time of this process for one training step
divided by the number of trials it advances (CPU time, not wall time: on a busy machine it does not
count the time other processes hold the core; with one thread and an idle machine the two agree):
``members = 0`` is the solo model (``build_model``: fused when the variant has a kernel and ``fused``),
``members = M`` a population of M. ``speed_rows`` tabulates it against the
framework's fused solo LSTM (``np``), the issue's yardstick.
"""

from __future__ import annotations

import importlib
import statistics
import time
from typing import Any

import numpy as np

FUSED_REFERENCE = "np"  # torch.nn.LSTM / keras.layers.LSTM


def step_ms(framework: str, variant_id: str, members: int, T: int = 50, batch: int = 32, hidden: int = 32,
            steps: int = 10, task_id: str = "adding", fused: bool = True, device: str = "cpu") -> float:  # fmt: skip
    """Median milliseconds per trial-step over ``steps`` steps, after two warm-up steps (allocation,
    tracing)."""
    from harness.backends import load_backend
    from harness.model import init_model_params
    from harness.population import ENGINES
    from harness.protocol import check_hparams
    from harness.registry import registry

    backend = load_backend(framework)
    backend.setup(device)
    reg = registry()
    task, variant = reg.task(task_id), reg.variant(variant_id)
    hp = check_hparams({"hidden_size": hidden, "batch_size": batch, "fused": fused})
    count = max(members, 1)
    params = [init_model_params(variant, task, hidden, seed, lag=T) for seed in range(count)]
    if members == 0:
        model: Any = backend.build_model(variant, task, hp, params[0], device)
    else:
        model = importlib.import_module(ENGINES[framework]).Population(variant, task, [hp] * members, params, device)
    rng = np.random.default_rng(0)
    # CPU time on a CPU (a busy machine's other processes do not count); wall time on a GPU, where the
    # step's loss (a Python float) waits for the device, so the wall clock covers the kernels
    clock = time.process_time if device == "cpu" else time.perf_counter
    times = []
    for k in range(steps + 2):
        batches = [task.generate(T, batch, rng) for _ in range(count)]
        inputs, targets = np.stack([b.inputs for b in batches]), np.stack([b.targets for b in batches])
        t0 = clock()
        if members == 0:
            model.train_step(inputs[0], targets[0])
        else:
            model.train_step(inputs, targets)
        if k >= 2:
            times.append(clock() - t0)
    return 1000 * statistics.median(times) / count


def speed_rows(framework: str, variant_ids: list[str], sizes: tuple[int, ...] = (1, 4, 16), **kw: Any) -> list[dict]:
    """One row per (variant, population size): ms per trial-step and its ratio to the fused solo LSTM;
    ``members`` 0 rows are each variant's solo model."""
    reference = step_ms(framework, FUSED_REFERENCE, 0, **kw)
    rows = []
    for vid in variant_ids:
        for members in (0, *sizes):
            ms = step_ms(framework, vid, members, **kw)
            rows.append({"variant": vid, "members": members, "ms": ms, "vs_fused_lstm": ms / reference})
    return rows


def best_size(rows: list[dict], tolerance: float = 0.05) -> int:
    """The population size to use by default: the smallest measured ``members`` whose median cost over
    the variants is within ``tolerance`` of the cheapest (a smaller population leaves more groups to run
    in parallel, and pads less)."""
    sizes = sorted({r["members"] for r in rows if r["members"] > 0})
    if not sizes:
        raise ValueError("no population sizes measured (rows with members > 0)")
    cost = {m: statistics.median(r["ms"] for r in rows if r["members"] == m) for m in sizes}
    cheapest = min(cost.values())
    return next(m for m in sizes if cost[m] <= cheapest * (1 + tolerance))


def fused_solo(rows: list[dict]) -> set[str]:
    """Variants whose solo model (``members`` 0, fused where it has a kernel) costs less per trial than
    every population measured: ``population_groups``'s ``fused_solo``."""
    from harness.registry import registry

    out = set()
    for vid in {r["variant"] for r in rows}:
        solo = [r["ms"] for r in rows if r["variant"] == vid and r["members"] == 0]
        together = [r["ms"] for r in rows if r["variant"] == vid and r["members"] > 0]
        if solo and together and registry().variant_class(vid).fused_kernel and min(solo) < min(together):
            out.add(vid)
    return out
