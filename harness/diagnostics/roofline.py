"""How far a training step is from what this machine can compute: ``rnn-bench speed``'s last columns.

    mflop_per_trial_step  the floating-point operations of the matrix products of one training step,
                          forward and backward, per trial (``step_flops``): counted, not modelled, by
                          ``torch.utils.flop_counter`` while PyTorch runs the row's path at the row's shapes
                          on the CPU, so it holds for every variant, a user's too, and for either framework
                          (the same products). A fused row counts its generic path's products. Elementwise
                          operations (gate nonlinearities, the elementwise scans, Adam's update) are not
                          counted: they are bound by memory traffic and call overhead, not by arithmetic,
                          and are part of what the gap is made of.
    gflop_per_s           mflop_per_trial_step / ms_per_trial_step: what the step achieves
    shape_gflop_per_s     an LSTM-shaped recurrent product at the row's batch B, hidden size H and population
                          (``step_shape``: population × (B×H)·(H×4H)), timed alone in the row's framework, in
                          a loop as a step runs its products (PyTorch: one dispatch each; TensorFlow: a traced
                          loop): what the products of a step of that size achieve
    peak_gflop_per_s      a product at ``LARGE[device]`` in the row's framework: on a CPU what one core does
                          (one thread, 1024³); on a GPU a 4096³ product, near what the device does in the
                          framework's default float32 (TensorFlow's is TF32 on Ampere and later; PyTorch's
                          is not, so the two frameworks' GPU peaks differ)
    of_peak               gflop_per_s / peak_gflop_per_s

Timing follows ``harness.diagnostics.speed.clock_for``: CPU time on a CPU, wall time on a GPU; each rate is
the median of ``BATCHES`` timed batches of products, each batch long enough to time and ending with one
wait for the device.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness.diagnostics.speed import clock_for, training_step
from harness.workers.job import JobContext, guarded

#: (members, m, k, n) per device: large enough that one CPU core, or a whole GPU, runs at its rate
LARGE = {"cpu": (1, 1024, 1024, 1024), "cuda": (1, 4096, 4096, 4096)}
GATES = 4  # the step shape's product is the LSTM's recurrent one: H inputs to 4 gates of H units
MIN_BATCH_SECONDS = 0.02  # a timed batch repeats the product until it lasts about this long
BATCHES = 5  # timed batches; the median is reported


def step_flops(variant_id: str, members: int, T: int = 50, batch: int = 32, hidden: int = 32,
               task_id: str = "adding", scan: bool = False) -> float:  # fmt: skip
    """Matrix-product FLOPs of one training step per trial, counted in PyTorch on the CPU (see the module
    docstring); the generic path (not a fused kernel, whose products the counter may not see) unless ``scan``."""
    from harness.backends import load_backend

    step, count = training_step("torch", variant_id, members, T, batch, hidden, task_id, False, "cpu", scan)
    return load_backend("torch").count_flops(step()) / count


def step_shape(members: int, batch: int, hidden: int) -> tuple[int, int, int, int]:
    """``(members, m, k, n)`` of the product that stands for a step: population × (B×H)·(H×4H)."""
    return (max(members, 1), batch, hidden, GATES * hidden)


def matmul_gflops(framework: str, shape: tuple[int, int, int, int], device: str = "cpu") -> float:
    """GFLOP/s of the product ``shape`` = (members, m, k, n) in ``framework``: 2·members·m·k·n operations
    per product over the median time per product of ``BATCHES`` batches of at least ``MIN_BATCH_SECONDS``."""
    from harness.backends import load_backend

    backend = load_backend(framework)
    backend.setup(device)
    products = backend.matmul(*shape, device=device)
    clock = clock_for(device)
    products(1)  # warm-up: allocation, tracing, kernel choice
    repeats = 1
    while True:  # how many products make a batch long enough to time
        t0 = clock()
        products(repeats)
        if clock() - t0 >= MIN_BATCH_SECONDS:
            break
        repeats *= 4
    times = []
    for _ in range(BATCHES):
        t0 = clock()
        products(repeats)
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
    """``matmul_gflops(framework, shape, device)`` for each shape, in a worker of ``framework``."""

    framework: str
    shapes: tuple[tuple[int, int, int, int], ...]
    device: str = "cpu"

    def run(self, context: JobContext) -> list[dict]:
        return [guarded(lambda s=shape: {"gflops": matmul_gflops(self.framework, s, self.device)})
                for shape in self.shapes]  # fmt: skip
