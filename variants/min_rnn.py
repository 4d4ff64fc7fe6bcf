"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"), in their sequential step form.

Their gates read only x_t, never h_{t-1}, so the recurrence is linear in h and a parallel scan over time
computes the same outputs: ``min_rnn_scan.py`` holds that form, which ``--scan`` runs instead of this
step where it is faster (h_0 = 0 either way).
"""

from __future__ import annotations

from typing import Any

from harness.variant import Variant


class MinGRU(Variant):
    """minGRU (Feng et al. 2024):

        z   = σ(x_t W_z + b_z)
        ĥ   = x_t W_h + b_h
        h_t = (1 − z) ⊙ h_{t-1} + z ⊙ ĥ

    Parameters ``W_z W_h`` (I, H), ``b_z b_h`` (H,).
    """

    id = "min_gru"
    name = "minGRU"
    reference = "Feng et al. 2024"
    family = "min"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        return {"W_z": (I, H), "b_z": (H,), "W_h": (I, H), "b_h": (H,)}

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        z = ops.sigmoid(ops.matmul(x, p["W_z"]) + p["b_z"])
        candidate = ops.matmul(x, p["W_h"]) + p["b_h"]
        h = (1.0 - z) * h + z * candidate
        return h, (h,)


class MinLSTM(Variant):
    """minLSTM (Feng et al. 2024):

        f   = σ(x_t W_f + b_f)
        i   = σ(x_t W_i + b_i)
        ĥ   = x_t W_h + b_h
        h_t = (f / (f + i)) ⊙ h_{t-1} + (i / (f + i)) ⊙ ĥ

    Parameters ``W_f W_i W_h`` (I, H), ``b_f b_i b_h`` (H,).
    """

    id = "min_lstm"
    name = "minLSTM"
    reference = "Feng et al. 2024"
    family = "min"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        return {"W_f": (I, H), "b_f": (H,), "W_i": (I, H), "b_i": (H,), "W_h": (I, H), "b_h": (H,)}

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        f = ops.sigmoid(ops.matmul(x, p["W_f"]) + p["b_f"])
        i = ops.sigmoid(ops.matmul(x, p["W_i"]) + p["b_i"])
        candidate = ops.matmul(x, p["W_h"]) + p["b_h"]
        total = f + i
        h = (f / total) * h + (i / total) * candidate
        return h, (h,)
