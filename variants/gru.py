"""Gated recurrent units (Cho et al. 2014): reset before the recurrent product (``gru``, the essay's
form) and after it (``gru_ra``, the form of cuDNN, ``torch.nn.GRU`` and Keras' default)."""

from __future__ import annotations

from typing import Any

from harness.variant import Variant


class GRU(Variant):
    """Gated recurrent unit (Cho et al. 2014), reset applied before the recurrent product:

        z_t = σ(x_t W_z + h_{t-1} R_z + b_z)
        r_t = σ(x_t W_r + h_{t-1} R_r + b_r)
        ĥ_t = tanh(x_t W_h + (r_t ⊙ h_{t-1}) R_h + b_h)
        h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ ĥ_t

    Parameters ``W_z W_r W_h`` (I, H), ``R_z R_r R_h`` (H, H), ``b_z b_r b_h`` (H,).
    """

    id = "gru"
    name = "GRU (reset before)"
    reference = "Cho et al. 2014"
    family = "gru"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        shapes: dict[str, tuple[int, ...]] = {f"W_{g}": (I, H) for g in "zrh"}
        shapes.update({f"R_{g}": (H, H) for g in "zrh"})
        shapes.update({f"b_{g}": (H,) for g in "zrh"})
        return shapes

    def candidate(self, ops: Any, p: dict[str, Any], x: Any, h: Any, r: Any) -> Any:
        """ĥ_t = tanh(x_t W_h + (r_t ⊙ h_{t-1}) R_h + b_h)."""
        return ops.tanh(ops.matmul(x, p["W_h"]) + ops.matmul(r * h, p["R_h"]) + p["b_h"])

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        z = ops.sigmoid(ops.matmul(x, p["W_z"]) + ops.matmul(h, p["R_z"]) + p["b_z"])
        r = ops.sigmoid(ops.matmul(x, p["W_r"]) + ops.matmul(h, p["R_r"]) + p["b_r"])
        h = (1.0 - z) * h + z * self.candidate(ops, p, x, h, r)
        return h, (h,)


class GRUResetAfter(GRU):
    """GRU with the reset applied after the recurrent product (cuDNN, ``torch.nn.GRU``, Keras'
    ``reset_after=True``):

        z_t = σ(x_t W_z + h_{t-1} R_z + b_z)
        r_t = σ(x_t W_r + h_{t-1} R_r + b_r)
        ĥ_t = tanh(x_t W_h + b_h + r_t ⊙ (h_{t-1} R_h + b_rh))
        h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ ĥ_t

    Parameters as ``gru`` plus ``b_rh`` (H,). Fused kernel: ``torch.nn.GRU`` / ``keras.layers.GRU``.
    """

    id = "gru_ra"
    name = "GRU (reset after)"
    reference = "Cho et al. 2014; cuDNN form"
    fused_kernel = "gru"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        return {**super().parameter_shapes(input_size, hidden_size), "b_rh": (hidden_size,)}

    def candidate(self, ops: Any, p: dict[str, Any], x: Any, h: Any, r: Any) -> Any:
        """ĥ_t = tanh(x_t W_h + b_h + r_t ⊙ (h_{t-1} R_h + b_rh))."""
        return ops.tanh(ops.matmul(x, p["W_h"]) + p["b_h"] + r * (ops.matmul(h, p["R_h"]) + p["b_rh"]))
