"""The real-gated linear recurrent unit of Griffin and Hawk (De et al. 2024)."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.scan import linear_form
from harness.variant import Variant

C = 8.0  # the fixed power c of the recurrence gate (De et al. 2024)
A_POWER_RANGE = (0.9, 0.999)  # a^c = σ(lam)^c is drawn uniformly from this range at initialisation
#: 1 − a² is floored here before its square root: the derivative of sqrt is then at most 1000, the bound
#: Griffin's code puts on it (``SqrtBoundDerivative``); without it a gate a_t that rounds to 1 in float32
#: (a large ``lam``, or r_t near 0) gives an infinite gradient, and NaN at the first step (0 · inf)
SQRT_FLOOR = 1.0 / (4.0 * 1000.0**2)


class RGLRU(Variant):
    """RG-LRU (De et al. 2024), with an input projection ``u`` standing in for the block's convolution
    branch; c = 8:

        u_t = x_t W_u + b_u;   r_t = σ(x_t W_a + b_a);   i_t = σ(x_t W_x + b_x)
        log a_t = −c · softplus(−lam) ⊙ r_t              (a_t = σ(lam)^(c r_t))
        h_t = a_t ⊙ h_{t-1} + sqrt(1 − a_t²) ⊙ (i_t ⊙ u_t)      for t ≥ 2
        h_1 = i_1 ⊙ u_1

    The first step's input is not scaled by sqrt(1 − a²), as in Griffin's reference code, which resets
    the normalisation at a sequence start; the state ``started`` (one unit: 0 before the first step, 1
    after) tells the step which it is; ``rg_lru_scan`` below computes the same layer as one parallel
    scan. Parameters ``W_u W_a W_x`` (I, H), ``b_u b_a b_x lam`` (H,). States ``(h, started)`` of sizes
    H and 1. Under the root, 1 − a_t² is floored at ``SQRT_FLOOR`` (2.5e-7): that changes the equation
    only where a_t > 0.99999987 and keeps its gradient finite there.

    Initial values: ``lam`` such that a^c = σ(lam)^c is uniform on [0.9, 0.999], as the Griffin paper
    states it (its code draws σ(lam) itself from a ring of radii [0.9, 0.999]; we follow the paper);
    ``W_*`` Glorot, biases zero. Its gates read only x_t, so h is linear in h_{t-1}.
    """

    id = "rg_lru"
    name = "RG-LRU"
    reference = "De et al. 2024"
    family = "lru"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        return {"W_u": (I, H), "W_a": (I, H), "W_x": (I, H), "b_u": (H,), "b_a": (H,), "b_x": (H,), "lam": (H,)}

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        return (hidden_size, 1)

    def init_params(self, input_size: int, hidden_size: int, rng: np.random.Generator | int,
                    lag: int | None = None) -> dict[str, np.ndarray]:  # fmt: skip
        from harness.initializers import initialise

        rng = np.random.default_rng(rng)
        shapes = self.parameter_shapes(input_size, hidden_size)
        params = {name: initialise(name, shape, rng) for name, shape in shapes.items() if name != "lam"}
        a = rng.uniform(*A_POWER_RANGE, size=hidden_size) ** (1.0 / C)  # σ(lam)
        params["lam"] = np.log(a / (1.0 - a)).astype(np.float32)
        return params

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        h, started = state
        u = ops.matmul(x, p["W_u"]) + p["b_u"]
        r = ops.sigmoid(ops.matmul(x, p["W_a"]) + p["b_a"])
        i = ops.sigmoid(ops.matmul(x, p["W_x"]) + p["b_x"])
        log_a = -C * ops.softplus(-p["lam"]) * r
        a = ops.exp(log_a)
        scale = started * ops.sqrt(ops.maximum(1.0 - a * a, SQRT_FLOOR)) + (1.0 - started)  # 1 at t = 1
        h = a * h + scale * (i * u)
        return h, (h, ops.ones_like(started))


@linear_form("rg_lru")
def rg_lru_scan(variant: RGLRU, ops: Any, p: dict[str, Any], xs: Any) -> Any:
    """The same recurrence for all steps at once: a_t as in the step, b_t = sqrt(1 − a_t²) ⊙ i_t ⊙ u_t
    but b_1 = i_1 ⊙ u_1. ``started`` is the step's state for every t (0 at t = 1, then 1), from a scan
    that counts the steps, so the form needs no length known in advance."""
    u = ops.matmul(xs, p["W_u"]) + p["b_u"]
    r = ops.sigmoid(ops.matmul(xs, p["W_a"]) + p["b_a"])
    i = ops.sigmoid(ops.matmul(xs, p["W_x"]) + p["b_x"])
    a = ops.exp(-C * ops.softplus(-p["lam"]) * r)
    ones = ops.ones_like(ops.sum(r))  # (..., T, 1)
    started = ops.minimum(ops.scan(ones, ones) - 1.0, 1.0)  # the scan counts t = 1, 2, ...
    scale = started * ops.sqrt(ops.maximum(1.0 - a * a, SQRT_FLOOR)) + (1.0 - started)
    return ops.scan(a, scale * (i * u))
