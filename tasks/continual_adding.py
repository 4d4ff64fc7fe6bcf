"""Adding episodes back to back with no reset and no boundary marker (after Gers, Schmidhuber & Cummins 2000):
docs/tasks.md `continual_adding`."""

from __future__ import annotations

import numpy as np

from harness.task import Batch, Task
from tasks.adding import adding_episodes

TRAIN_EPISODES = 8  # episodes per training sequence
HELD_OUT_EPISODES = 80  # per validation or test stream: ten times training's


class ContinualAdding(Task):
    """A stream of ``adding`` episodes of length T; read each episode's sum at its last step.

    Definition (input size 2, output size 1, T >= 2; a stream of E episodes has L = E·T steps, E = 8 for
    training, E = 80 for the validation and test streams):

    * episode k occupies steps kT .. kT + T - 1 and is an ``adding`` sequence: values ``x ~ U[0, 1)`` in
      channel 0, markers in channel 1 at ``i ~ U{0, ..., floor(T/2) - 1}`` and ``j ~ U{floor(T/2), ...,
      T - 1}`` counted from the episode's first step; nothing marks where an episode starts or ends;
    * targets (float32, (B, L, 2), ``loss_at = "mask"``): channel 0 holds at step kT + T - 1 the sum of
      episode k's two marked values (0 elsewhere), channel 1 the mask, 1 at those E steps only.

    Loss: MSE at the episode ends (the mask). Metric ``mse`` over all episode ends of the stream (the same
    number), lower is better; solved < 0.01. Baseline: always predicting 1 gives 1/6, as in ``adding``.
    The network is never reset: to answer episode k it must hold its marked values and let go of episode
    k - 1's.
    """

    id = "continual_adding"
    name = "Continual adding"
    reference = "Gers, Schmidhuber & Cummins 2000 (continual form); Le et al. 2015 (episodes)"
    input_size = 2
    output_size = 1
    loss = "mse"
    loss_at = "mask"
    metric = "mse"
    higher_is_better = False
    solved_threshold = 0.01
    min_length = 2

    def seq_len(self, T: int) -> int:
        return TRAIN_EPISODES * self.check_length(T)

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        return adding_streams(self.check_length(T), TRAIN_EPISODES, batch_size, rng)

    def generate_held_out(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        return adding_streams(self.check_length(T), HELD_OUT_EPISODES, batch_size, rng)

    def baseline(self, T: int) -> dict[str, float]:
        self.check_length(T)
        return {"loss": 1.0 / 6.0, "mse": 1.0 / 6.0}

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        targets = np.asarray(targets, dtype=np.float64)
        read = targets[..., 1] > 0
        error = np.asarray(outputs, dtype=np.float64)[..., 0][read] - targets[..., 0][read]
        mse = float(np.mean(error**2))
        return {"loss": mse, "mse": mse}


def adding_streams(T: int, episodes: int, batch_size: int, rng: np.random.Generator) -> Batch:
    """``batch_size`` streams of ``episodes`` adding episodes of length T each, laid end to end."""
    drawn = adding_episodes(T, batch_size * episodes, rng)  # stream b holds episodes b·E .. b·E + E - 1
    inputs = drawn.inputs.reshape(batch_size, episodes * T, 2)
    targets = np.zeros((batch_size, episodes, T, 2), dtype=np.float32)
    targets[:, :, -1, 0] = drawn.targets.reshape(batch_size, episodes)
    targets[:, :, -1, 1] = 1.0
    return Batch(inputs, targets.reshape(batch_size, episodes * T, 2))
