"""The PyTorch backend: builds a trial's model, runs the training step, owns device, threads and
determinism. The protocol itself (data, evaluation, early stopping) is ``harness.training.solo``.

Optimisers match the TensorFlow backend's exactly: Adam (β1 0.9, β2 0.999, ε 1e-8) or SGD with
(Nesterov) momentum; gradients are scaled by ``min(1, clip_norm / ‖g‖)`` with ‖g‖ the global norm
over all parameters (the same formula in both backends).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.backends.torch_cell import run_layer
from harness.cell.model import split_params
from harness.errors import UsageError
from harness.scan import LINEAR_FORMS
from harness.task import Task
from harness.trials.protocol import Settings
from harness.variant import Variant

FRAMEWORK = "torch"


def setup(device: str = "cpu", threads: int = 1) -> None:
    """One intra-op thread per worker process (parallelism comes from processes), deterministic kernels.
    Refuses a device this machine lacks (``UsageError``), before any trial starts."""
    resolve_device(device)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass
    if device == "cuda":
        # CPU kernels are deterministic with one thread; on a GPU ask for deterministic kernels (this
        # imports torch._dynamo, a second or two per worker, so only where it matters).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def resolve_device(device: str) -> torch.device:
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("device 'cuda' was asked for but PyTorch sees no GPU here; use --device cpu "
                             "or install a CUDA build of torch (README, 'GPUs')")  # fmt: skip
        return torch.device("cuda")
    if device != "cpu":
        raise UsageError(f"unknown device {device!r}; valid: cpu, cuda")
    return torch.device("cpu")


def environment() -> dict[str, Any]:
    env = {"torch": torch.__version__}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpus"] = torch.cuda.device_count()
        env["cuda"] = torch.version.cuda
    return env


def matmul(members: int, m: int, k: int, n: int, device: str = "cpu") -> Callable[[int], Any]:
    """``products(r)``: ``r`` products of ``members`` (m×k)·(k×n) float32 matrices (batched when ``members`` >
    1), then one wait for the device: what ``harness.diagnostics.roofline`` times. PyTorch's default float32
    (no TF32 on a GPU unless the user's settings allow it)."""
    dev = resolve_device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(members, m, k, generator=gen).to(dev)
    b = torch.randn(members, k, n, generator=gen).to(dev)

    def products(repeats: int) -> None:
        for _ in range(repeats):
            torch.bmm(a, b)
        if dev.type == "cuda":
            torch.cuda.synchronize()  # once per batch: a wait per product would time the launches' latency

    return products


def count_flops(step: Callable[[], Any]) -> int:
    """The floating-point operations of the matrix products that ``step()`` runs (mm, bmm, addmm, the
    products inside einsum and attention), forward and backward, 2 per multiply-add, as
    ``torch.utils.flop_counter.FlopCounterMode`` counts them; elementwise operations are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def masked_loss(task: Task, outputs: torch.Tensor, targets: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """``loss_at = "mask"`` (``harness.task``): outputs (..., L, O), targets (..., L, O + 1); the mean of
    the per-step loss over the steps the mask reads, reduced over ``dims`` (batch and steps)."""
    values, mask = targets[..., :-1], targets[..., -1]
    if task.loss == "cross_entropy":  # one-hot classes: −Σ_o y_o log softmax(outputs)_o
        per_step = -(values * F.log_softmax(outputs, dim=-1)).sum(dim=-1)
    elif task.loss == "mse":
        per_step = ((outputs - values) ** 2).mean(dim=-1)
    else:
        per_step = F.binary_cross_entropy_with_logits(outputs, values, reduction="none").mean(dim=-1)
    return (per_step * mask).sum(dim=dims) / torch.clamp(mask.sum(dim=dims), min=1.0)


def task_loss(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss of ``harness.cell.model``'s docstring, read where the task says."""
    if task.loss_at == "mask":
        return masked_loss(task, outputs, targets, (0, 1))
    if task.loss == "mse":
        return torch.mean((outputs[:, -1, 0] - targets) ** 2)
    if task.loss_at == "last":
        return F.cross_entropy(outputs[:, -1, :], targets)
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


class TorchModel:
    """A trial's model in PyTorch: contract parameters as leaf tensors, layer + readout, optimiser."""

    def __init__(self, variant: Variant, task: Task, settings: Settings, params: dict[str, np.ndarray],
                 device: str = "cpu", dtype: torch.dtype = torch.float32, scan: bool = False) -> None:  # fmt: skip
        self.variant, self.task, self.settings = variant, task, settings
        self.device, self.dtype = resolve_device(device), dtype
        self.hidden_size = settings.hidden_size
        self.fused = settings.fused and variant.fused_kernel is not None
        self.scan = scan and not self.fused and variant.id in LINEAR_FORMS
        self.path = "fused" if self.fused else "scan" if self.scan else "generic"
        self.params = {
            k: torch.tensor(v, dtype=dtype, device=self.device, requires_grad=True) for k, v in params.items()
        }
        self._kernels: dict = {}
        if settings.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.params.values(), lr=settings.learning_rate, eps=1e-8)
        else:
            momentum, nesterov = settings.sgd_momentum()
            self.optimizer = torch.optim.SGD(self.params.values(), lr=settings.learning_rate, momentum=momentum,
                                             nesterov=nesterov)  # fmt: skip

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        layer, readout = split_params(self.params)
        h = run_layer(self.variant, layer, inputs, self.hidden_size, self.fused, self._kernels, self.scan)
        return h @ readout["readout.W"] + readout["readout.b"]

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        dtype = self.dtype if a.dtype.kind == "f" else torch.long
        return torch.as_tensor(a, dtype=dtype, device=self.device)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        loss = task_loss(self.task, self.forward(self._tensor(inputs)), self._tensor(targets))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_by_global_norm(list(self.params.values()), self.settings.clip_norm)
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self.forward(self._tensor(inputs)).cpu().numpy()

    def get_params(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in self.params.items()}

    @torch.no_grad()
    def set_params(self, params: dict[str, np.ndarray]) -> None:
        missing = sorted(set(self.params) ^ set(params))
        if missing:
            raise ValueError(f"parameter names differ from the model's: {missing}")
        for k, v in params.items():
            self.params[k].copy_(torch.as_tensor(v, dtype=self.dtype))


def clip_by_global_norm(tensors: list[torch.Tensor], clip_norm: float) -> None:
    """g ← g · min(1, clip / ‖g‖), ‖g‖ over all gradients together; clip 0 disables it."""
    grads = [t.grad for t in tensors if t.grad is not None]
    if clip_norm <= 0 or not grads:
        return
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(clip_norm / norm, max=1.0)
    if torch.isfinite(scale):
        for g in grads:
            g.mul_(scale)


def build_model(variant: Variant, task: Task, settings: Settings, params: dict[str, np.ndarray],
                device: str = "cpu", scan: bool = False, dtype: str = "float32") -> TorchModel:  # fmt: skip
    """``scan``: run the variant's linear form where it has one (``harness.cell.scan_choice`` decides);
    ``dtype``: ``float32`` (every trial) or ``float64`` (a reference for rounding, ``rnn-bench check``)."""
    precision = torch.float64 if dtype == "float64" else torch.float32
    return TorchModel(variant, task, settings, params, device, dtype=precision, scan=scan)


def run_cell(variant: Variant, params: dict[str, np.ndarray], inputs: np.ndarray, fused: bool = False,
             device: str = "cpu", scan: bool = False) -> np.ndarray:  # fmt: skip
    """The variant's hidden outputs (B, L, H) for ``inputs`` (B, L, I), in the inputs' float precision
    (``scan``: its linear form, where it has one)."""
    from harness.cell.contract import sizes_of

    dtype = torch.float64 if np.asarray(inputs).dtype == np.float64 else torch.float32
    dev = resolve_device(device)
    p = {k: torch.as_tensor(np.asarray(v), dtype=dtype, device=dev) for k, v in params.items()}
    _, hidden = sizes_of(variant, p)
    with torch.no_grad():
        out = run_layer(variant, p, torch.as_tensor(np.asarray(inputs), dtype=dtype, device=dev), hidden, fused,
                        scan=scan)  # fmt: skip
    return out.cpu().numpy()


def cell_gradients(variant: Variant, params: dict[str, np.ndarray], inputs: np.ndarray, upstream: np.ndarray,
                   fused: bool = False,
                   scan: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """Outputs (B, L, H), and the gradients of the fixed loss ``sum(outputs * upstream)`` with respect to
    every parameter and to the inputs; in the inputs' float precision. For parity checks (``scan``: of
    the linear form against the loop)."""
    from harness.cell.contract import sizes_of

    dtype = torch.float64 if np.asarray(inputs).dtype == np.float64 else torch.float32
    p = {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(np.asarray(inputs), dtype=dtype, requires_grad=True)
    _, hidden = sizes_of(variant, p)
    out = run_layer(variant, p, x, hidden, fused, scan=scan)
    loss = (out * torch.as_tensor(np.asarray(upstream), dtype=dtype)).sum()
    grads = torch.autograd.grad(loss, [*p.values(), x], allow_unused=True)
    as_np = [np.zeros_like(np.asarray(params[k] if k in params else inputs), dtype=np.asarray(inputs).dtype)
             if g is None else g.numpy() for k, g in zip([*p, "inputs"], grads)]  # fmt: skip
    return out.detach().numpy(), dict(zip(p, as_np[:-1])), as_np[-1]
