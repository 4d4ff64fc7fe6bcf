"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network"): each unit recurs only on itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.variant import Variant

INPUT_STD = 0.01  # W ~ N(0, 0.01²), as the widely used PyTorch IndRNN (StefOe/indrnn-pytorch) draws it


class IndRNN(Variant):
    """Independently recurrent network (Li et al. 2018):

        h_t = relu(x_t W + u ⊙ h_{t-1} + b)

    Parameters ``W`` (I, H), ``u`` (H,), ``b`` (H,). State: ``(h,)``.

    The recurrent weight is a vector, so unit j's state decays (|u_j| < 1) or grows (|u_j| > 1) on its
    own, and the gradient over k steps scales by u_j^k. Initial ``u``: U(2^(-1/T), 2^(1/T)) with T the
    task's lag, the range Li et al. use for the last recurrent layer (ours is one: a readout follows
    it), so that u^T starts between 1/2 and 2 and every unit can carry a signal across the lag;
    ``W`` ~ N(0, 0.01²) and ``b`` zero, as the PyTorch IndRNN (StefOe/indrnn-pytorch) initialises them:
    with u near 1 every unit sums its inputs over the lag, and small input weights keep that sum, and
    the first predictions, near zero. Without a lag (a bare ``init_params`` call): U(0, 1). The paper also clips |u|
    to 2^(1/T) after every optimiser step; the protocol has no such step, so here ``u`` trains freely
    (the gradient clipping still bounds each update).
    """

    id = "indrnn"
    name = "IndRNN"
    reference = "Li et al. 2018"
    family = "rnn"

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        I, H = input_size, hidden_size
        return {"W": (I, H), "u": (H,), "b": (H,)}

    def init_params(self, input_size: int, hidden_size: int, rng: np.random.Generator | int,
                    lag: int | None = None) -> dict[str, np.ndarray]:  # fmt: skip
        rng = np.random.default_rng(rng)
        W = rng.normal(0.0, INPUT_STD, size=(input_size, hidden_size)).astype(np.float32)
        low, high = (0.5 ** (1.0 / lag), 2.0 ** (1.0 / lag)) if lag else (0.0, 1.0)
        u = rng.uniform(low, high, size=hidden_size).astype(np.float32)
        return {"W": W, "u": u, "b": np.zeros(hidden_size, dtype=np.float32)}

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        (h,) = state
        h = ops.relu(ops.matmul(x, p["W"]) + p["u"] * h + p["b"])
        return h, (h,)
