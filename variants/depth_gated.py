"""Depth-gated LSTM (Yao et al. 2015): two stacked LSTMs whose upper cell reads the lower cell through a
depth gate."""

from __future__ import annotations

from typing import Any

from harness.lstm_cell import LSTMParts, lstm_shapes, lstm_step
from harness.variant import FORGET_BIAS, Variant, apply_forget_bias

NO_PEEPHOLES = LSTMParts(peepholes=False)


class DepthGated(Variant):
    """Depth-gated LSTM (Yao et al. 2015), two stacked layers. Layer 1 (prefix ``l1.``) is ``np``:

        z¹_t = tanh(x_t W_z + h¹_{t-1} R_z + b_z)
        i¹_t = σ(x_t W_i + h¹_{t-1} R_i + b_i)
        f¹_t = σ(x_t W_f + h¹_{t-1} R_f + b_f)
        c¹_t = z¹_t ⊙ i¹_t + c¹_{t-1} ⊙ f¹_t
        o¹_t = σ(x_t W_o + h¹_{t-1} R_o + b_o)
        h¹_t = tanh(c¹_t) ⊙ o¹_t

    Layer 2 (prefix ``l2.``, input x'_t = h¹_t) is ``np`` plus a depth gate that lets the lower cell
    flow straight up:

        z², i², f², o²  as in layer 1 with x'_t and h²_{t-1}
        d_t  = σ(x'_t W_d + p_dc ⊙ c²_{t-1} + p_dl ⊙ c¹_t + b_d)
        c²_t = d_t ⊙ c¹_t + f²_t ⊙ c²_{t-1} + i²_t ⊙ z²_t
        h²_t = tanh(c²_t) ⊙ o²_t                                    the output

    Parameters: the ``np`` contract prefixed ``l1.`` (W (I,H)) and ``l2.`` (W (H,H)), plus ``l2.W_d``
    (H, H) and ``l2.p_dc l2.p_dl l2.b_d`` (H,). State (h¹, c¹, h², c²). ``forget_bias`` sets the
    initial forget-gate bias of both layers.
    """

    id = "depth_gated"
    name = "depth-gated LSTM"
    reference = "Yao et al. 2015"
    family = "lstm"
    hyperparameters = {"forget_bias": FORGET_BIAS}

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        H = hidden_size
        return {
            **lstm_shapes(NO_PEEPHOLES, input_size, H, prefix="l1."),
            **lstm_shapes(NO_PEEPHOLES, H, H, prefix="l2."),
            "l2.W_d": (H, H), "l2.p_dc": (H,), "l2.p_dl": (H,), "l2.b_d": (H,),
        }  # fmt: skip

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        return (hidden_size,) * 4  # h¹, c¹, h², c²

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        h1, c1, h2, c2 = state
        h1, c1, _ = lstm_step(NO_PEEPHOLES, ops, p, x, h1, c1, prefix="l1.")

        # Layer 2 is written out: the depth gate adds a term to the cell update, which lstm_step lacks.
        def pre(g: str) -> Any:
            return ops.matmul(h1, p[f"l2.W_{g}"]) + ops.matmul(h2, p[f"l2.R_{g}"]) + p[f"l2.b_{g}"]

        z = ops.tanh(pre("z"))
        i = ops.sigmoid(pre("i"))
        f = ops.sigmoid(pre("f"))
        o = ops.sigmoid(pre("o"))
        d = ops.sigmoid(ops.matmul(h1, p["l2.W_d"]) + p["l2.p_dc"] * c2 + p["l2.p_dl"] * c1 + p["l2.b_d"])
        c2 = d * c1 + f * c2 + i * z
        h2 = ops.tanh(c2) * o
        return h2, (h1, c1, h2, c2)

    def adjust_init(self, params: dict, rng: Any, lag: int | None) -> None:
        for prefix in ("l1.", "l2."):
            apply_forget_bias(params, self.hparams["forget_bias"], lag, rng, prefix=prefix)
