"""The LSTM block of Greff et al. (2015) with each of its parts switchable: the shared step of the
``v`` family (``variants/lstm_family.py``) and of the layers of ``depth_gated``.

Reference cell V (peephole LSTM, Gers & Schmidhuber 2000), row-vector convention:

    z_t = g(x_t W_z + h_{t-1} R_z + b_z)                       block input,  g = tanh
    i_t = σ(x_t W_i + h_{t-1} R_i + p_i ⊙ c_{t-1} + b_i)       input gate
    f_t = σ(x_t W_f + h_{t-1} R_f + p_f ⊙ c_{t-1} + b_f)       forget gate
    c_t = z_t ⊙ i_t + c_{t-1} ⊙ f_t                             cell state
    o_t = σ(x_t W_o + h_{t-1} R_o + p_o ⊙ c_t + b_o)           output gate (peeps at the new cell)
    h_t = k(c_t) ⊙ o_t                                          block output, k = tanh
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LSTMParts:
    """Which parts of V a cell has (each Greff variant switches exactly one)."""

    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    input_activation: bool = True
    output_activation: bool = True
    peepholes: bool = True
    coupled: bool = False  # f_t = 1 - i_t
    full_gate_recurrence: bool = False  # gates read i_{t-1}, f_{t-1}, o_{t-1}

    @property
    def gates(self) -> tuple[str, ...]:
        """The gates with their own parameters."""
        own_forget = self.forget_gate and not self.coupled
        return tuple(g for g, on in (("i", self.input_gate), ("f", own_forget), ("o", self.output_gate)) if on)


def lstm_shapes(parts: LSTMParts, input_size: int, hidden_size: int, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """Parameter contract of an LSTM block with these parts (names prefixed for stacked layers)."""
    I, H = input_size, hidden_size
    shapes: dict[str, tuple[int, ...]] = {}
    for g in ("z", *parts.gates):
        shapes[f"{prefix}W_{g}"] = (I, H)
    for g in ("z", *parts.gates):
        shapes[f"{prefix}R_{g}"] = (H, H)
    for g in ("z", *parts.gates):
        shapes[f"{prefix}b_{g}"] = (H,)
    if parts.peepholes:
        for g in parts.gates:
            shapes[f"{prefix}p_{g}"] = (H,)
    if parts.full_gate_recurrence:
        for target in parts.gates:
            for source in parts.gates:
                shapes[f"{prefix}R_{source}{target}"] = (H, H)
    return shapes


def lstm_step(
    parts: LSTMParts, ops: Any, p: dict[str, Any], x: Any, h: Any, c: Any,
    previous_gates: dict[str, Any] | None = None, prefix: str = "",
) -> tuple[Any, Any, dict[str, Any]]:  # fmt: skip
    """One step of the block: returns (h_t, c_t, {gate: activation}) (the activations feed FGR)."""

    def pre(g: str) -> Any:
        a = ops.matmul(x, p[f"{prefix}W_{g}"]) + ops.matmul(h, p[f"{prefix}R_{g}"]) + p[f"{prefix}b_{g}"]
        if parts.full_gate_recurrence and g != "z":
            for source in parts.gates:
                a = a + ops.matmul(previous_gates[source], p[f"{prefix}R_{source}{g}"])
        return a

    def peep(g: str, cell: Any) -> Any:
        return p[f"{prefix}p_{g}"] * cell if parts.peepholes else 0.0

    z = pre("z")
    if parts.input_activation:
        z = ops.tanh(z)
    i = ops.sigmoid(pre("i") + peep("i", c)) if parts.input_gate else 1.0
    if parts.coupled:
        f = 1.0 - i
    elif parts.forget_gate:
        f = ops.sigmoid(pre("f") + peep("f", c))
    else:
        f = 1.0
    c_new = z * i + c * f
    o = ops.sigmoid(pre("o") + peep("o", c_new)) if parts.output_gate else 1.0
    h_new = (ops.tanh(c_new) if parts.output_activation else c_new) * o
    return h_new, c_new, {"i": i, "f": f, "o": o}
