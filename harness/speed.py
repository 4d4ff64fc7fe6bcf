"""Training-step cost per trial, solo and in populations: the measurement behind choosing a population
size (``harness.population``). PyTorch; run it with one thread (``torch_backend.setup`` sets it).

``step_ms(variant_id, members)`` is the median wall time of one training step divided by the number of
trials it advances: ``members = 0`` means the solo model (``torch_backend.TorchModel``, fused when the
variant has a kernel and ``fused``), ``members = M`` a population of M (``torch_population``).
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def step_ms(variant_id: str, members: int, T: int = 50, batch: int = 32, hidden: int = 32, steps: int = 10,
            task_id: str = "adding", fused: bool = True, device: str = "cpu") -> float:  # fmt: skip
    """Median milliseconds per trial-step over ``steps`` steps, after two warm-up steps."""
    from harness.backends import torch_backend
    from harness.backends.torch_population import Population
    from harness.model import init_model_params
    from harness.protocol import check_hparams
    from harness.registry import registry

    reg = registry()
    task, variant = reg.task(task_id), reg.variant(variant_id)
    hp = check_hparams({"hidden_size": hidden, "batch_size": batch, "fused": fused})
    count = max(members, 1)
    params = [init_model_params(variant, task, hidden, seed, lag=T) for seed in range(count)]
    if members == 0:
        model = torch_backend.build_model(variant, task, hp, params[0], device)
    else:
        model = Population(variant, task, [hp] * members, params, device)
    rng = np.random.default_rng(0)
    times = []
    for k in range(steps + 2):
        batches = [task.generate(T, batch, rng) for _ in range(count)]
        inputs, targets = np.stack([b.inputs for b in batches]), np.stack([b.targets for b in batches])
        t0 = time.perf_counter()
        if members == 0:
            model.train_step(inputs[0], targets[0])
        else:
            model.train_step(inputs, targets)
        if k >= 2:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times) / count
