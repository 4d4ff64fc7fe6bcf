"""Remember one marked symbol across a noisy delay (after Hochreiter & Schmidhuber 1997, exp. 2c):
docs/tasks.md `delayed_recall`."""

from __future__ import annotations

import math

import numpy as np

from harness.task import Batch, Task, last_step_classification

K = 8  # symbols, one-hot in channels 0..K-1
MARKER = K  # channel raised with the key
CUE = K + 1  # channel raised at the last step: "answer now"


class DelayedRecall(Task):
    """Recall the key symbol shown at step 0 after T distractor steps.

    Definition (L = T + 2, 10 input channels, T >= 1):

    * step 0: the key symbol k ~ U{0..7} one-hot in channels 0-7, and the key-marker channel 8 set to 1;
    * steps 1..T: distractor symbols, each uniform over 0-7 (so they may equal k), channel 8 at 0;
    * step T + 1: only the cue channel 9 set to 1 (no symbol).

    Target (int64, (B,)): k, read from ``outputs[:, -1, :]`` (8 classes). Loss: softmax cross-entropy at the
    last step. Metric ``accuracy`` (argmax), higher is better, solved >= 0.99.
    Baseline (uniform guess): accuracy 1/8, cross-entropy ln 8.
    """

    id = "delayed_recall"
    name = "Delayed recall"
    reference = "after Hochreiter & Schmidhuber 1997, exp. 2c"
    input_size = K + 2
    output_size = K
    loss = "cross_entropy"
    loss_at = "last"
    metric = "accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 1

    def seq_len(self, T: int) -> int:
        return self.check_length(T) + 2

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        symbols = rng.integers(0, K, size=(batch_size, T + 1))  # column 0 is the key
        inputs = np.zeros((batch_size, T + 2, K + 2), dtype=np.float32)
        inputs[:, : T + 1, :K] = np.eye(K, dtype=np.float32)[symbols]
        inputs[:, 0, MARKER] = 1.0
        inputs[:, T + 1, CUE] = 1.0
        return Batch(inputs, symbols[:, 0].astype(np.int64))

    def baseline(self, T: int) -> dict[str, float]:
        self.check_length(T)
        return {"loss": math.log(K), "accuracy": 1.0 / K}

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return last_step_classification(outputs, targets)
