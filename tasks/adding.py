"""The adding problem, modern form (Le et al. 2015; Arjovsky et al. 2016; Li et al. 2018): docs/tasks.md
`adding`."""

from __future__ import annotations

import numpy as np

from harness.task import Batch, Task


def adding_episodes(T: int, count: int, rng: np.random.Generator) -> Batch:
    """``count`` adding sequences of length T (the definition below): inputs (count, T, 2), targets (count,)."""
    half = T // 2
    values = rng.uniform(0.0, 1.0, size=(count, T)).astype(np.float32)
    first = rng.integers(0, half, size=count)
    second = rng.integers(half, T, size=count)
    rows = np.arange(count)
    markers = np.zeros((count, T), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return Batch(np.stack([values, markers], axis=-1), targets.astype(np.float32))


class Adding(Task):
    """Add the two marked numbers of a length-T sequence; read the sum at the last step.

    Definition (L = T, input size 2, T >= 2 so that both halves are non-empty):

    * channel 0: values ``x_t ~ U[0, 1)`` at every step t = 0..T-1;
    * channel 1: 0 except two 1s, at ``i ~ U{0, ..., floor(T/2) - 1}`` and ``j ~ U{floor(T/2), ..., T-1}``;
    * target (float32, shape (B,)): ``x_i + x_j`` (the float32 values the network sees, summed in float32).

    Loss: MSE of ``outputs[:, -1, 0]`` against the target. Metric ``mse`` (the same number), lower is better.
    Baseline: always predicting 1 (the mean target) gives MSE = Var(x_i + x_j) = 2/12 = 1/6.
    Solved: MSE < 0.01.
    """

    id = "adding"
    name = "Adding problem"
    reference = "Le et al. 2015; Arjovsky et al. 2016; Li et al. 2018"
    input_size = 2
    output_size = 1
    loss = "mse"
    loss_at = "last"
    metric = "mse"
    higher_is_better = False
    solved_threshold = 0.01
    min_length = 2

    def seq_len(self, T: int) -> int:
        return self.check_length(T)

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        return adding_episodes(self.check_length(T), batch_size, rng)

    def baseline(self, T: int) -> dict[str, float]:
        self.check_length(T)
        return {"loss": 1.0 / 6.0, "mse": 1.0 / 6.0}

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        prediction = np.asarray(outputs, dtype=np.float64)[:, -1, 0]
        mse = float(np.mean((prediction - np.asarray(targets, dtype=np.float64)) ** 2))
        return {"loss": mse, "mse": mse}
