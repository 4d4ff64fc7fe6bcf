"""How far a training step is from what this machine can compute: ``rnn-bench speed``'s last columns.

    mflop_per_trial_step  the floating-point operations of the matrix products of one training step,
                          forward and backward, per trial (``step_flops``): counted, not modelled, by
                          ``torch.utils.flop_counter`` while PyTorch runs the row's path at the row's shapes,
                          so it holds for every variant, a user's too. A fused row counts its generic
                          path (the same products). Elementwise operations (gate nonlinearities, the
                          elementwise scans, Adam's update) are not counted: they are bound by memory traffic
                          and call overhead, not by arithmetic, and are part of what the gap is made of.
    gflop_per_s           mflop_per_trial_step / ms_per_trial_step: what the step achieves
    shape_gflop_per_s     a lone product at the step's shape (``step_shape``: the LSTM's recurrent product,
                          population × (B×H)·(H×4H)) timed in the row's framework: what the products alone
                          would achieve at this size, call overhead included
    peak_gflop_per_s      a product at ``LARGE`` (1024³, one thread) in the row's framework: what one core
                          of this machine can do (the roofline's flat part)
    of_peak               gflop_per_s / peak_gflop_per_s

Timing follows ``harness.diagnostics.speed``: CPU time of this process on a CPU (one thread), wall time on a
GPU, the median of several timed batches after a warm-up.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from harness.diagnostics.speed import training_step
from harness.workers.job import JobContext, guarded

LARGE = (1, 1024, 1024, 1024)  # (members, m, k, n): large enough that one core runs at its peak
GATES = 4  # the step shape's product is the LSTM's recurrent one: H inputs to 4 gates of H units
MIN_BATCH_SECONDS = 0.02  # a timed batch repeats the product until it lasts about this long
BATCHES = 5  # timed batches; the median is reported


def step_flops(variant_id: str, members: int, T: int = 50, batch: int = 32, hidden: int = 32,
               task_id: str = "adding", device: str = "cpu", scan: bool = False) -> float:  # fmt: skip
    """Matrix-product FLOPs of one training step per trial, counted in PyTorch (see the module docstring);
    the generic path (not a fused kernel, whose products flop_counter cannot see) unless ``scan``."""
    from harness.backends import load_backend

    step, count = training_step("torch", variant_id, members, T, batch, hidden, task_id, False, device, scan)
    return load_backend("torch").count_flops(step()) / count


def step_shape(members: int, batch: int, hidden: int) -> tuple[int, int, int, int]:
    """``(members, m, k, n)`` of the product that stands for a step: population × (B×H)·(H×4H)."""
    return (max(members, 1), batch, hidden, GATES * hidden)


def matmul_gflops(framework: str, shape: tuple[int, int, int, int], device: str = "cpu") -> float:
    """GFLOP/s of the product ``shape`` = (members, m, k, n) in ``framework``: 2·members·m·k·n operations
    per product over its median time (``MIN_BATCH_SECONDS`` batches, ``BATCHES`` of them)."""
    from harness.backends import load_backend

    backend = load_backend(framework)
    backend.setup(device)
    product = backend.matmul(*shape, device=device)
    clock = time.process_time if device == "cpu" else time.perf_counter
    product()  # warm-up: allocation, kernel choice
    repeats, seconds = 1, 0.0
    while seconds < MIN_BATCH_SECONDS:  # how many products make a batch long enough to time
        t0 = clock()
        for _ in range(repeats):
            product()
        seconds = clock() - t0
        repeats = repeats if seconds >= MIN_BATCH_SECONDS else repeats * 4
    times = []
    for _ in range(BATCHES):
        t0 = clock()
        for _ in range(repeats):
            product()
        times.append((clock() - t0) / repeats)
    members, m, k, n = shape
    return 2 * members * m * k * n / max(statistics.median(times), 1e-12) / 1e9


@dataclass(frozen=True)
class FlopJob:
    """``step_flops(**case)`` for each case, in a PyTorch worker; ``{"flops": ...}`` or ``{"error": ...}``."""

    cases: tuple[dict, ...]
    framework: str = "torch"  # the count is PyTorch's, whichever framework's rows it is for

    def run(self, context: JobContext) -> list[dict]:
        return [guarded(lambda c=case: {"flops": step_flops(**c)}) for case in self.cases]


@dataclass(frozen=True)
class MatmulJob:
    """``matmul_gflops(framework, shape)`` for each shape, in a worker of ``framework``."""

    framework: str
    shapes: tuple[tuple[int, int, int, int], ...]
    device: str = "cpu"

    def run(self, context: JobContext) -> list[dict]:
        return [guarded(lambda s=shape: {"gflops": matmul_gflops(self.framework, s, self.device)})
                for shape in self.shapes]  # fmt: skip
