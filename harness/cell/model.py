"""The model every trial trains: a variant's recurrent layer plus a linear readout, and what a backend
must provide to train it.

    y_t = h_t W_out + b_out        readout, parameters ``readout.W`` (H, O) and ``readout.b`` (O,)

The model's parameter dict is the variant's contract dict plus those two, so a dict exported from one
framework's trained model loads into the other. The loss is read where the task says (``loss_at``):

    mse:            mean over the batch of (y_L - target)^2              (O = 1, last step)
    cross_entropy:  mean of -log softmax(y)[target] over the batch (last step) or over batch and steps (all)
    masked (mask):  mean over the steps the mask reads of the step's MSE or binary cross-entropy
                    (``harness.task``'s docstring states it)
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from harness.initializers import glorot_uniform
from harness.task import Task
from harness.variant import Variant

READOUT = ("readout.W", "readout.b")


def init_rng(seed: int) -> np.random.Generator:
    """The generator of a trial's initial weights: its seed's own stream, one the data never uses."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))


def init_model_params(variant: Variant, task: Task, hidden_size: int, seed: int, lag: int) -> dict[str, np.ndarray]:
    """The variant's initial parameters (drawn first) and the readout's, from ``init_rng(seed)``."""
    rng = init_rng(seed)
    params = variant.init_params(task.input_size, hidden_size, rng, lag=lag)
    params["readout.W"] = glorot_uniform((hidden_size, task.output_size), rng)
    params["readout.b"] = np.zeros(task.output_size, dtype=np.float32)
    return params


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(variant's contract dict, readout dict)."""
    layer = {k: v for k, v in params.items() if k not in READOUT}
    return layer, {k: params[k] for k in READOUT}


class TrainableModel(Protocol):
    """What a backend builds for one trial; the trainer (``harness.training.solo``) drives it."""

    path: str  # "fused" or "generic": which implementation of the layer runs

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """One optimiser step on a batch; returns the loss before the update."""

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Readout outputs (B, L, O) as numpy, without gradients."""

    def get_params(self) -> dict[str, np.ndarray]:
        """The current parameters as the contract's dict (variant's + readout's), float32 numpy."""

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Load a parameter dict (e.g. the best checkpoint, or one exported from another framework)."""
