"""The three best architectures of Jozefowicz et al.'s (2015) evolutionary search, MUT1-MUT3.

The paper adds the raw input x_t where I = H; here u_t = x_t W_x (I, H) stands in for it so that any
input size works.
"""

from __future__ import annotations

from typing import Any

from harness.variant import Variant


class _MUT(Variant):
    family = "gru"
    reference = "Jozefowicz et al. 2015"

    #: the contract's names in docs/variants.md's order; the first letter gives the shape:
    #: W (I, H), R (H, H), b (H,)
    contract: tuple[str, ...] = ()

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        role = {"W": (I, H), "R": (H, H), "b": (H,)}
        return {name: role[name[0]] for name in self.contract}


class MUT1(_MUT):
    """MUT1 (Jozefowicz et al. 2015), with u_t = x_t W_x:

        z  = σ(x W_z + b_z)
        r  = σ(x W_r + h R_r + b_r)
        h' = tanh((r ⊙ h) R_h + tanh(u) + b_h) ⊙ z + h ⊙ (1 − z)

    Parameters ``W_z b_z W_r R_r b_r R_h W_x b_h``.
    """

    id, name = "mut1", "MUT1"
    contract = ("W_z", "b_z", "W_r", "R_r", "b_r", "R_h", "W_x", "b_h")

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        u = ops.matmul(x, p["W_x"])
        z = ops.sigmoid(ops.matmul(x, p["W_z"]) + p["b_z"])
        r = ops.sigmoid(ops.matmul(x, p["W_r"]) + ops.matmul(h, p["R_r"]) + p["b_r"])
        h = ops.tanh(ops.matmul(r * h, p["R_h"]) + ops.tanh(u) + p["b_h"]) * z + h * (1.0 - z)
        return h, (h,)


class MUT2(_MUT):
    """MUT2 (Jozefowicz et al. 2015), with u_t = x_t W_x:

        z  = σ(x W_z + h R_z + b_z)
        r  = σ(u + h R_r + b_r)
        h' = tanh((r ⊙ h) R_h + x W_h + b_h) ⊙ z + h ⊙ (1 − z)

    Parameters ``W_z R_z b_z W_x R_r b_r R_h W_h b_h``.
    """

    id, name = "mut2", "MUT2"
    contract = ("W_z", "R_z", "b_z", "W_x", "R_r", "b_r", "R_h", "W_h", "b_h")

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        u = ops.matmul(x, p["W_x"])
        z = ops.sigmoid(ops.matmul(x, p["W_z"]) + ops.matmul(h, p["R_z"]) + p["b_z"])
        r = ops.sigmoid(u + ops.matmul(h, p["R_r"]) + p["b_r"])
        h = ops.tanh(ops.matmul(r * h, p["R_h"]) + ops.matmul(x, p["W_h"]) + p["b_h"]) * z + h * (1.0 - z)
        return h, (h,)


class MUT3(_MUT):
    """MUT3 (Jozefowicz et al. 2015):

        z  = σ(x W_z + tanh(h) R_z + b_z)
        r  = σ(x W_r + h R_r + b_r)
        h' = tanh((r ⊙ h) R_h + x W_h + b_h) ⊙ z + h ⊙ (1 − z)

    Parameters ``W_z R_z b_z W_r R_r b_r R_h W_h b_h``.
    """

    id, name = "mut3", "MUT3"
    contract = ("W_z", "R_z", "b_z", "W_r", "R_r", "b_r", "R_h", "W_h", "b_h")

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        z = ops.sigmoid(ops.matmul(x, p["W_z"]) + ops.matmul(ops.tanh(h), p["R_z"]) + p["b_z"])
        r = ops.sigmoid(ops.matmul(x, p["W_r"]) + ops.matmul(h, p["R_r"]) + p["b_r"])
        h = ops.tanh(ops.matmul(r * h, p["R_h"]) + ops.matmul(x, p["W_h"]) + p["b_h"]) * z + h * (1.0 - z)
        return h, (h,)
