"""The Python API, for notebooks and for checking numerics.

    from harness import api
    api.tasks(), api.variants()                                  ids
    batch = api.make_batch("adding", seq_len=50, batch_size=4, seed=0)
    params = api.init_params("lstm", input_size=2, hidden_size=8, seed=0)
    h = api.run_cell("lstm", "torch", params, batch.inputs)       (B, L, H) numpy

``seq_len`` is the task's dependency length T (docs/tasks.md); the sequences are ``task.seq_len(T)`` long
(adding: T, copy: T + 20, delayed_recall: T + 2). ``run_cell`` computes in float64 when the inputs
are float64 (for numerical checks) and in float32 otherwise. Outside a benchmark run both frameworks
may be used from one process; the runner itself never mixes them in a worker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends import check_framework, load_backend
from harness.cell.contract import sizes_of
from harness.cell.model import init_rng
from harness.cell.unroll import check_params, unroll_numpy
from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.task import Batch


def tasks() -> list[str]:
    """The ids of every task."""
    return sorted(registry().tasks)


def variants(aliases: bool = False) -> list[str]:
    """The ids of every variant (and their aliases, if asked)."""
    reg = registry()
    return sorted(reg.variants) + (sorted(reg.aliases) if aliases else [])


def task_info(task: str) -> dict[str, Any]:
    """A task's declared metadata (sizes, loss placement, metric and direction, success threshold)."""
    return registry().task(task).describe()


def make_batch(task: str, seq_len: int, batch_size: int, seed: int) -> Batch:
    """A batch of ``task`` at dependency length ``seq_len`` (= T) from ``np.random.default_rng(seed)``:
    ``inputs`` (B, L, I) float32 and ``targets`` (adding (B,) float32; copy (B, L) int; delayed_recall (B,) int;
    the continual tasks (B, L, O + 1) float32, per-step targets and the mask: docs/tasks.md)."""
    return registry().task(task).batch(seq_len, batch_size, seed)


def init_params(variant: str, input_size: int, hidden_size: int, seed: int, lag: int | None = None,
                **hparams: Any) -> dict[str, np.ndarray]:  # fmt: skip
    """The contract's dict of float32 arrays (docs/variants.md), exactly as a trial with this seed starts its
    recurrent layer. ``hparams`` are the variant's own (e.g. ``forget_bias=3.0``, ``modules=4``);
    ``forget_bias="chrono"`` needs ``lag``, the task's T."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(f"{name}={value!r} is impossible; it must be an integer >= 1")
    cell = registry().variant(variant, **hparams)
    return cell.init_params(int(input_size), int(hidden_size), init_rng(seed), lag=lag)


def run_cell(variant: str, framework: str, params: dict[str, np.ndarray], inputs: np.ndarray, fused: bool = False,
             **hparams: Any) -> np.ndarray:  # fmt: skip
    """The hidden outputs h_1..h_L (B, L, H) of ``variant`` with ``params`` on ``inputs`` (B, L, I).

    ``framework`` is ``"torch"``, ``"tf"`` or ``"numpy"`` (the reference loop). ``fused=True`` uses the
    library kernel where the variant has one.
    """
    cell = registry().variant(variant, **hparams)
    inputs = np.asarray(inputs)
    if inputs.ndim != 3:
        raise UsageError(f"inputs must be (batch, length, input_size); got shape {inputs.shape}")
    input_size, hidden_size = sizes_of(cell, params)
    check_params(cell, params, input_size, hidden_size)
    if inputs.shape[2] != input_size or inputs.shape[1] < 1 or inputs.shape[0] < 1:
        raise UsageError(
            f"inputs of shape {inputs.shape} do not fit: the parameters are for input_size {input_size}, "
            f"so inputs must be (batch >= 1, length >= 1, {input_size})"
        )
    if framework == "numpy":
        dtype = np.float64 if inputs.dtype == np.float64 else np.float32
        return unroll_numpy(cell, {k: np.asarray(v, dtype) for k, v in params.items()}, inputs.astype(dtype))
    check_framework(framework)
    return load_backend(framework).run_cell(cell, params, inputs, fused=fused)
