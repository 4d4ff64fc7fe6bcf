"""Training-step cost per trial, solo and in populations: the measurement behind choosing a population
size and behind preferring a fused kernel (``harness.training.population``). One framework per process (call it
in a worker, or a fresh interpreter): it runs ``backend.setup(device)``, one thread.

``step_ms(framework, variant_id, members)`` is the median time of one training step divided by the
number of trials it advances: on a CPU the CPU time of this process (a busy machine's other processes
do not count; with one thread and an idle machine it equals wall time), on a GPU the wall time:
``members = 0`` is the solo model (``build_model``: fused when the variant has a kernel and ``fused``),
``members = M`` a population of M. ``rnn-bench speed`` (``harness.cli.speed``) tabulates it
against the framework's fused solo LSTM (``FUSED_REFERENCE``), and its measurements chose the
defaults of ``harness.run.scheduling``.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.workers.job import JobContext, guarded

FUSED_REFERENCE = "np"  # torch.nn.LSTM / keras.layers.LSTM


def step_ms(framework: str, variant_id: str, members: int, T: int = 50, batch: int = 32, hidden: int = 32,
            steps: int = 10, task_id: str = "adding", fused: bool = True, device: str = "cpu",
            scan: bool = False) -> float:  # fmt: skip
    """Median milliseconds per trial-step over ``steps`` steps, after two warm-up steps (allocation,
    tracing). ``scan``: the variant's linear form (``harness.scan``) instead of its loop of steps."""
    return step_costs(framework, variant_id, members, T, batch, hidden, steps, task_id, fused, device, scan)[0]


def step_costs(framework: str, variant_id: str, members: int, T: int = 50, batch: int = 32, hidden: int = 32,
               steps: int = 10, task_id: str = "adding", fused: bool = True, device: str = "cpu",
               scan: bool = False, compile: str | None = None) -> tuple[float, float]:  # fmt: skip
    """(``step_ms``, setup ms): the second is what the model's first step costs beyond a steady one,
    the tracing of TensorFlow's graph (seconds), PyTorch's first allocations (milliseconds) or, with
    ``compile`` (a PyTorch population's ``torch.compile`` mode), its compilation."""
    step, count = training_step(framework, variant_id, members, T, batch, hidden, task_id, fused, device, scan,
                                compile)  # fmt: skip
    clock = clock_for(device)
    times = []
    for _ in range(steps + 2):
        run = step()
        t0 = clock()
        run()
        times.append(clock() - t0)
    steady = statistics.median(times[2:])
    return 1000 * steady / count, 1000 * max(0.0, times[0] - steady)


def clock_for(device: str) -> Callable[[], float]:
    """CPU time of this process on a CPU (a busy machine's other processes do not count); wall time on a
    GPU, where what is timed waits for the device (a step's loss is a Python float), so the wall clock
    covers the kernels."""
    return time.process_time if device == "cpu" else time.perf_counter


def training_step(framework: str, variant_id: str, members: int, T: int, batch: int, hidden: int,
                  task_id: str = "adding", fused: bool = True, device: str = "cpu", scan: bool = False,
                  compile: str | None = None) -> tuple[Callable[[], Callable[[], Any]], int]:  # fmt: skip
    """``(step, count)``: the model of ``members`` trials (0: the solo model, ``build_model``) and a
    function that draws a fresh batch per trial (untimed) and returns the training step on it; ``count``
    the trials one step advances. Runs ``backend.setup(device)``: call it once per process. ``compile``: a
    PyTorch population's ``torch.compile`` mode (``harness.backends.torch_population.COMPILE_MODES``)."""
    from harness.backends import load_backend
    from harness.cell.model import init_model_params
    from harness.plugins.registry import registry
    from harness.task import stack_batches
    from harness.training.population import ENGINES
    from harness.trials.protocol import Settings

    backend = load_backend(framework)
    backend.setup(device)
    reg = registry()
    task, variant = reg.task(task_id), reg.variant(variant_id)
    settings = Settings(hidden_size=hidden, batch_size=batch, fused=fused)
    count = max(members, 1)
    params = [init_model_params(variant, task, hidden, seed, lag=T) for seed in range(count)]
    if members == 0:
        model: Any = backend.build_model(variant, task, settings, params[0], device, scan=scan)
    else:
        engine = importlib.import_module(ENGINES[framework])
        extra = {"compile": compile} if compile is not None else {}  # a PyTorch population's only
        model = engine.Population(variant, task, [settings] * members, params, device, scan=scan, **extra)
    rng = np.random.default_rng(0)

    def step() -> Callable[[], Any]:
        inputs, targets = stack_batches([task.generate(T, batch, rng) for _ in range(count)])
        if members == 0:
            return lambda: model.train_step(inputs[0], targets[0])
        return lambda: model.train_step(inputs, targets)

    return step, count


@dataclass(frozen=True)
class SpeedJob:
    """``step_costs(framework, **case)`` for each case in a worker: ``{"ms": ..., "setup_ms": ...}`` or
    ``{"error": ...}`` each."""

    framework: str
    cases: tuple[dict, ...]

    def run(self, context: JobContext) -> list[dict]:
        return [guarded(lambda c=case: dict(zip(("ms", "setup_ms"), step_costs(self.framework, **c))))
                for case in self.cases]
