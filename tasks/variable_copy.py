"""The variable-delay copying task (Henaff et al. 2016): docs/tasks.md `variable_copy`."""

from __future__ import annotations

import numpy as np

from harness.task import Batch
from tasks.copy import N_DATA, N_RECALL, PAD, Copy, copy_batch


class VariableCopy(Copy):
    """``copy`` with a delay drawn per sequence, so that counting steps from the start does not help.

    Definition (L = T + 20 for every sequence, one-hot inputs as in ``copy``; T >= 1): each sequence draws
    its delay d ~ U{1, ..., T}; then

    * steps 0..9: ten data symbols, each uniform over 0-7;
    * steps 10..d+8: blanks (d - 1); step d + 9: the delimiter; steps d+10..T+19: blanks (the ten recall
      steps, then T - d padding steps, so that a batch is rectangular).

    Targets (int64, (B, L)): the ten data symbols in order at steps d+10..d+19, blank (8) everywhere else
    (also on the padding after the recall). d = T gives exactly the ``copy`` layout.
    Loss, metrics, threshold as ``copy``; ``recall_accuracy`` is taken over each sequence's own ten recall
    steps (those whose target is a data symbol). Baseline: the strategy that knows where to recall (it only
    needs the delimiter's time, not the data) but not what: blank with certainty elsewhere, uniform over the
    8 data symbols there; it scores exactly as in ``copy``.
    """

    id = "variable_copy"
    name = "Variable-delay copying memory"
    reference = "Henaff et al. 2016"

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        data = rng.integers(0, N_DATA, size=(batch_size, N_RECALL))
        delays = rng.integers(1, T + 1, size=batch_size)
        return copy_batch(data, delays, T + PAD)
