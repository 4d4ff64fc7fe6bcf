"""The temporal order problem (Hochreiter & Schmidhuber 1997, exp. 6a), scaled with T: docs/tasks.md
`temporal_order`."""

from __future__ import annotations

import math

import numpy as np

from harness.task import Batch, Task, last_step_classification

# The 8 one-hot symbols: distractors a, b, c, d; the relevant X, Y; start E; trigger B.
N_DISTRACTORS = 4
X, Y, E, B = 4, 5, 6, 7
N_SYMBOLS = 8
N_CLASSES = 4  # Q = XX, R = XY, S = YX, U = YY


class TemporalOrder(Task):
    """Classify a sequence by the order of two relevant symbols (X or Y) among distractors.

    Definition (8 input channels: a, b, c, d = 0-3, X = 4, Y = 5, E = 6, B = 7; T >= 10; T = 100 is the
    paper's setting):

    * each sequence draws its length n ~ U{T, ..., T + floor(T/10)} (paper: 100-110) and is right-aligned in
      L = T + floor(T/10) steps; the L - n steps before it are all-zero padding (E marks the start);
    * positions counted from the sequence's first element: 0 is E, n - 1 is the trigger B;
      t1 ~ U{floor(T/10), ..., floor(T/5)} (paper: 10-20) and
      t2 ~ U{floor(T/2), ..., floor(T/2) + floor(T/10)} (paper: 50-60) hold X or Y, each with
      probability 1/2; every other step holds a distractor uniform over a-d;
    * target (int64, (B,)): the class of (symbol at t1, symbol at t2): XX -> 0 (Q), XY -> 1 (R), YX -> 2 (S),
      YY -> 3 (U).

    Output: 4 classes read at the last step. Loss: softmax cross-entropy there. Metric ``accuracy`` (argmax),
    higher is better, solved >= 0.99 (the paper: all of the last 2000 sequences right).
    Baseline (uniform guess): accuracy 1/4, cross-entropy ln 4.
    """

    id = "temporal_order"
    name = "Temporal order (4 classes)"
    reference = "Hochreiter & Schmidhuber 1997, exp. 6a"
    input_size = N_SYMBOLS
    output_size = N_CLASSES
    loss = "cross_entropy"
    loss_at = "last"
    metric = "accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 10  # t1 >= 1 keeps it off the start symbol

    def seq_len(self, T: int) -> int:
        T = self.check_length(T)
        return T + T // 10

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        total = self.seq_len(T)
        lengths = rng.integers(T, total + 1, size=batch_size)
        symbols = rng.integers(0, N_DISTRACTORS, size=(batch_size, total))
        t1 = rng.integers(T // 10, T // 5 + 1, size=batch_size)
        t2 = rng.integers(T // 2, T // 2 + T // 10 + 1, size=batch_size)
        is_y = rng.integers(0, 2, size=(batch_size, 2))
        rows, start = np.arange(batch_size), total - lengths
        symbols[np.arange(total)[None, :] < start[:, None]] = N_SYMBOLS  # padding: the all-zero row below
        symbols[rows, start] = E
        symbols[:, -1] = B
        symbols[rows, start + t1] = X + is_y[:, 0]
        symbols[rows, start + t2] = X + is_y[:, 1]
        inputs = np.eye(N_SYMBOLS + 1, N_SYMBOLS, dtype=np.float32)[symbols]
        return Batch(inputs, (2 * is_y[:, 0] + is_y[:, 1]).astype(np.int64))

    def baseline(self, T: int) -> dict[str, float]:
        self.check_length(T)
        return {"loss": math.log(N_CLASSES), "accuracy": 1.0 / N_CLASSES}

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return last_step_classification(outputs, targets)
