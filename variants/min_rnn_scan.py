"""minGRU and minLSTM as parallel scans (Feng et al. 2024 train them this way): their gates read only x_t,
so h_t = a_t ⊙ h_{t-1} + b_t with a_t, b_t from x_t alone, and ``ops.scan`` computes every h_t at once.

These forms live apart from ``min_rnn.py`` on purpose: they are another way to compute the same step,
like a fused kernel, and the step's file (the variants' code fingerprint) stays as the stored trials
knew it. The tests compare each form with its step, outputs and gradients, at T = 256.
"""

from __future__ import annotations

from typing import Any

from harness.scan import linear_form


@linear_form("min_gru")
def min_gru_scan(variant: Any, ops: Any, p: dict[str, Any], xs: Any) -> Any:
    """a_t = 1 − z_t, b_t = z_t ⊙ ĥ_t with z_t = σ(x_t W_z + b_z), ĥ_t = x_t W_h + b_h."""
    z = ops.sigmoid(ops.matmul(xs, p["W_z"]) + p["b_z"])
    return ops.scan(1.0 - z, z * (ops.matmul(xs, p["W_h"]) + p["b_h"]))


@linear_form("min_lstm")
def min_lstm_scan(variant: Any, ops: Any, p: dict[str, Any], xs: Any) -> Any:
    """a_t = f_t / (f_t + i_t), b_t = i_t / (f_t + i_t) ⊙ ĥ_t."""
    f = ops.sigmoid(ops.matmul(xs, p["W_f"]) + p["b_f"])
    i = ops.sigmoid(ops.matmul(xs, p["W_i"]) + p["b_i"])
    total = f + i
    return ops.scan(f / total, (i / total) * (ops.matmul(xs, p["W_h"]) + p["b_h"]))
