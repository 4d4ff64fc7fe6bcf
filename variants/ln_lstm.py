"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016): ``np`` with layer normalisation of its two
products and of its cell state."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.lstm_cell import LSTMParts, lstm_shapes
from harness.variant import FORGET_BIAS, Variant, apply_forget_bias

GATES = ("z", "i", "f", "o")  # the order of the concatenated pre-activations (4H units)
EPSILON = 1e-5  # inside the square root of the variance, as in Ba et al.'s equations and Haste's kernels


def layer_norm(ops: Any, a: Any, gain: Any, shift: Any) -> Any:
    """LN(a; g, d) = g ⊙ (a − mean(a)) / sqrt(var(a) + ε) + d over the units of ``a`` (its last axis);
    var is the population variance, mean((a − mean(a))²)."""
    centred = a - ops.mean(a)
    return gain * centred / ops.sqrt(ops.mean(centred * centred) + EPSILON) + shift


class LayerNormLSTM(Variant):
    """Layer-normalised LSTM (Ba, Kiros & Hinton 2016), ``np`` plus layer normalisation:

        [z̃ ĩ f̃ õ] = LN([x_t W_z, x_t W_i, x_t W_f, x_t W_o]; g_x, d_x)
                  + LN([h_{t-1} R_z, h_{t-1} R_i, h_{t-1} R_f, h_{t-1} R_o]; g_h, d_h) + [b_z b_i b_f b_o]
        c_t = tanh(z̃) ⊙ σ(ĩ) + c_{t-1} ⊙ σ(f̃)
        h_t = σ(õ) ⊙ tanh(LN(c_t; g_c, d_c))

    ``LN(a; g, d) = g ⊙ (a − mean(a)) / sqrt(var(a) + 1e-5) + d``, mean and population variance over
    the 4H (or H) units of one sequence. Parameters: ``np``'s twelve, ``g_x d_x g_h d_h`` (4H,) and
    ``g_c d_c`` (H,). State: ``(h, c)``.

    Initial values: ``np``'s (Glorot ``W``, orthogonal ``R``, zero biases, ``forget_bias`` on ``b_f``);
    gains 1 and shifts 0, as Ba et al. start them. The statistics are over the layer's units, so a member
    padded to a larger hidden size would normalise over its padding too: its populations share one hidden
    size (``harness/cell/batchable.py``, rule 2).
    """

    id = "ln_lstm"
    name = "layer-normalised LSTM"
    reference = "Ba, Kiros & Hinton 2016"
    family = "lstm"
    hyperparameters = {"forget_bias": FORGET_BIAS}
    parts = LSTMParts(peepholes=False)

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        H = hidden_size
        shapes = lstm_shapes(self.parts, input_size, hidden_size)
        for name in ("g_x", "d_x", "g_h", "d_h"):
            shapes[name] = (4 * H,)
        return {**shapes, "g_c": (H,), "d_c": (H,)}

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        return (hidden_size, hidden_size)

    def init_params(self, input_size: int, hidden_size: int, rng: np.random.Generator | int,
                    lag: int | None = None) -> dict[str, np.ndarray]:  # fmt: skip
        from harness.initializers import initialise

        rng = np.random.default_rng(rng)
        params = {}
        for name, shape in self.parameter_shapes(input_size, hidden_size).items():
            if name[0] in "gd":  # gains 1, shifts 0
                params[name] = np.full(shape, 1.0 if name[0] == "g" else 0.0, dtype=np.float32)
            else:
                params[name] = initialise(name, shape, rng)
        apply_forget_bias(params, self.hparams["forget_bias"], lag, rng)
        return params

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        h, c = state
        from_x = ops.concat([ops.matmul(x, p[f"W_{g}"]) for g in GATES])
        from_h = ops.concat([ops.matmul(h, p[f"R_{g}"]) for g in GATES])
        bias = ops.concat([p[f"b_{g}"] for g in GATES])
        pre = layer_norm(ops, from_x, p["g_x"], p["d_x"]) + layer_norm(ops, from_h, p["g_h"], p["d_h"]) + bias
        z, i, f, o = ops.split(pre, 4)
        c = ops.tanh(z) * ops.sigmoid(i) + c * ops.sigmoid(f)
        h = ops.sigmoid(o) * ops.tanh(layer_norm(ops, c, p["g_c"], p["d_c"]))
        return h, (h, c)
