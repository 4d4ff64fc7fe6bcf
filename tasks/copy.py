"""The copying memory task (Arjovsky et al. 2016): docs/tasks.md `copy`."""

from __future__ import annotations

import math

import numpy as np

from harness.task import Batch, Task, softmax_cross_entropy

N_DATA = 8  # data symbols 0..7
BLANK = 8
DELIMITER = 9
N_RECALL = 10  # symbols to remember and reproduce
PAD = 20  # L - T: 10 data steps + (T - 1 blanks and the delimiter: T steps) + 10 recall steps


def copy_batch(data: np.ndarray, delays: np.ndarray, length: int) -> Batch:
    """The copy layout for data (B, 10) and per-sequence delays d (B,), padded with blanks to ``length``.

    Inputs: data at steps 0..9, blanks, the delimiter at step d + 9, blanks to the end (one-hot, 10 channels).
    Targets: blank everywhere except the data, in order, at steps d + 10 .. d + 19.
    """
    batch_size = len(data)
    rows = np.arange(batch_size)[:, None]
    symbols = np.full((batch_size, length), BLANK, dtype=np.int64)
    symbols[:, :N_RECALL] = data
    symbols[rows[:, 0], delays + 9] = DELIMITER
    targets = np.full((batch_size, length), BLANK, dtype=np.int64)
    targets[rows, delays[:, None] + N_RECALL + np.arange(N_RECALL)] = data
    return Batch(np.eye(DELIMITER + 1, dtype=np.float32)[symbols], targets)


def copy_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Cross-entropy averaged over every step, accuracy over every step, and recall accuracy over the
    steps whose target is a data symbol (the ten recall steps; argmax over the 9 output classes)."""
    targets = np.asarray(targets, dtype=np.int64)
    correct = np.asarray(outputs).argmax(axis=-1) == targets
    recall = targets != BLANK  # exactly the ten recall steps of each sequence
    return {
        "loss": float(softmax_cross_entropy(outputs, targets).mean()),
        "recall_accuracy": float(correct[recall].mean()),
        "accuracy": float(correct.mean()),
    }


def copy_baseline(T: int) -> dict[str, float]:
    """The memoryless strategy: blank with certainty outside the recall steps, uniform over the 8 data
    symbols on them (knows where to recall, not what)."""
    length = T + PAD
    return {
        "loss": N_RECALL * math.log(N_DATA) / length,
        "recall_accuracy": 1.0 / N_DATA,
        "accuracy": (length - N_RECALL + N_RECALL / N_DATA) / length,
    }


class Copy(Task):
    """Reproduce ten symbols after a delay of T steps.

    Definition (L = T + 20, one-hot inputs over 10 channels: data 0-7, blank 8, delimiter 9; T >= 1,
    where T = 1 means no blank between the data and the delimiter):

    * steps 0..9: ten data symbols, each uniform over 0-7;
    * steps 10..T+8: blanks (T - 1 of them); step T + 9: the delimiter; steps T+10..T+19: blanks.

    Targets (int64, (B, L)): blank (8) at steps 0..T+9, the ten data symbols in order at steps T+10..T+19.
    Output: 9 classes (0-8). Loss: softmax cross-entropy averaged over all B x L steps.
    Metrics: ``recall_accuracy`` (argmax accuracy over the last ten steps; primary, solved >= 0.99) and
    ``accuracy`` (over all steps). Baseline (memoryless): loss 10 ln 8 / (T + 20), recall accuracy 1/8,
    accuracy (T + 10 + 10/8) / (T + 20).
    """

    id = "copy"
    name = "Copying memory"
    reference = "Arjovsky et al. 2016"
    input_size = 10
    output_size = 9
    loss = "cross_entropy"
    loss_at = "all"
    metric = "recall_accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 1

    def seq_len(self, T: int) -> int:
        return self.check_length(T) + PAD

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        data = rng.integers(0, N_DATA, size=(batch_size, N_RECALL))
        return copy_batch(data, np.full(batch_size, T), T + PAD)

    def baseline(self, T: int) -> dict[str, float]:
        return copy_baseline(self.check_length(T))

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return copy_metrics(outputs, targets)
