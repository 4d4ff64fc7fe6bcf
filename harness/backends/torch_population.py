"""The PyTorch population engine: M trials of one cell as one computation (``harness.training.population``).

Parameters are leaf tensors stacked along a leading member axis (``harness.cell.stacking``); the variant's
``step`` runs unchanged on them, once per time step for all members; each member's loss is its own mean
over its own batch, and the gradient of their sum is, member by member, the gradient of its own loss.
The optimiser is ``torch_backend``'s written out per member, with the same calls in the same order so
that it rounds the same: Adam (``lerp_``, ``mul_().addcmul_()``, ``(m · -lr/(1-β1^t)) / denom``) or
SGD with (Nesterov) momentum (``add_`` / ``addcmul_``), each member with its own learning rate, its own
global-norm clipping (``min(1, clip / ‖g_m‖)``, skipped when not finite or clip is 0) and its own state.
Gradients of padding are multiplied by zero before clipping, so padding never moves.

``HoistingOps`` computes the products of x_t with parameters for all time steps at once, and a
tensor's products with several parameters in one call (``harness.cell.hoisting``): the step is unchanged.
``FusingOps`` (the engine's namespace) goes further for gates ``x_t W + h R + b``: their sums are
left pending and computed as fused multiply-adds, the step still unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.backends.torch_backend import masked_loss, resolve_device
from harness.backends.torch_ops import TORCH_OPS, TorchOps
from harness.cell.hoisting import Hoisting
from harness.cell.stacking import masks, region, stack
from harness.cell.unroll import call_step, shape_of
from harness.scan import LINEAR_FORMS
from harness.task import Task
from harness.trials.protocol import Settings
from harness.variant import StepError, Variant

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch_backend's Adam


class HoistingOps(Hoisting, TorchOps):
    """The ops namespace with ``harness.cell.hoisting``'s products. Inputs (M, B, L, I)."""

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


def computed(value: Any) -> Any:
    """``value`` with every ``PendingSum`` in it (also inside lists, tuples and dicts) computed."""
    if isinstance(value, PendingSum):
        return value.value()
    if isinstance(value, (list, tuple)):
        return type(value)(computed(v) for v in value)
    if isinstance(value, dict):
        return {k: computed(v) for k, v in value.items()}
    return value


class PendingSum:
    """A sum the step builds of products with parameters (``x_t W``, ``a R``) and parameter vectors,
    not computed yet: ``FusingOps`` computes it when the step uses it for anything but ``+`` (an op, a
    torch function, another operator, an attribute such as ``shape``), and only then. Terms are
    ``("x", W, t)``, ``("a", a, R)`` and ``("v", b)``, in the step's order."""

    __slots__ = ("ops", "terms", "_value")

    def __init__(self, ops: FusingOps, terms: tuple) -> None:
        self.ops, self.terms, self._value = ops, terms, None

    def value(self) -> torch.Tensor:
        if self._value is None:
            self._value = self.ops._compute(self.terms)
        return self._value

    def __add__(self, other: Any) -> Any:
        return self.ops._add(self, other)

    def __radd__(self, other: Any) -> Any:
        return self.ops._add(other, self)

    def __getattr__(self, name: str) -> Any:  # shape, dtype, tensor methods: the computed tensor's
        return getattr(self.value(), name)

    __hash__ = object.__hash__

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # torch.f(pending), tensor + pending
        if func in _ADDS and not kwargs and len(args) == 2:
            pending = args[0] if isinstance(args[0], PendingSum) else args[1]
            return pending.ops._add(*args)
        return func(*computed(args), **computed(kwargs or {}))


_ADDS = (torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.add, torch.add)


def _computing(name: str):
    def method(self, *args):
        return getattr(self.value(), name)(*computed(args))

    method.__name__ = name
    return method


for _name in ("__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__pow__", "__rpow__",
              "__matmul__", "__rmatmul__", "__neg__", "__pos__", "__abs__", "__getitem__", "__lt__", "__le__",
              "__gt__", "__ge__", "__eq__", "__ne__", "__bool__", "__float__", "__int__", "__len__", "__iter__",
              "__array__"):  # fmt: skip
    setattr(PendingSum, _name, _computing(_name))


def _computing_op(op):
    """``op`` (a ``TorchOps`` op written in Python, which may look at its arguments) on computed ones."""

    def wrapped(*args, **kwargs):
        return op(*computed(args), **computed(kwargs))

    return staticmethod(wrapped)


class FusingOps(HoistingOps):
    """``HoistingOps`` whose gates are two products per time step: a step's ``x_t W + a R + b`` (the
    three terms in any order, found at t = 0) is computed from t = 1 on as ``baddbmm(baddbmm([b_1..b_k],
    x_t, [W_1..W_k]), a, [R_1..R_k])`` and sliced, for all the gates whose ``R`` meet one ``a``
    (``Hoisting``'s groups), or for a lone gate. That drops two additions per gate and time step and
    their backward nodes (LSTM and GRU populations ~20% faster); the numbers differ from the plain sum only in
    the order of the float32 additions. Any other sum is computed term by term in the step's order, as
    ``HoistingOps`` computes it; every other use of a ``PendingSum`` computes it first (``computed``).
    ``matmul`` returns a ``PendingSum`` for every product with a parameter."""

    def __init__(self, inputs: torch.Tensor, params: dict[str, torch.Tensor], vectors: dict[int, torch.Tensor]) -> None:
        super().__init__(inputs, params)
        self._vectors = vectors  # id(the (M, B, C) vector the step adds) -> its (M, 1, C) parameter
        self._recorded: dict[int, tuple[Any, Any]] = {}  # t = 0: id(R) -> (W, b) of a sum x_t W + a R + b
        self._plans: dict[int, dict[str, Any]] = {}  # id(R) -> its fused group (shared by the group's R)
        self._fused: dict[tuple[int, int], tuple[Any, Any]] = {}  # this step's (id(a), id(R)) -> (a, slice)

    # torch's own functions compute a PendingSum through __torch_function__; these look at it first
    where, equal, floormod = (_computing_op(op) for op in (TorchOps.where, TorchOps.equal, TorchOps.floormod))
    concat, split, constant = (_computing_op(op) for op in (TorchOps.concat, TorchOps.split, TorchOps.constant))
    softplus, maximum, minimum = (_computing_op(op) for op in (TorchOps.softplus, TorchOps.maximum, TorchOps.minimum))
    sum, mean, unflatten, flatten = (_computing_op(op) for op in (TorchOps.sum, TorchOps.mean, TorchOps.unflatten,
                                                                   TorchOps.flatten))  # fmt: skip

    def _at(self, t: int) -> Any:
        x = super()._at(t)  # at t = 1 this forms Hoisting's groups, which the plans use
        self._fused = {}
        if t == 1:
            self._plan()
        return x

    def matmul(self, a, b):
        a = computed(a)
        if id(b) not in self._params:
            return self._plain(a, b)
        if a is self._steps[self._t]:
            return PendingSum(self, (("x", b, self._t),))
        return PendingSum(self, (("a", a, b),))

    def _add(self, left: Any, right: Any) -> Any:
        terms = (self._terms(left), self._terms(right))
        if None in terms:
            return computed(left) + computed(right)
        return PendingSum(self, terms[0] + terms[1])

    def _terms(self, value: Any) -> tuple | None:
        if isinstance(value, PendingSum):
            return value.terms if value._value is None else None  # a used sum stays computed once
        if torch.is_tensor(value) and id(value) in self._vectors:
            return (("v", value),)
        return None

    def _compute(self, terms: tuple) -> torch.Tensor:
        fused = self._fused_gate(terms)
        if fused is not None:
            return fused
        if self._t == 0:
            self._record(terms)
        value = None
        for term in terms:
            part = self._term(term)
            value = part if value is None else value + part
        return value

    def _term(self, term: tuple) -> torch.Tensor:
        if term[0] == "v":
            return term[1]
        if term[0] == "a":
            return Hoisting.matmul(self, term[1], term[2])
        b, t = term[1], term[2]
        if t == 0:  # plain at t = 0: a gate fused from t = 1 on never needs x W alone
            return self._plain(self._steps[0], b)
        if id(b) not in self._products:
            self._products[id(b)] = self._all_steps(b)
        return self._products[id(b)][t]

    @staticmethod
    def _gate(terms: tuple) -> dict[str, tuple] | None:
        """The terms by kind when they are one x_t W, one a R and one b, else None."""
        kinds = {term[0]: term for term in terms}
        return kinds if len(terms) == 3 and len(kinds) == 3 else None

    def _record(self, terms: tuple) -> None:
        gate = self._gate(terms)
        if gate is not None:
            self._recorded[id(gate["a"][2])] = (gate["x"][1], gate["v"][1])

    def _plan(self) -> None:
        """At t = 1: a fused group for each of Hoisting's groups whose every R was a gate at t = 0, and
        for each lone R that was."""
        member_of = {i: ids for ids in self._groups.values() for i in ids}
        for rid in self._recorded:
            group = member_of.get(rid, [rid])
            if rid not in self._plans and all(i in self._recorded for i in group):
                plan = {"group": group, "joined": None}
                self._plans.update({i: plan for i in group})

    def _fused_gate(self, terms: tuple) -> torch.Tensor | None:
        gate = self._gate(terms) if self._t > 0 else None
        if gate is None or gate["x"][2] != self._t:
            return None
        a, r = gate["a"][1], gate["a"][2]
        plan = self._plans.get(id(r))
        if plan is None:
            return None
        w, b = self._recorded[id(r)]
        if gate["x"][1] is not w or gate["v"][1] is not b:
            return None  # R with another W or b than at t = 0: computed as the step wrote it
        cached = self._fused.get((id(a), id(r)))
        if cached is None or cached[0] is not a:
            self._fuse(plan, a)
            cached = self._fused[(id(a), id(r))]
        return cached[1]

    def _fuse(self, plan: dict[str, Any], a: torch.Tensor) -> None:
        group = plan["group"]
        if plan["joined"] is None:  # once per forward: the group's W, b and R side by side
            plan["w"] = self._join([self._recorded[i][0] for i in group])
            plan["b"] = self._join([self._vectors[id(self._recorded[i][1])] for i in group])
            plan["joined"] = self._join([self._params[i] for i in group])
        sizes = [int(self._params[i].shape[-1]) for i in group]
        # per step, not for all steps at once: a product for every t is larger than the caches
        # in place into the first product: an out-of-place baddbmm would copy it into a new tensor first
        gates = torch.baddbmm(plan["b"], self._steps[self._t], plan["w"]).baddbmm_(a, plan["joined"])
        parts = gates.split(sizes, dim=-1)
        for i, part in zip(group, parts):
            self._fused[(id(a), i)] = (a, part)


def member_losses(task: Task, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each member's loss (M,) from outputs (M, B, L', O): ``torch_backend.task_loss`` member by member."""
    members = outputs.shape[0]
    if task.loss_at == "mask":
        return masked_loss(task, outputs, targets, (1, 2))
    if task.loss == "mse":
        return torch.mean((outputs[:, :, -1, 0] - targets) ** 2, dim=1)
    if task.loss_at == "last":
        logits, labels = outputs[:, :, -1, :], targets
    else:
        logits, labels = outputs, targets
    per_example = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return per_example.reshape(members, -1).mean(dim=1)


#: ``Population``'s ``compile``: torch.compile modes ("reduce-overhead" captures CUDA graphs on a GPU), and
#: "eager", TorchDynamo's tracing without code generation (seconds, not minutes: what the tests run)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "eager")


class Population:
    """M members' parameters, optimiser state and per-member settings; slots index the members.

    ``compile`` (one of ``COMPILE_MODES``, None: off) runs the forward pass and the losses under
    ``torch.compile``, on ``HoistingOps`` (TorchDynamo cannot trace ``FusingOps``' pending sums). For
    ``rnn-bench``'s GPU benchmark (benchmarks/gpu_bench.py); training does not use it: each new member
    count (members leave) compiles again, tens of seconds each."""

    leave_at = 0.0  # finished members leave at once: rebuilding costs a copy of the parameters

    def __init__(self, variant: Variant, task: Task, settings: list[Settings], params: list[dict[str, np.ndarray]],
                 device: str = "cpu", dtype: torch.dtype = torch.float32, scan: bool = False,
                 compile: str | None = None) -> None:  # fmt: skip
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"compile mode {compile!r} is not one of {', '.join(COMPILE_MODES)}")
        self.variant, self.task, self.dtype = variant, task, dtype
        self._losses = self._plain_losses
        if compile is not None:
            options = {"backend": "eager"} if compile == "eager" else {"mode": compile}
            self._losses = torch.compile(self._plain_losses, **options)
        self.fusing = compile is None
        # the variant's own step, batched (never a fused kernel), or its linear form (harness.scan)
        self.scan = scan and variant.id in LINEAR_FORMS
        self.path = "scan" if self.scan else "generic"
        self.device = resolve_device(device)
        self.hidden_size = max(s.hidden_size for s in settings)
        self.shapes = [{k: tuple(v.shape) for k, v in p.items()} for p in params]
        stacked = stack(params)
        mask = masks(params, stacked)
        self.params = {k: self._as_tensor(v).requires_grad_() for k, v in stacked.items()}
        self.masks = None if mask is None else {k: self._as_tensor(v) for k, v in mask.items()}
        self.lr = [s.learning_rate for s in settings]
        self.clip = self._as_tensor(np.array([s.clip_norm for s in settings]))
        self.optimizer = settings[0].optimizer  # shared by the population (harness.training.grouping)
        self.momentum, self.nesterov = settings[0].sgd_momentum()
        self.moments: dict[str, list[torch.Tensor | None]] = {k: [None, None] for k in self.params}
        self.steps = 0

    def _as_tensor(self, a: np.ndarray) -> torch.Tensor:
        dtype = self.dtype if np.asarray(a).dtype.kind == "f" else torch.long
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

    # --- the computation -------------------------------------------------------------------------------
    def forward(self, params: dict[str, torch.Tensor], inputs: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Inputs (M, B, L, I) -> readout outputs (M, B, L, O), or (M, B, 1, O) for the last step only."""
        members, batch, length = (int(d) for d in inputs.shape[:3])
        if self.scan:
            hs = self._scanned(params, inputs)
            return self._readout(params, hs[:, :, -1:] if last_only else hs)
        # vectors (M, 1, C) expanded to (M, B, C) once: their gradient is summed over the batch once per
        # forward, not at every use in every step (the values are the same; only the backward changes)
        vectors = {k for k, shape in self.shapes[0].items() if len(shape) == 1}  # by the contract: W may be (1, H)
        layer = {k: v.expand(members, batch, -1) if k in vectors else v
                 for k, v in params.items() if not k.startswith("readout.")}  # fmt: skip
        ops = (FusingOps(inputs, params, {id(layer[k]): params[k] for k in vectors if k in layer}) if self.fusing
               else HoistingOps(inputs, params))  # fmt: skip
        state = tuple(inputs.new_zeros(members, batch, s) for s in self.variant.state_sizes(self.hidden_size))
        outputs = []
        for t in range(length):
            h, state = computed(call_step(self.variant, ops, layer, ops._at(t), state))
            expected = (members, batch, self.hidden_size)
            if t == 0 and shape_of(h) != expected:
                raise StepError(self.variant.id, f"on stacked tensors the step returned h of shape {shape_of(h)}, "
                                f"expected {expected} (rules: harness/cell/batchable.py)")  # fmt: skip
            outputs.append(h)
        return self._readout(params, outputs[-1].unsqueeze(2) if last_only else torch.stack(outputs, dim=2))

    def _scanned(self, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        """The layer's outputs (M, B, L, H) from its linear form: every parameter gains a time axis beside
        the batch's, (M, 1, A, C) and (M, 1, 1, C), to meet inputs (M, B, L, I)."""
        layer = {k: v.unsqueeze(1) for k, v in params.items() if not k.startswith("readout.")}
        return LINEAR_FORMS[self.variant.id](self.variant, TORCH_OPS, layer, inputs)

    def _readout(self, params: dict[str, torch.Tensor], hs: torch.Tensor) -> torch.Tensor:
        """Readout outputs (M, B, L', O) of the layer's (M, B, L', H)."""
        members, batch = int(hs.shape[0]), int(hs.shape[1])
        flat = hs.reshape(members, -1, self.hidden_size)
        y = torch.matmul(flat, params["readout.W"]) + params["readout.b"]
        return y.reshape(members, batch, hs.shape[2], -1)

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One optimiser step of every member on its own batch (inputs (M, B, L, I)); the losses (M,)
        before the update."""
        x, y = self._as_tensor(inputs), self._as_tensor(targets)
        losses = self._losses(self.params, x, y)
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

    def _plain_losses(self, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's loss (M,) on its batch."""
        return member_losses(self.task, self.forward(params, x, self.task.loss_at == "last"), y)

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
