"""Multi-query associative recall, MQAR (Arora et al. 2023, "Zoology"): docs/tasks.md
`associative_recall`.

A cell must store P key–value pairs and answer P queries in any order after a lag: its state has to
act as a small lookup table. Arora et al. show that the gap between attention and recurrent models on
language is largely this ability, and that it grows with the number of pairs against the state size.
"""

from __future__ import annotations

import math

import numpy as np

from harness.errors import UsageError
from harness.losses import masked_cross_entropy
from harness.task import Batch, Task

KEYS = 16  # K: keys 0..K−1, values K..2K−1, blank 2K
PAIRS = 4  # P: key–value pairs per sequence, and queries


class AssociativeRecall(Task):
    """Store P key–value pairs, wait T steps, then give the value of each key asked for.

    Definition (L = 3P + T, T >= 1; one-hot inputs over 2K + 1 channels: keys 0..K−1, values K..2K−1
    (value index v in channel K + v), blank 2K; K = 16 and P = 4 unless the task is made with others):

    * steps 0..2P−1: the pairs k_1 v_1 … k_P v_P, keys distinct (drawn without replacement), each value
      index uniform over 0..K−1;
    * steps 2P..2P+T−1: blanks (the lag);
    * steps 2P+T..3P+T−1: the P keys again, in a random order, one per step (the queries).

    Targets ((B, L, K + 1) float32, ``loss_at = "mask"``): at each query step the index of the value
    paired with that key, one-hot over K classes, and the mask 1; zeros and mask 0 elsewhere. Loss:
    softmax cross-entropy at the query steps only. Metric ``query_accuracy`` (argmax over the K outputs
    at the query steps; primary, solved >= 0.99). Baseline (no memory of the pairs): 1/K, loss ln K.
    """

    id = "associative_recall"
    name = "Multi-query associative recall"
    reference = "Arora et al. 2023"
    input_size = 2 * KEYS + 1
    output_size = KEYS
    loss = "cross_entropy"
    loss_at = "mask"
    metric = "query_accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 1

    def __init__(self, keys: int = KEYS, pairs: int = PAIRS) -> None:
        for name, value in (("keys", keys), ("pairs", pairs)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise UsageError(f"task 'associative_recall': {name}={value!r} is not allowed; it must be an "
                                 "integer >= 1")  # fmt: skip
        if pairs > keys:
            raise UsageError(f"task 'associative_recall': pairs={pairs} needs as many distinct keys, but keys={keys}; "
                             "pairs must be <= keys")  # fmt: skip
        self.keys, self.pairs = int(keys), int(pairs)
        self.input_size, self.output_size = 2 * self.keys + 1, self.keys

    def seq_len(self, T: int) -> int:
        return 3 * self.pairs + self.check_length(T)

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        K, P = self.keys, self.pairs
        rows = np.arange(batch_size)[:, None]
        keys = rng.random((batch_size, K)).argsort(axis=1)[:, :P]  # P distinct keys per sequence
        values = rng.integers(0, K, size=(batch_size, P))
        order = rng.random((batch_size, P)).argsort(axis=1)  # which pair each query asks for
        symbols = np.full((batch_size, 3 * P + T), 2 * K, dtype=np.int64)
        symbols[:, 0 : 2 * P : 2], symbols[:, 1 : 2 * P : 2] = keys, K + values
        symbols[:, 2 * P + T :] = keys[rows, order]
        targets = np.zeros((batch_size, 3 * P + T, K + 1), dtype=np.float32)
        queries = 2 * P + T + np.arange(P)
        targets[rows, queries, values[rows, order]] = 1.0
        targets[:, queries, K] = 1.0
        return Batch(np.eye(2 * K + 1, dtype=np.float32)[symbols], targets)

    def baseline(self, T: int) -> dict[str, float]:
        self.check_length(T)
        return {"loss": math.log(self.keys), "query_accuracy": 1.0 / self.keys}

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """Cross-entropy and argmax accuracy at the query steps (the mask)."""
        targets = np.asarray(targets)
        asked = targets[..., -1] > 0.5
        labels = targets[..., :-1].argmax(axis=-1)
        correct = np.asarray(outputs).argmax(axis=-1) == labels
        return {
            "loss": masked_cross_entropy(outputs, targets),
            "query_accuracy": float(correct[asked].mean()),
        }
