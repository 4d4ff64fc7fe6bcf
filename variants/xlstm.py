"""xLSTM's two cells (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"), one head each: the
scalar-memory sLSTM and the matrix-memory mLSTM, both with exponential input gates kept finite by a
stabiliser state m.

The stabiliser cancels in exact arithmetic: every term of c, n (and C) carries the same factor
exp(−m_t), so h_t does not depend on m except through mLSTM's lower bound exp(−m_t) on its normaliser.
It only keeps exp() from overflowing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.lstm_cell import LSTMParts, lstm_shapes
from harness.variant import HyperParameter, Variant, apply_forget_bias

SLSTM_FORGET_BIAS = HyperParameter(
    default="powerlaw",
    kind="float_or_choice",
    choices=("powerlaw", "chrono"),
    init_only=True,
    doc="initial forget-gate pre-activation bias b_f: 'powerlaw' (xLSTM's default for one block: "
    "b_f,j = 5 − 12 (j / (H − 1))^0.3, from 5 down to −7 over the units), 'chrono' "
    "(Tallec & Ollivier 2018) or a number for every unit",
)
MLSTM_FORGET_BIAS = 3.0  # xLSTM's linspace(3, 6) over heads, for one head: its first value
MLSTM_INPUT_BIAS_STD = 0.1  # xLSTM: b_i ~ N(0, 0.1²)


def powerlaw_forget_bias(hidden_size: int) -> np.ndarray:
    """xLSTM's ``powerlaw_blockdependent`` forget-gate bias for a stack of one block:
    b_f,j = −(−5 + 12 (j / (H − 1))^0.3), j = 0 … H − 1 (5 for H = 1)."""
    if hidden_size == 1:
        return np.array([5.0], dtype=np.float32)
    ratio = np.arange(hidden_size, dtype=np.float64) / (hidden_size - 1)
    return (5.0 - 12.0 * ratio**0.3).astype(np.float32)


def log_sigmoid(ops: Any, a: Any) -> Any:
    """log σ(a) = −softplus(−a), finite for every a (log(sigmoid(a)) underflows to −inf for a ≪ 0)."""
    return -ops.softplus(-a)


class SLSTM(Variant):
    """sLSTM (Beck et al. 2024), one head, full recurrent matrices. Pre-activations as in ``np``
    (``x_t W_* + h_{t-1} R_* + b_*`` for * = z, i, f, o), then an exponential input gate:

        m_t  = max(log σ(f̃) + m_{t-1}, ĩ)                          stabiliser
        i'_t = exp(ĩ − m_t);   f'_t = exp(log σ(f̃) + m_{t-1} − m_t)
        c_t  = f'_t ⊙ c_{t-1} + i'_t ⊙ tanh(z̃)
        n_t  = f'_t ⊙ n_{t-1} + i'_t                                 normaliser
        h_t  = σ(õ) ⊙ c_t / n_t

    Parameters: exactly ``np``'s twelve (``W_z W_i W_f W_o`` (I, H), ``R_*`` (H, H), ``b_*`` (H,)).
    States ``(h, c, n, m)``, all zero at t = 0 (so m_1 = max(log σ(f̃_1), ĩ_1); xLSTM's code sets
    m_1 = ĩ_1 instead, which gives the same h_1 since h does not depend on m).

    Initial values as xLSTM's sLSTM layer (``recurrent_weight_init="zeros"``, ``bias_init=
    "powerlaw_blockdependent"``): ``R_*`` zero, ``b_z b_i b_o`` zero, ``b_f`` by ``forget_bias``;
    ``W_*`` Glorot (xLSTM's layer draws its head-wise input projections from its own small init).
    """

    id = "slstm"
    name = "sLSTM"
    reference = "Beck et al. 2024"
    family = "xlstm"
    hyperparameters = {"forget_bias": SLSTM_FORGET_BIAS}
    parts = LSTMParts(peepholes=False)

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return lstm_shapes(self.parts, input_size, hidden_size)

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        return (hidden_size,) * 4

    def adjust_init(self, params: dict[str, np.ndarray], rng: np.random.Generator, lag: int | None) -> None:
        for g in ("z", "i", "f", "o"):
            params[f"R_{g}"][...] = 0.0
        if self.hparams["forget_bias"] == "powerlaw":
            params["b_f"][...] = powerlaw_forget_bias(params["b_f"].shape[0])
        else:
            apply_forget_bias(params, self.hparams["forget_bias"], lag, rng)
            params["b_i"][...] = 0.0  # chrono's b_i = −b_f is for a sigmoid input gate, not an exponential one

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        h, c, n, m = state

        def pre(g: str) -> Any:
            return ops.matmul(x, p[f"W_{g}"]) + ops.matmul(h, p[f"R_{g}"]) + p[f"b_{g}"]

        z, i, f, o = pre("z"), pre("i"), pre("f"), pre("o")
        log_f = log_sigmoid(ops, f) + m
        m = ops.maximum(log_f, i)
        input_gate, forget_gate = ops.exp(i - m), ops.exp(log_f - m)
        c = forget_gate * c + input_gate * ops.tanh(z)
        n = forget_gate * n + input_gate
        h = ops.sigmoid(o) * c / n
        return h, (h, c, n, m)


class MLSTM(Variant):
    """mLSTM (Beck et al. 2024), one head, key size H. Its gates read only x_t:

        q_t = x_t W_q + b_q;   k_t = (x_t W_k + b_k) / sqrt(H);   v_t = x_t W_v + b_v        (each H)
        ĩ_t = x_t W_i + b_i;   f̃_t = x_t W_f + b_f                                           (scalars)
        m_t = max(log σ(f̃_t) + m_{t-1}, ĩ_t);   i'_t = exp(ĩ_t − m_t);   f'_t = exp(log σ(f̃_t) + m_{t-1} − m_t)
        C_t = f'_t C_{t-1} + i'_t k_tᵀ v_t           (H × H per sequence; rows indexed by the key)
        n_t = f'_t n_{t-1} + i'_t k_t
        h_t = σ(x_t W_o + b_o) ⊙ (q_t C_t) / max(|q_t · n_t|, exp(−m_t))

    Parameters ``W_q W_k W_v W_o`` (I, H), ``b_q b_k b_v b_o`` (H,), ``W_i W_f`` (I, 1), ``b_i b_f``
    (1,). States ``(h, C, n, m)`` of sizes H, H·H (C stored flat, row-major), H and 1; all zero at t = 0.
    Its gates read only x_t, so C and n are linear in their past: ``variants/xlstm_scan.py`` computes the
    same layer in xLSTM's chunkwise form.
    Memory: C is H² floats per sequence, and training keeps several H × H tensors per step for the
    backward pass (``harness.run.memory`` estimates a plan's need and refuses one that would not fit).

    Initial values as xLSTM's mLSTM layer: ``W_i W_f`` zero, ``b_f`` = 3 (its linspace(3, 6) over heads
    for one head), ``b_i`` ~ N(0, 0.1²); ``W_q W_k W_v`` from its small init, N(0, 2 / (5H)) (Nguyen &
    Salazar 2019; H the width they project to); ``W_o`` Glorot; the other biases zero. The 1/sqrt(H)
    and the normaliser depend on H, so populations share one hidden size.
    """

    id = "mlstm"
    name = "mLSTM"
    reference = "Beck et al. 2024"
    family = "xlstm"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for g in ("q", "k", "v", "o"):
            shapes[f"W_{g}"], shapes[f"b_{g}"] = (I, H), (H,)
        for g in ("i", "f"):
            shapes[f"W_{g}"], shapes[f"b_{g}"] = (I, 1), (1,)
        return shapes

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        return (hidden_size, hidden_size * hidden_size, hidden_size, 1)

    def adjust_init(self, params: dict[str, np.ndarray], rng: np.random.Generator, lag: int | None) -> None:
        hidden = params["W_q"].shape[1]
        for g in ("q", "k", "v"):  # xLSTM's small init (Nguyen & Salazar 2019): N(0, 2 / (5 d)), d the width
            params[f"W_{g}"][...] = rng.normal(0.0, math.sqrt(2.0 / (5.0 * hidden)), size=params[f"W_{g}"].shape)
        params["W_i"][...] = 0.0
        params["W_f"][...] = 0.0
        params["b_f"][...] = MLSTM_FORGET_BIAS
        params["b_i"][...] = rng.normal(0.0, MLSTM_INPUT_BIAS_STD, size=params["b_i"].shape)

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        h, C, n, m = state
        H = p["W_q"].shape[-1]
        q = ops.matmul(x, p["W_q"]) + p["b_q"]
        k = (ops.matmul(x, p["W_k"]) + p["b_k"]) / math.sqrt(H)
        v = ops.matmul(x, p["W_v"]) + p["b_v"]
        i = ops.matmul(x, p["W_i"]) + p["b_i"]
        log_f = log_sigmoid(ops, ops.matmul(x, p["W_f"]) + p["b_f"]) + m
        m = ops.maximum(log_f, i)
        input_gate, forget_gate = ops.exp(i - m), ops.exp(log_f - m)  # (…, 1)
        outer = ops.matmul(ops.unflatten(k, (H, 1)), ops.unflatten(v, (1, H)))  # k_tᵀ v_t, (…, H, H)
        C = ops.unflatten(forget_gate, (1, 1)) * ops.unflatten(C, (H, H)) + ops.unflatten(input_gate, (1, 1)) * outer
        n = forget_gate * n + input_gate * k
        read = ops.flatten(ops.matmul(ops.unflatten(q, (1, H)), C), 2)  # q_t C_t, (…, H)
        normaliser = ops.maximum(ops.abs(ops.sum(q * n)), ops.exp(-m))
        h = ops.sigmoid(ops.matmul(x, p["W_o"]) + p["b_o"]) * read / normaliser
        return h, (h, ops.flatten(C, 2), n, m)
