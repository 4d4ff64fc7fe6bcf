"""The adding problem in Hochreiter & Schmidhuber 1997's original form (exp. 4): docs/tasks.md `adding_hs97`."""

from __future__ import annotations

import numpy as np

from harness.task import Batch, Task

TOLERANCE = 0.04  # a sequence is processed correctly if its absolute error at the end is below this


def pad_mask(lengths: np.ndarray, total: int) -> np.ndarray:
    """(B, total) True on the left padding of sequences of ``lengths`` right-aligned in ``total`` steps."""
    return np.arange(total)[None, :] < (total - lengths)[:, None]


class AddingHS97(Task):
    """Add two marked numbers from the first half of a sequence of random length (the 1997 form).

    Definition (input size 2; T >= 4 is the minimal sequence length, h = floor(T/2), m = min(10, h)):

    * each sequence draws its length n ~ U{T, ..., T + floor(T/10)} and is right-aligned in
      L = T + floor(T/10) steps: the L - n steps before it are all-zero padding (the readout is always at
      the last step; the first pair's -1 marker tells where the sequence starts);
    * channel 0: values ~ U[-1, 1) at each of the n steps; channel 1 (the marker): -1 at the first and the
      last pair, 1 at the two marked pairs, 0 elsewhere;
    * marked pairs, at positions counted from the sequence's first pair: X1 at r1 ~ U{0, ..., m - 1}
      ("one of the first ten pairs"), then X2 at r2 uniform over the first h - 1 pairs still unmarked,
      i.e. over {0, ..., h - 1} without r1;
    * a marked first pair (r1 = 0 or r2 = 0) has its value set to 0 (the paper sets X1 to 0 then; we apply
      the same rule to X2, which the paper leaves open) and its marker is 1, not -1;
    * target (float32, (B,)): 0.5 + (X1 + X2) / 4, in [0, 1].

    Loss: MSE at the last step. Metrics: ``mse`` and ``success_rate``, the fraction of sequences whose
    absolute error at the last step is below 0.04 (the paper's "processed correctly"; primary, solved >= 0.99,
    i.e. nearly all test sequences right: the paper reports 1 wrong in 2560 or fewer).
    Baseline: always predicting 0.5 (the mean target); see ``baseline`` for the exact values.
    """

    id = "adding_hs97"
    name = "Adding problem (Hochreiter & Schmidhuber 1997)"
    reference = "Hochreiter & Schmidhuber 1997, exp. 4"
    input_size = 2
    output_size = 1
    loss = "mse"
    loss_at = "last"
    metric = "success_rate"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 4  # X2 needs h - 1 >= 1 pairs to choose from

    def seq_len(self, T: int) -> int:
        T = self.check_length(T)
        return T + T // 10

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        total, half = self.seq_len(T), T // 2
        lengths = rng.integers(T, total + 1, size=batch_size)
        values = rng.uniform(-1.0, 1.0, size=(batch_size, total)).astype(np.float32)
        r1 = rng.integers(0, min(10, half), size=batch_size)
        j = rng.integers(0, half - 1, size=batch_size)
        r2 = j + (j >= r1)  # uniform over {0..h-1} without r1
        rows, start = np.arange(batch_size), total - lengths
        markers = np.zeros((batch_size, total), dtype=np.float32)
        markers[rows, start] = -1.0
        markers[:, -1] = -1.0
        markers[rows, start + r1] = 1.0
        markers[rows, start + r2] = 1.0
        values[pad_mask(lengths, total)] = 0.0
        first_marked = (r1 == 0) | (r2 == 0)
        values[rows[first_marked], start[first_marked]] = 0.0
        x_sum = values[rows, start + r1] + values[rows, start + r2]
        targets = np.float32(0.5) + x_sum / np.float32(4.0)
        return Batch(np.stack([values, markers], axis=-1), targets.astype(np.float32))

    def baseline(self, T: int) -> dict[str, float]:
        """Predicting 0.5 always. With q = P(a marked pair is the first pair, its value then 0)
        = 1/m + (1 - 1/m)/(h - 1) and S = X1 + X2: MSE = E[S^2]/16 = (2 - q)/48; success =
        P(|S| < 0.16) = (1 - q)(a - a^2/4) + q a with a = 0.16 (triangular S, or uniform when one is 0)."""
        T = self.check_length(T)
        half = T // 2
        m = min(10, half)
        q = 1.0 / m + (1.0 - 1.0 / m) / (half - 1)
        a = 4 * TOLERANCE
        mse = (2.0 - q) / 48.0
        return {"loss": mse, "mse": mse, "success_rate": (1.0 - q) * (a - a * a / 4) + q * a}

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        error = np.asarray(outputs, dtype=np.float64)[:, -1, 0] - np.asarray(targets, dtype=np.float64)
        mse = float(np.mean(error**2))
        return {"loss": mse, "mse": mse, "success_rate": float(np.mean(np.abs(error) < TOLERANCE))}
