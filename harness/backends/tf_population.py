"""The TensorFlow population engine: M trials of one cell as one computation (``harness.training.population``);
the same interface and arithmetic as ``torch_population``, in TensorFlow's terms.

Parameters are variables stacked along a leading member axis (``harness.cell.stacking``). The training step
is one ``tf.function``: the variant's unchanged ``step`` runs in a Python loop over time inside the
graph with fewer, larger products (``harness.cell.hoisting``: x_t's for all steps at once, a tensor's with
several parameters in one call), each member's loss is its own mean over its own batch, and the
optimiser is ``tf_backend``'s written out per member (its own learning rate, global-norm clipping and
state; the same formulas in the same order, so it rounds the same). Gradients of padding are
multiplied by zero before clipping, so padding never moves. Functions are traced without autograph
(the loop over time is plain Python; a step has no tensor-dependent control flow): half the cost.
Every per-member variable has a dynamic leading dimension, so members leave by keeping the others'
rows in place: the predictors (any member count) stay traced; the training step is traced once per
member count (static shapes run faster, see ``_build``), so members leave only when the steps left
repay that trace (``leave_at``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import tensorflow as tf

from harness.backends.tf_backend import masked_loss, resolve_device
from harness.backends.tf_ops import TF_OPS, TfOps
from harness.cell.hoisting import Hoisting
from harness.cell.stacking import masks, region, stack
from harness.cell.unroll import call_step
from harness.scan import LINEAR_FORMS
from harness.task import Task
from harness.trials.protocol import Settings
from harness.variant import StepError, Variant

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # tf_backend's Adam


class HoistingOps(Hoisting, TfOps):
    """The ops namespace with ``harness.cell.hoisting``'s products. Inputs (M, B, L, I), L known."""

    def __init__(self, inputs: tf.Tensor, params: dict[str, tf.Tensor]) -> None:
        super().__init__(tf.unstack(inputs, axis=2), params)
        self._inputs = inputs

    def _plain(self, a, b):
        return tf.linalg.matmul(a, b)

    def _all_steps(self, b):
        shape, length = tf.shape(self._inputs), len(self._steps)
        flat = tf.reshape(self._inputs, [shape[0], shape[1] * length, shape[3]])
        product = tf.linalg.matmul(flat, b)
        return tf.unstack(tf.reshape(product, [shape[0], shape[1], length, -1]), axis=2)

    def _join(self, tensors):
        return tf.concat(tensors, axis=-1)

    def _split(self, tensor, sizes):
        return tf.split(tensor, sizes, axis=-1)


def member_losses(task: Task, outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Each member's loss (M,) from outputs (M, B, L', O): ``tf_backend.task_loss`` member by member."""
    members = tf.shape(outputs)[0]
    if task.loss_at == "mask":
        return masked_loss(task, outputs, targets, (1, 2))
    if task.loss == "mse":
        return tf.reduce_mean(tf.square(outputs[:, :, -1, 0] - targets), axis=1)
    logits = outputs[:, :, -1, :] if task.loss_at == "last" else outputs
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_mean(tf.reshape(per_example, [members, -1]), axis=1)


class Population:
    """M members' variables, optimiser state and per-member settings; slots index the members."""

    def __init__(self, variant: Variant, task: Task, settings: list[Settings], params: list[dict[str, np.ndarray]],
                 device: str = "cpu", dtype: str = "float32", scan: bool = False) -> None:  # fmt: skip
        self.variant, self.task, self.dtype = variant, task, dtype
        # the variant's own step, batched (never a fused kernel), or its linear form (harness.scan)
        self.scan = scan and variant.id in LINEAR_FORMS
        self.path = "scan" if self.scan else "generic"
        self.device = resolve_device(device)
        self.hidden_size = max(s.hidden_size for s in settings)
        self.shapes = [{k: tuple(v.shape) for k, v in p.items()} for p in params]
        self.optimizer = settings[0].optimizer  # shared by the population (harness.training.grouping)
        self.momentum, self.nesterov = settings[0].sgd_momentum()
        self.xla = settings[0].xla  # as TfModel: jit_compile the training step
        self.lr = np.array([s.learning_rate for s in settings])
        self.clip = np.array([s.clip_norm for s in settings])
        self.max_steps = np.array([s.max_steps for s in settings])
        self.steps_done = 0
        self.traced: set[int] = set()  # member counts the step is traced (with XLA: compiled) for
        self.new_count_seconds: float | None = None  # what a new member count costs beyond a step
        self.step_seconds: float | None = None  # the latest step that traced nothing
        stacked = stack(params)
        mask = masks(params, stacked)
        zeros = {k: np.zeros_like(v) for k, v in stacked.items()}
        self._build(stacked, mask, {"m": zeros, "v": zeros} if self.optimizer == "adam" else {"b": zeros})

    def _build(self, values: dict, mask: dict | None, slots: dict[str, dict]) -> None:
        """Create the variables, each of any number of members (leading dimension ``None``), so that
        ``keep`` shrinks them in place and the predictors serve every member count."""
        with tf.device(self.device):
            self.params = {k: _members_variable(v, self.dtype, trainable=True) for k, v in values.items()}
            self.names = list(self.params)
            self.masks = None if mask is None else {k: _members_variable(v, self.dtype) for k, v in mask.items()}
            self.slots = {s: {k: _members_variable(v, self.dtype) for k, v in d.items()} for s, d in slots.items()}
            self.steps = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.lr_t = _members_variable(self.lr, tf.float64)
            self.clip_t = _members_variable(self.clip, self.dtype)
        # Traced once per member count (static shapes): with a dynamic one, every gradient of an
        # elementwise op reduces over broadcast axes found at run time (measured: steps ~20% slower,
        # the trace twice as long).
        self._train = tf.function(self._train_step, jit_compile=self.xla, autograph=False)
        self._predictors: dict[tuple[int, int], Any] = {}  # (L, I) -> traced forward, any members and batch
        self._longest: dict[str, int] = {}  # "train" / "predict" -> the longest time axis so far (``_grown``)

    # --- the computation -------------------------------------------------------------------------------
    def forward(self, params: dict[str, tf.Tensor], inputs: tf.Tensor, last_only: bool = False) -> tf.Tensor:
        """Inputs (M, B, L, I) -> readout outputs (M, B, L, O), or (M, B, 1, O) for the last step only."""
        shape = tf.shape(inputs)
        if self.scan:  # the linear form (harness.scan); parameters gain a time axis: (M, 1, A, C), (M, 1, 1, C)
            layer = {k: tf.expand_dims(v, 1) for k, v in params.items() if not k.startswith("readout.")}
            hs = LINEAR_FORMS[self.variant.id](self.variant, TF_OPS, layer, inputs)
            return self._readout(params, hs[:, :, -1:, :] if last_only else hs, shape)
        length = int(inputs.shape[2])
        ops = HoistingOps(inputs, params)
        layer = {k: v for k, v in params.items() if not k.startswith("readout.")}
        state = tuple(tf.zeros([shape[0], shape[1], s], dtype=inputs.dtype)
                      for s in self.variant.state_sizes(self.hidden_size))  # fmt: skip
        outputs = []
        for t in range(length):
            h, state = call_step(self.variant, ops, layer, ops._at(t), state)
            if t == 0 and h.shape[-1] != self.hidden_size:
                raise StepError(self.variant.id, f"on stacked tensors the step returned h of shape {h.shape}, "
                                f"expected (M, B, {self.hidden_size}) (rules: harness/cell/batchable.py)")  # fmt: skip
            outputs.append(h)
        return self._readout(params, outputs[-1][:, :, None, :] if last_only else tf.stack(outputs, axis=2), shape)

    def _readout(self, params: dict[str, tf.Tensor], hs: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
        """Readout outputs (M, B, L', O) of the layer's (M, B, L', H); ``shape`` is the inputs'."""
        flat = tf.reshape(hs, [shape[0], -1, self.hidden_size])
        y = tf.linalg.matmul(flat, params["readout.W"]) + params["readout.b"]
        return tf.reshape(y, [shape[0], shape[1], -1, tf.shape(y)[-1]])

    def _train_step(self, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        members = int(inputs.shape[0])  # traced once per member count, so every shape below is static
        variables = [self.params[k] for k in self.names]
        with tf.GradientTape() as tape:
            params = {k: _fixed(v, members) for k, v in self.params.items()}
            outputs = self.forward(params, inputs, self.task.loss_at == "last")
            losses = member_losses(self.task, outputs, targets)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, variables)
        grads = [tf.zeros_like(params[k]) if g is None else g for k, g in zip(self.names, grads)]
        if self.masks is not None:
            grads = [g * _fixed(self.masks[k], members) for k, g in zip(self.names, grads)]
        grads = self._clip(grads, _fixed(self.clip_t, members))
        t = tf.cast(self.steps.assign_add(1), tf.float64)
        lr = _fixed(self.lr_t, members)
        for k, g in zip(self.names, grads):
            if self.optimizer == "adam":
                self._adam(k, g, t, lr)
            else:
                self._sgd(k, g, lr)
        return losses

    def _per_member(self, values: tf.Tensor) -> tf.Tensor:
        return tf.reshape(values, [-1, 1, 1])

    def _clip(self, grads: list[tf.Tensor], clip: tf.Tensor) -> list[tf.Tensor]:
        """g_m ← g_m · min(1, clip_m / ‖g_m‖), ‖g_m‖ over all of member m's gradients."""
        members = tf.shape(grads[0])[0]
        norms = tf.stack([tf.norm(tf.reshape(g, [members, -1]), axis=1) for g in grads])
        norm = tf.norm(norms, axis=0)
        scale = tf.minimum(clip / norm, tf.ones_like(norm))
        scale = tf.where(tf.math.is_finite(scale) & (clip > 0), scale, tf.ones_like(scale))
        return [g * self._per_member(scale) for g in grads]

    def _adam(self, name: str, g: tf.Tensor, t: tf.Tensor, lr: tf.Tensor) -> None:
        """``tf_backend``'s Adam; the new m and v are used as computed (the values assigned)."""
        members = int(g.shape[0])
        var, m, v = self.params[name], _fixed(self.slots["m"][name], members), _fixed(self.slots["v"][name], members)
        correction_1 = 1.0 - tf.pow(tf.constant(BETA1, tf.float64), t)
        correction_2 = 1.0 - tf.pow(tf.constant(BETA2, tf.float64), t)
        m = m + (1.0 - BETA1) * (g - m)
        v = v * BETA2 + (1.0 - BETA2) * (g * g)
        self.slots["m"][name].assign(m)
        self.slots["v"][name].assign(v)
        denom = tf.sqrt(v) / tf.cast(tf.sqrt(correction_2), var.dtype) + tf.constant(EPS, var.dtype)
        step_size = self._per_member(tf.cast(lr / correction_1, var.dtype))
        var.assign_sub(step_size * m / denom)

    def _sgd(self, name: str, g: tf.Tensor, lr: tf.Tensor) -> None:
        var = self.params[name]
        lr = self._per_member(tf.cast(lr, var.dtype))
        if self.momentum == 0:
            var.assign_sub(lr * g)
            return
        b = _fixed(self.slots["b"][name], int(g.shape[0])) * self.momentum + g
        self.slots["b"][name].assign(b)
        var.assign_sub(lr * (g + self.momentum * b if self.nesterov else b))

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One optimiser step of every member on its own batch (inputs (M, B, L, I)); the losses (M,)
        before the update."""
        inputs, targets = self._tensor(self._grown(inputs, "train")), self._tensor(self._grown(targets, "train"))
        members, started = int(inputs.shape[0]), time.perf_counter()
        with tf.device(self.device):
            losses = self._train(inputs, targets).numpy()
        self._timed(members, time.perf_counter() - started)
        return losses

    def _timed(self, members: int, seconds: float) -> None:
        """Record a step's time: the first one of a member count measures the cost of a new count."""
        self.steps_done += 1
        if members in self.traced:
            self.step_seconds = seconds
            return
        self.traced.add(members)
        self.new_count_seconds = seconds - (self.step_seconds or 0.0)

    @property
    def leave_at(self) -> float:
        """The fraction of slots that must be finished before the finished members leave
        (``harness.training.population.leave``): leaving pays once the steps still to run, each saving a
        finished member's share of a step, repay the measured cost of the new member count (a trace,
        with XLA a compile: ~3 s at T = 50, which a few hundred steps of half the members repay).
        A member's share of a step is taken as half of step/M (the rest is per-op overhead: ``speed``
        rows of M = 10 and 16). 1.0 (stay) until both costs are measured or when no step remains."""
        remaining = int(self.max_steps.max()) - self.steps_done
        if self.new_count_seconds is None or not self.step_seconds or remaining <= 0:
            return 1.0
        return 2.0 * self.new_count_seconds / (self.step_seconds * remaining)

    def _tensor(self, a: np.ndarray) -> tf.Tensor:
        a = np.asarray(a)
        return tf.convert_to_tensor(a, dtype=self.dtype if a.dtype.kind == "f" else tf.int64)

    # --- members -----------------------------------------------------------------------------------------
    def _forward_slots(self, index: tf.Tensor, inputs: tf.Tensor) -> tf.Tensor:
        params = {k: tf.gather(v, index) for k, v in self.params.items()}
        x = tf.broadcast_to(inputs[None], tf.concat([tf.shape(index), tf.shape(inputs)], axis=0))
        return self.forward(params, x)

    def predict(self, slots: list[int], inputs: np.ndarray) -> np.ndarray:
        """Readout outputs (len(slots), B, L, O) of those members for the same inputs (B, L, I)."""
        length = np.shape(inputs)[1]
        inputs = self._grown(inputs[None], "predict")[0]
        key = tuple(int(d) for d in np.shape(inputs)[1:])
        if key not in self._predictors:  # traced once per sequence length, for any members and batch
            spec = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, *key], tf.as_dtype(self.dtype))]
            self._predictors[key] = tf.function(self._forward_slots, input_signature=spec, autograph=False)
        with tf.device(self.device):
            outputs = self._predictors[key](tf.constant(slots, dtype=tf.int32), self._tensor(inputs)).numpy()
        return outputs[:, :, :length]

    def _grown(self, array: np.ndarray, kind: str) -> np.ndarray:
        """``array`` (M, B, L, ...) right-padded with zeros to the longest L this model has met for ``kind``
        ("train" or "predict"), where a task's sequences vary in length (``loss_at = "mask"``). Each new
        length traces the Python-unrolled step again (seconds at a few hundred steps); the padding changes
        no loss (its mask is 0) and no output at a real step (a step looks back only). Tasks of one length
        pass unchanged."""
        if self.task.loss_at != "mask":
            return array
        longest = self._longest[kind] = max(self._longest.get(kind, 0), int(array.shape[2]))
        widths = [(0, 0)] * array.ndim
        widths[2] = (0, longest - int(array.shape[2]))
        return np.pad(array, widths)

    def get_params(self, slot: int) -> dict[str, np.ndarray]:
        """Member ``slot``'s parameters as its own contract dict (padding dropped), float32 numpy."""
        return {
            k: np.asarray(self.params[k][slot].numpy()[region(shape)], dtype=np.float32).reshape(shape)
            for k, shape in self.shapes[slot].items()
        }

    def set_params(self, slot: int, params: dict[str, np.ndarray]) -> None:
        """Load member ``slot``'s parameters (its own shapes); its padding stays zero."""
        for k, shape in self.shapes[slot].items():
            value = self.params[k].numpy()
            value[slot][region(shape)] = np.asarray(params[k])
            self.params[k].assign(value)

    def keep(self, slots: list[int]) -> None:
        """Keep only the members in ``slots`` (in that order): finished members leave the computation.
        Every per-member variable keeps those rows in place; the traced step and predictors stay valid."""
        index = tf.constant(slots, dtype=tf.int32)
        with tf.device(self.device):
            for var in self._member_variables():
                var.assign(tf.gather(var, index))
        self.lr, self.clip, self.max_steps = self.lr[slots], self.clip[slots], self.max_steps[slots]
        self.shapes = [self.shapes[s] for s in slots]

    def _member_variables(self) -> list[tf.Variable]:
        """Every variable with a leading member axis: parameters, masks, optimiser state, settings."""
        groups = [self.params, self.masks or {}, *self.slots.values()]
        return [v for g in groups for v in g.values()] + [self.lr_t, self.clip_t]


def _members_variable(value: np.ndarray, dtype: Any, trainable: bool = False) -> tf.Variable:
    """A variable holding ``value`` whose leading (member) dimension may change: ``assign`` of fewer rows
    is allowed, and functions traced on it hold for any member count."""
    value = np.asarray(value)
    shape = tf.TensorShape([None, *value.shape[1:]])
    return tf.Variable(tf.constant(value, dtype=dtype), shape=shape, trainable=trainable)


def _fixed(var: tf.Variable, members: int) -> tf.Tensor:
    """``var``'s value with its member count made static (inside a step traced for ``members``)."""
    return tf.ensure_shape(var, [members, *var.shape[1:]])
