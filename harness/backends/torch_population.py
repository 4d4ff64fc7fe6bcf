"""The PyTorch population engine: M trials of one cell as one computation (``harness.population``).

Parameters are leaf tensors stacked along a leading member axis (``harness.stacking``); the variant's
``step`` runs unchanged on them, once per time step for all members; each member's loss is its own mean
over its own batch, and the gradient of their sum is, member by member, the gradient of its own loss.
The optimiser is ``torch_backend``'s written out per member, with the same calls in the same order so
that it rounds the same: Adam (``lerp_``, ``mul_().addcmul_()``, ``(m · -lr/(1-β1^t)) / denom``) or
SGD with (Nesterov) momentum (``add_`` / ``addcmul_``), each member with its own learning rate, its own
global-norm clipping (``min(1, clip / ‖g_m‖)``, skipped when not finite or clip is 0) and its own state.
Gradients of padding are multiplied by zero before clipping, so padding never moves.

``HoistingOps`` computes the products of x_t with parameters for all time steps at once, and a
tensor's products with several parameters in one call (``harness.hoisting``): the step is unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.backends.torch_backend import resolve_device
from harness.backends.torch_ops import TorchOps
from harness.hoisting import Hoisting
from harness.stacking import masks, region, stack
from harness.task import Task
from harness.unroll import call_step, shape_of
from harness.variant import StepError, Variant

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch_backend's Adam


class HoistingOps(Hoisting, TorchOps):
    """The ops namespace with ``harness.hoisting``'s products. Inputs (M, B, L, I)."""

    def __init__(self, inputs: torch.Tensor, params: dict[str, torch.Tensor]) -> None:
        super().__init__(list(inputs.unbind(2)), params)
        self._inputs = inputs

    def _plain(self, a, b):
        return torch.matmul(a, b)

    def _all_steps(self, b):
        m, batch, length, size = self._inputs.shape
        product = torch.matmul(self._inputs.reshape(m, batch * length, size), b)
        return list(product.reshape(m, batch, length, -1).unbind(2))

    def _join(self, tensors):
        return torch.cat(tensors, dim=-1)

    def _split(self, tensor, sizes):
        return tensor.split(sizes, dim=-1)


def member_losses(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's loss (M,) from outputs (M, B, L', O): ``torch_backend.task_loss`` member by member."""
    members = outputs.shape[0]
    if task.loss == "mse":
        return torch.mean((outputs[:, :, -1, 0] - targets) ** 2, dim=1)
    if task.loss_at == "last":
        logits, labels = outputs[:, :, -1, :], targets
    else:
        logits, labels = outputs, targets
    per_example = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return per_example.reshape(members, -1).mean(dim=1)


class Population:
    """M members' parameters, optimiser state and per-member settings; slots index the members."""

    path = "generic"  # the variant's own step, batched (never a fused kernel)
    leave_at = 0.0  # finished members leave at once: rebuilding costs a copy of the parameters

    def __init__(self, variant: Variant, task: Task, hparams: list[dict[str, Any]], params: list[dict[str, np.ndarray]],
                 device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        self.variant, self.task, self.dtype = variant, task, dtype
        self.device = resolve_device(device)
        self.hidden_size = max(int(hp["hidden_size"]) for hp in hparams)
        self.shapes = [{k: tuple(v.shape) for k, v in p.items()} for p in params]
        stacked = stack(params)
        mask = masks(params, stacked)
        self.params = {k: self._as_tensor(v).requires_grad_() for k, v in stacked.items()}
        self.masks = None if mask is None else {k: self._as_tensor(v) for k, v in mask.items()}
        self.lr = [float(hp["learning_rate"]) for hp in hparams]
        self.clip = self._as_tensor(np.array([float(hp["clip_norm"]) for hp in hparams]))
        first = hparams[0]
        self.optimizer = first.get("optimizer", "adam")
        self.momentum = float(first.get("momentum", 0.0))
        self.nesterov = bool(first.get("nesterov", False)) and self.momentum > 0
        self.moments: dict[str, list[torch.Tensor | None]] = {k: [None, None] for k in self.params}
        self.steps = 0

    def _as_tensor(self, a: np.ndarray) -> torch.Tensor:
        dtype = self.dtype if np.asarray(a).dtype.kind == "f" else torch.long
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

    # --- the computation -------------------------------------------------------------------------------
    def forward(self, params: dict[str, torch.Tensor], inputs: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Inputs (M, B, L, I) -> readout outputs (M, B, L, O), or (M, B, 1, O) for the last step only."""
        members, batch, length = (int(d) for d in inputs.shape[:3])
        ops = HoistingOps(inputs, params)
        # vectors (M, 1, C) expanded to (M, B, C) once: their gradient is summed over the batch once per
        # forward, not at every use in every step (the values are the same; only the backward changes)
        vectors = {k for k, shape in self.shapes[0].items() if len(shape) == 1}  # by the contract: W may be (1, H)
        layer = {k: v.expand(members, batch, -1) if k in vectors else v
                 for k, v in params.items() if not k.startswith("readout.")}  # fmt: skip
        state = tuple(inputs.new_zeros(members, batch, s) for s in self.variant.state_sizes(self.hidden_size))
        outputs = []
        for t in range(length):
            h, state = call_step(self.variant, ops, layer, ops._at(t), state)
            expected = (members, batch, self.hidden_size)
            if t == 0 and shape_of(h) != expected:
                raise StepError(self.variant.id, f"on stacked tensors the step returned h of shape {shape_of(h)}, "
                                f"expected {expected} (rules: harness/batchable.py)")  # fmt: skip
            outputs.append(h)
        hs = outputs[-1].unsqueeze(2) if last_only else torch.stack(outputs, dim=2)
        flat = hs.reshape(members, -1, self.hidden_size)
        y = torch.matmul(flat, params["readout.W"]) + params["readout.b"]
        return y.reshape(members, batch, hs.shape[2], -1)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One optimiser step of every member on its own batch (inputs (M, B, L, I)); the losses (M,)
        before the update."""
        x, y = self._as_tensor(inputs), self._as_tensor(targets)
        losses = member_losses(self.task, self.forward(self.params, x, self.task.loss_at == "last"), y)
        names = list(self.params)
        grads = torch.autograd.grad(losses.sum(), [self.params[k] for k in names], allow_unused=True)
        grads = [torch.zeros_like(self.params[k]) if g is None else g for k, g in zip(names, grads)]
        with torch.no_grad():
            if self.masks is not None:
                for k, g in zip(names, grads):
                    g.mul_(self.masks[k])
            self._clip(grads)
            self.steps += 1
            for k, g in zip(names, grads):
                (self._adam if self.optimizer == "adam" else self._sgd)(k, g)
        return losses.detach().cpu().numpy()

    def _per_member(self, values: list[float] | torch.Tensor) -> torch.Tensor:
        t = values if torch.is_tensor(values) else torch.tensor(values, dtype=self.dtype, device=self.device)
        return t.reshape(-1, 1, 1)

    def _clip(self, grads: list[torch.Tensor]) -> None:
        """g_m ← g_m · min(1, clip_m / ‖g_m‖), ‖g_m‖ over all of member m's gradients."""
        members = grads[0].shape[0]
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(members, -1), dim=1) for g in grads])
        norm = torch.linalg.vector_norm(norms, dim=0)
        scale = torch.clamp(norm.reciprocal() * self.clip, max=1.0)  # clip / ‖g‖ as torch_backend rounds it
        scale = torch.where(torch.isfinite(scale) & (self.clip > 0), scale, torch.ones_like(scale))
        for g in grads:
            g.mul_(self._per_member(scale))

    def _adam(self, name: str, g: torch.Tensor) -> None:
        state = self.moments[name]
        if state[0] is None:
            state[0], state[1] = torch.zeros_like(g), torch.zeros_like(g)
        m, v = state
        m.lerp_(g, 1 - BETA1)
        v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
        correction_1, correction_2 = 1 - BETA1**self.steps, 1 - BETA2**self.steps
        step_size = self._per_member([-(lr / correction_1) for lr in self.lr])
        denom = (v.sqrt() / correction_2**0.5).add_(EPS)
        self.params[name].add_((step_size * m) / denom)  # addcdiv_'s p + (value · m) / denom

    def _sgd(self, name: str, g: torch.Tensor) -> None:
        state = self.moments[name]
        if self.momentum != 0:
            if state[0] is None:
                state[0] = g.detach().clone()
            else:
                state[0].mul_(self.momentum).add_(g)
            g = g.add(state[0], alpha=self.momentum) if self.nesterov else state[0]
        self.params[name].addcmul_(g, self._per_member([-lr for lr in self.lr]))  # add_(g, alpha=-lr)

    # --- members -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, slots: list[int], inputs: np.ndarray) -> np.ndarray:
        """Readout outputs (len(slots), B, L, O) of those members for the same inputs (B, L, I)."""
        if list(slots) == list(range(len(self.shapes))):
            params = self.params
        else:
            index = torch.as_tensor(slots, device=self.device)
            params = {k: v.index_select(0, index) for k, v in self.params.items()}
        x = self._as_tensor(inputs)
        return self.forward(params, x.expand(len(slots), *x.shape)).cpu().numpy()

    def get_params(self, slot: int) -> dict[str, np.ndarray]:
        """Member ``slot``'s parameters as its own contract dict (padding dropped), float32 numpy."""
        return {
            k: self.params[k][slot][region(shape)].detach().cpu().numpy().astype(np.float32).reshape(shape)
            for k, shape in self.shapes[slot].items()
        }

    @torch.no_grad()
    def set_params(self, slot: int, params: dict[str, np.ndarray]) -> None:
        """Load member ``slot``'s parameters (its own shapes); its padding stays zero."""
        for k, shape in self.shapes[slot].items():
            self.params[k][slot][region(shape)] = self._as_tensor(np.asarray(params[k]))

    def keep(self, slots: list[int]) -> None:
        """Keep only the members in ``slots`` (in that order): finished members leave the computation."""
        index = torch.as_tensor(slots, device=self.device)
        self.params = {k: v.detach().index_select(0, index).requires_grad_() for k, v in self.params.items()}
        if self.masks is not None:
            self.masks = {k: v.index_select(0, index) for k, v in self.masks.items()}
        self.moments = {
            k: [None if s is None else s.index_select(0, index) for s in state] for k, state in self.moments.items()
        }
        self.lr = [self.lr[s] for s in slots]
        self.clip = self.clip.index_select(0, index)
        self.shapes = [self.shapes[s] for s in slots]
