"""Probes: short, seeded runs that the report makes itself when the store lacks what a figure needs.

The gradient-flow probe measures how the training signal reaches back in time: for a batch of the task,
the norm of ∂loss/∂h_t (the total derivative, through every later step) at every time step t, for each
variant, at initialisation and after a short seeded training run (``train_steps`` Adam steps on the
task's training stream; the store keeps no trained parameters, so "after training" means after this
short run, not after the benchmark's training). The norm is the per-example L2 norm over the hidden
units, averaged over the batch, computed in float64 so that vanishing gradients do not underflow.

Analysis never imports a framework: the probe runs as a ``ProbeJob`` in a worker process (``harness.workers.worker``)
that imports the PyTorch backend; the parent only gets numbers back. Without PyTorch the probe returns a
note instead of numbers, and the report says so.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.workers.job import JobContext
from harness.workers.worker import WorkerError, WorkerProcess


@dataclass(frozen=True)
class ProbeJob:
    """The gradient-flow probe (``probe``) for ``spec``; it loads PyTorch itself and says in its answer's
    ``error`` when it cannot."""

    spec: dict
    framework: None = None

    def run(self, context: JobContext) -> dict:
        return probe(self.spec)

TORCH_BACKEND = "harness.backends.torch_backend"


@dataclass
class GradientFlow:
    """What the probe measured: ``rows`` of (variant, phase, t, grad_norm); ``note`` when it could not."""

    task: str
    length: int
    variants: list[str]
    hidden_size: int
    batch_size: int
    train_steps: int
    learning_rate: float
    seed: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    losses: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> phase -> loss
    note: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.note is None and bool(self.rows)

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["variant", "phase", "t", "grad_norm"])

    def reach_ratios(self, phase: str = "init") -> dict[str, float]:
        """Per variant, ‖∂loss/∂h_0‖ / ‖∂loss/∂h_(L-1)‖ in ``phase``: the share of the gradient at the last
        step that reaches the first (small: vanishing), in increasing order; variants whose last-step
        gradient is 0 are left out."""
        d = self.frame()
        d = d[d["phase"] == phase]
        if d.empty:
            return {}
        last = int(d["t"].max())
        ratios = {}
        for v, dv in d.groupby("variant", sort=False):
            first, end = dv.loc[dv["t"] == 0, "grad_norm"], dv.loc[dv["t"] == last, "grad_norm"]
            if len(first) and len(end) and float(end.iloc[0]) > 0:
                ratios[str(v)] = float(first.iloc[0]) / float(end.iloc[0])
        return dict(sorted(ratios.items(), key=lambda kv: kv[1]))

    def describe(self) -> str:
        trained = f"after {self.train_steps} seeded Adam steps (learning rate {self.learning_rate:g})"
        return (
            f"task {self.task}, T = {self.length}, hidden size {self.hidden_size}, batch {self.batch_size}, "
            f"seed {self.seed}; at initialisation and {trained}"
        )


def hidden_gradient_norms(
    variant: Any, params: dict[str, np.ndarray], task: Any, inputs: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, float]:
    """‖∂loss/∂h_t‖ for t = 0..L-1 (mean over the batch of the L2 norm over units) and the loss.

    The layer is unrolled step by step with the variant's own ``step`` (``harness.cell.unroll.call_step``),
    keeping every h_t as a graph tensor with ``retain_grad``: since h_t feeds both the readout and the
    next step, its gradient is the total derivative, not only the direct term. Where a variant's state
    does not carry the returned h itself, the returned h_t is used (it is what the readout reads).
    """
    import torch

    from harness.backends.torch_backend import task_loss
    from harness.backends.torch_ops import TORCH_OPS
    from harness.cell.model import split_params
    from harness.cell.unroll import call_step

    dtype = torch.float64
    p = {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=True) for k, v in params.items()}
    layer, readout = split_params(p)
    x = torch.as_tensor(np.asarray(inputs), dtype=dtype)
    y = torch.as_tensor(np.asarray(targets), dtype=dtype if np.asarray(targets).dtype.kind == "f" else torch.long)
    batch, length = int(x.shape[0]), int(x.shape[1])
    hidden = int(readout["readout.W"].shape[0])
    state = tuple(torch.zeros(batch, size, dtype=dtype) for size in variant.state_sizes(hidden))
    hs = []
    for t in range(length):
        h, state = call_step(variant, TORCH_OPS, layer, x[:, t, :], state)
        h.retain_grad()
        hs.append(h)
    outputs = torch.stack(hs, dim=1) @ readout["readout.W"] + readout["readout.b"]
    loss = task_loss(task, outputs, y)
    loss.backward()
    norms = np.array([0.0 if h.grad is None else float(h.grad.norm(dim=-1).mean()) for h in hs])
    return norms, float(loss.detach())


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """The worker's side (a ``ProbeJob``; importable, so tests can also call it in-process)."""
    try:
        backend = importlib.import_module(spec["backend"])
    except ImportError as e:
        if (getattr(e, "name", "") or "").split(".")[0] == "torch":
            return {
                "error": f"the gradient-flow probe needs PyTorch, which is not installed here ({e}); "
                "install it with pip install -e '.[torch]'"
            }
        return {"error": f"the gradient-flow probe could not load its backend {spec['backend']!r} ({e})"}
    import torch

    from harness.cell.model import init_model_params
    from harness.plugins.registry import registry
    from harness.trials.protocol import Settings

    backend.setup("cpu", threads=1)
    torch.manual_seed(spec["seed"])
    reg = registry()
    task = reg.task(spec["task"])
    T, H, B, seed = spec["length"], spec["hidden_size"], spec["batch_size"], spec["seed"]
    probe = task.batch(T, B, seed)
    rows, losses = [], {}
    for vid in spec["variants"]:
        variant = reg.variant(vid)
        params = init_model_params(variant, task, H, seed, lag=T)
        norms, loss = hidden_gradient_norms(variant, params, task, probe.inputs, probe.targets)
        rows += [{"variant": vid, "phase": "init", "t": t, "grad_norm": float(n)} for t, n in enumerate(norms)]
        losses[vid] = {"init": loss}
        if spec["train_steps"] > 0:
            settings = Settings(hidden_size=H, learning_rate=spec["learning_rate"], clip_norm=1.0, optimizer="adam")
            model = backend.build_model(variant, task, settings, params, "cpu")
            stream = task.training_stream(T, B, seed)
            for _ in range(spec["train_steps"]):
                batch = next(stream)
                model.train_step(batch.inputs, batch.targets)
            norms, loss = hidden_gradient_norms(variant, model.get_params(), task, probe.inputs, probe.targets)
            rows += [{"variant": vid, "phase": "trained", "t": t, "grad_norm": float(n)} for t, n in enumerate(norms)]
            losses[vid]["trained"] = loss
    return {"rows": rows, "losses": losses}


def gradient_flow(
    variants: list[str],
    task: str,
    length: int,
    *,
    hidden_size: int = 32,
    batch_size: int = 16,
    train_steps: int = 100,
    learning_rate: float = 1e-2,
    seed: int = 0,
    timeout: float = 120.0,
    backend: str = TORCH_BACKEND,
) -> GradientFlow:
    """Run the gradient-flow probe in a worker process (a ``ProbeJob``); never raises for a missing framework or a
    failed probe (the result's ``note`` says what happened)."""
    result = GradientFlow(task, int(length), list(variants), hidden_size, batch_size, train_steps, learning_rate, seed)
    spec = {
        "backend": backend,
        "task": task,
        "length": int(length),
        "variants": list(variants),
        "hidden_size": hidden_size,
        "batch_size": batch_size,
        "train_steps": train_steps,
        "learning_rate": learning_rate,
        "seed": seed,
    }
    started = time.perf_counter()
    worker = WorkerProcess(None)
    try:
        answer = worker.call(ProbeJob(spec), timeout=timeout)
    except WorkerError as e:
        answer = {"error": f"the gradient-flow probe did not finish: {e}"}
    finally:
        worker.stop(kill=True)
    result.seconds = time.perf_counter() - started
    if "error" in answer:
        result.note = answer["error"]
    else:
        result.rows, result.losses = answer["rows"], answer["losses"]
    return result
