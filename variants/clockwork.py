"""Clockwork RNN (Koutník et al. 2014): modules of hidden units updated at exponentially spaced periods."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from harness.errors import UsageError
from harness.variant import HyperParameter, Variant


class Clockwork(Variant):
    """Clockwork RNN (Koutník et al. 2014). The H units form ``m`` equal modules (hyperparameter
    ``modules``, H divisible by m) with periods 1, 2, 4, …, 2^(m−1), fastest first. At step t (from 0)
    module k is active when ``t mod 2^k == 0``; its units compute

        h_t = tanh(x_t W + h_{t-1} (R ⊙ M) + b)

    and the units of inactive modules keep h_{t-1}. ``M`` is the fixed block mask: a unit of module k
    receives recurrent input only from modules j ≥ k (same or slower). In the row-vector convention
    ``(h R)[:, dst] = Σ_src h[:, src] R[src, dst]``, so ``M[src, dst] = 1`` iff
    ``module(src) ≥ module(dst)``.

    Parameters ``W`` (I, H), ``R`` (H, H, stored full; the mask is not a parameter), ``b`` (H,).
    The step has no time index, so the state carries a step counter t (size 1) next to h.
    """

    id = "clockwork"
    name = "clockwork RNN"
    reference = "Koutník et al. 2014"
    family = "rnn"
    hyperparameters = {
        "modules": HyperParameter(
            default=4, kind="int", minimum=1,
            doc="number m of equal modules of hidden units, periods 1, 2, ..., 2^(m-1); H divisible by m",
        ),
    }  # fmt: skip

    @property
    def modules(self) -> int:
        return int(self.hparams["modules"])

    def _check_size(self, hidden_size: int) -> None:
        if hidden_size % self.modules:
            raise UsageError(
                f"variant {self.id!r}: hidden size H={hidden_size} is not divisible by "
                f"modules={self.modules}; choose H a multiple of modules"
            )

    def module_of_unit(self, hidden_size: int) -> np.ndarray:
        """Module index k of each hidden unit (modules are contiguous blocks, fastest first)."""
        self._check_size(hidden_size)
        return np.arange(hidden_size) // (hidden_size // self.modules)

    def periods(self, hidden_size: int) -> np.ndarray:
        """Period 2^k of each hidden unit, shape (H,)."""
        self._check_size(hidden_size)
        return _clock(self.modules, hidden_size)[0]

    def mask(self, hidden_size: int) -> np.ndarray:
        """M[src, dst] = 1 iff module(src) ≥ module(dst): each unit listens to its own and slower modules."""
        self._check_size(hidden_size)
        return _clock(self.modules, hidden_size)[1]

    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        self._check_size(hidden_size)
        return {"W": (input_size, hidden_size), "R": (hidden_size, hidden_size), "b": (hidden_size,)}

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        return (hidden_size, 1)  # h and the step counter t

    def step(self, ops: Any, p: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        h, t = state
        hidden_size = int(p["b"].shape[-1])  # the last axis: a population stacks members in front
        periods = ops.constant(self.periods(hidden_size), like=h)
        mask = ops.constant(self.mask(hidden_size), like=p["R"])
        # t is (B, 1) and periods (H,): broadcasting gives each unit's activity at this step
        active = ops.equal(ops.floormod(t, periods), 0.0)
        candidate = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"] * mask) + p["b"])
        h = ops.where(active, candidate, h)
        return h, (h, t + 1.0)


@lru_cache(maxsize=64)
def _clock(modules: int, hidden_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(periods (H,), mask (H, H)) for m modules, built once: the step runs at every time step."""
    k = np.arange(hidden_size) // (hidden_size // modules)
    periods, mask = (2.0**k).astype(np.float64), (k[:, None] >= k[None, :]).astype(np.float64)
    return periods, mask
