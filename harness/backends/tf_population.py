"""The TensorFlow population engine: M trials of one cell as one computation (``harness.population``);
the same interface and arithmetic as ``torch_population``, in TensorFlow's terms.

Parameters are variables stacked along a leading member axis (``harness.stacking``). The training step
is one ``tf.function``: the variant's unchanged ``step`` runs in a Python loop over time inside the
graph with fewer, larger products (``harness.hoisting``: x_t's for all steps at once, a tensor's with
several parameters in one call), each member's loss is its own mean over its own batch, and the
optimiser is ``tf_backend``'s written out per member (its own learning rate, global-norm clipping and
state; the same formulas in the same order, so it rounds the same). Gradients of padding are
multiplied by zero before clipping, so padding never moves. Members leaving rebuild the variables for
the remaining ones (the step is traced again), so they leave once they are half the slots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from harness.backends.tf_backend import resolve_device
from harness.backends.tf_ops import TfOps
from harness.hoisting import Hoisting
from harness.stacking import masks, region, stack
from harness.task import Task
from harness.unroll import call_step
from harness.variant import StepError, Variant

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # tf_backend's Adam


class HoistingOps(Hoisting, TfOps):
    """The ops namespace with ``harness.hoisting``'s products. Inputs (M, B, L, I), L known."""

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
    if task.loss == "mse":
        return tf.reduce_mean(tf.square(outputs[:, :, -1, 0] - targets), axis=1)
    logits = outputs[:, :, -1, :] if task.loss_at == "last" else outputs
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_mean(tf.reshape(per_example, [members, -1]), axis=1)


class Population:
    """M members' variables, optimiser state and per-member settings; slots index the members."""

    path = "generic"  # the variant's own step, batched (never a fused kernel)
    leave_at = 0.5  # finished members leave once they are half the slots: each rebuild traces the step again

    def __init__(self, variant: Variant, task: Task, hparams: list[dict[str, Any]], params: list[dict[str, np.ndarray]],
                 device: str = "cpu", dtype: str = "float32") -> None:  # fmt: skip
        self.variant, self.task, self.dtype = variant, task, dtype
        self.device = resolve_device(device)
        self.hidden_size = max(int(hp["hidden_size"]) for hp in hparams)
        self.shapes = [{k: tuple(v.shape) for k, v in p.items()} for p in params]
        first = hparams[0]
        self.optimizer = first.get("optimizer", "adam")
        self.momentum = float(first.get("momentum", 0.0))
        self.nesterov = bool(first.get("nesterov", False)) and self.momentum > 0
        self.xla = bool(first.get("xla", False))  # as TfModel: jit_compile the training step
        self.lr = np.array([float(hp["learning_rate"]) for hp in hparams])
        self.clip = np.array([float(hp["clip_norm"]) for hp in hparams])
        stacked = stack(params)
        mask = masks(params, stacked)
        zeros = {k: np.zeros_like(v) for k, v in stacked.items()}
        self._build(stacked, mask, {"m": zeros, "v": zeros} if self.optimizer == "adam" else {"b": zeros}, 0)

    def _build(self, values: dict, mask: dict | None, slots: dict[str, dict], steps: int) -> None:
        """(Re)create the variables and the traced functions for the current members."""
        with tf.device(self.device):
            self.params = {k: tf.Variable(v, dtype=self.dtype) for k, v in values.items()}
            self.names = list(self.params)
            self.masks = None if mask is None else {k: tf.constant(v, dtype=self.dtype) for k, v in mask.items()}
            self.slots = {s: {k: tf.Variable(v, dtype=self.dtype, trainable=False) for k, v in d.items()}
                          for s, d in slots.items()}  # fmt: skip
            self.steps = tf.Variable(steps, dtype=tf.int64, trainable=False)
            self.lr_t = tf.constant(self.lr, dtype=tf.float64)
            self.clip_t = tf.constant(self.clip, dtype=self.dtype)
        self._train = tf.function(self._train_step, jit_compile=self.xla)
        self._predictors: dict[tuple[int, int], Any] = {}  # (L, I) -> traced forward, any members and batch

    # --- the computation -------------------------------------------------------------------------------
    def forward(self, params: dict[str, tf.Tensor], inputs: tf.Tensor, last_only: bool = False) -> tf.Tensor:
        """Inputs (M, B, L, I) -> readout outputs (M, B, L, O), or (M, B, 1, O) for the last step only."""
        shape = tf.shape(inputs)
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
                                f"expected (M, B, {self.hidden_size}) (rules: harness/batchable.py)")  # fmt: skip
            outputs.append(h)
        hs = outputs[-1][:, :, None, :] if last_only else tf.stack(outputs, axis=2)
        flat = tf.reshape(hs, [shape[0], -1, self.hidden_size])
        y = tf.linalg.matmul(flat, params["readout.W"]) + params["readout.b"]
        return tf.reshape(y, [shape[0], shape[1], -1, tf.shape(y)[-1]])

    def _train_step(self, inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        variables = [self.params[k] for k in self.names]
        with tf.GradientTape() as tape:
            outputs = self.forward(self.params, inputs, self.task.loss_at == "last")
            losses = member_losses(self.task, outputs, targets)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, variables)
        grads = [tf.zeros_like(v) if g is None else g for v, g in zip(variables, grads)]
        if self.masks is not None:
            grads = [g * self.masks[k] for k, g in zip(self.names, grads)]
        grads = self._clip(grads)
        t = tf.cast(self.steps.assign_add(1), tf.float64)
        for k, g in zip(self.names, grads):
            if self.optimizer == "adam":
                self._adam(k, g, t)
            else:
                self._sgd(k, g)
        return losses

    def _per_member(self, values: tf.Tensor) -> tf.Tensor:
        return tf.reshape(values, [-1, 1, 1])

    def _clip(self, grads: list[tf.Tensor]) -> list[tf.Tensor]:
        """g_m ← g_m · min(1, clip_m / ‖g_m‖), ‖g_m‖ over all of member m's gradients."""
        members = tf.shape(grads[0])[0]
        norms = tf.stack([tf.norm(tf.reshape(g, [members, -1]), axis=1) for g in grads])
        norm = tf.norm(norms, axis=0)
        scale = tf.minimum(self.clip_t / norm, tf.ones_like(norm))
        scale = tf.where(tf.math.is_finite(scale) & (self.clip_t > 0), scale, tf.ones_like(scale))
        return [g * self._per_member(scale) for g in grads]

    def _adam(self, name: str, g: tf.Tensor, t: tf.Tensor) -> None:
        var, m, v = self.params[name], self.slots["m"][name], self.slots["v"][name]
        correction_1 = 1.0 - tf.pow(tf.constant(BETA1, tf.float64), t)
        correction_2 = 1.0 - tf.pow(tf.constant(BETA2, tf.float64), t)
        m.assign(m + (1.0 - BETA1) * (g - m))
        v.assign(v * BETA2 + (1.0 - BETA2) * (g * g))
        denom = tf.sqrt(v) / tf.cast(tf.sqrt(correction_2), var.dtype) + tf.constant(EPS, var.dtype)
        step_size = self._per_member(tf.cast(self.lr_t / correction_1, var.dtype))
        var.assign_sub(step_size * m / denom)

    def _sgd(self, name: str, g: tf.Tensor) -> None:
        var, b = self.params[name], self.slots["b"][name]
        lr = self._per_member(tf.cast(self.lr_t, var.dtype))
        if self.momentum == 0:
            var.assign_sub(lr * g)
            return
        b.assign(b * self.momentum + g)
        var.assign_sub(lr * (g + self.momentum * b if self.nesterov else b))

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """One optimiser step of every member on its own batch (inputs (M, B, L, I)); the losses (M,)
        before the update."""
        with tf.device(self.device):
            return self._train(self._tensor(inputs), self._tensor(targets)).numpy()

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
        key = tuple(int(d) for d in np.shape(inputs)[1:])
        if key not in self._predictors:  # traced once per sequence length, for any members and batch
            spec = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, *key], tf.as_dtype(self.dtype))]
            self._predictors[key] = tf.function(self._forward_slots, input_signature=spec)
        with tf.device(self.device):
            return self._predictors[key](tf.constant(slots, dtype=tf.int32), self._tensor(inputs)).numpy()

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
        """Keep only the members in ``slots`` (in that order): finished members leave the computation."""
        values = {k: v.numpy()[slots] for k, v in self.params.items()}
        mask = None if self.masks is None else {k: v.numpy()[slots] for k, v in self.masks.items()}
        state = {s: {k: v.numpy()[slots] for k, v in d.items()} for s, d in self.slots.items()}
        self.lr, self.clip = self.lr[slots], self.clip[slots]
        self.shapes = [self.shapes[s] for s in slots]
        self._build(values, mask, state, int(self.steps.numpy()))
