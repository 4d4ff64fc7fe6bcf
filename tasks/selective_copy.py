"""Selective copying (Gu & Dao 2023, "Mamba"): docs/tasks.md `selective_copy`.

``copy`` with its data scattered among blanks at random positions: a cell cannot count steps to know
what to keep, it has to decide from the input itself (Gu & Dao's argument for input-dependent gates).
"""

from __future__ import annotations

import math

import numpy as np

from harness.task import Batch, Task
from tasks.copy import BLANK, DELIMITER, N_DATA, copy_metrics

N_TOKENS = 8  # N: data tokens to find and reproduce


class SelectiveCopy(Task):
    """Reproduce, in order, the N = 8 data tokens scattered among the first T steps.

    Definition (L = T + 1 + N, T >= N; one-hot inputs over 10 channels as ``copy``: data 0-7, blank 8,
    delimiter 9):

    * steps 0..T−1: the N data tokens, each uniform over 0-7, at N distinct positions drawn uniformly
      among these T (in order of position), blanks at the other T − N;
    * step T: the delimiter; steps T+1..T+N: blanks.

    Targets (int64, (B, L)): blank (8) at steps 0..T, the N data tokens in order at steps T+1..T+N
    (9 classes). Loss: softmax cross-entropy averaged over all B × L steps. Metrics: ``recall_accuracy``
    (argmax accuracy over the last N steps; primary, solved >= 0.99) and ``accuracy`` (every step).
    Baseline (knows where to recall, not what): blank with certainty elsewhere, uniform over the 8 data
    tokens on the last N steps: recall accuracy 1/8, accuracy (T + 1 + N/8) / L, loss N ln 8 / L.
    """

    id = "selective_copy"
    name = "Selective copying"
    reference = "Gu & Dao 2023"
    input_size = DELIMITER + 1
    output_size = BLANK + 1
    loss = "cross_entropy"
    loss_at = "all"
    metric = "recall_accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = N_TOKENS

    def seq_len(self, T: int) -> int:
        return self.check_length(T) + 1 + N_TOKENS

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        rows = np.arange(batch_size)[:, None]
        positions = np.sort(rng.random((batch_size, T)).argsort(axis=1)[:, :N_TOKENS], axis=1)
        data = rng.integers(0, N_DATA, size=(batch_size, N_TOKENS))
        symbols = np.full((batch_size, T + 1 + N_TOKENS), BLANK, dtype=np.int64)
        symbols[rows, positions] = data
        symbols[:, T] = DELIMITER
        targets = np.full((batch_size, T + 1 + N_TOKENS), BLANK, dtype=np.int64)
        targets[:, T + 1 :] = data
        return Batch(np.eye(DELIMITER + 1, dtype=np.float32)[symbols], targets)

    def baseline(self, T: int) -> dict[str, float]:
        length = self.seq_len(T)
        return {
            "loss": N_TOKENS * math.log(N_DATA) / length,
            "recall_accuracy": 1.0 / N_DATA,
            "accuracy": (length - N_TOKENS + N_TOKENS / N_DATA) / length,
        }

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return copy_metrics(outputs, targets)  # recall: the steps whose target is a data token, the last N
