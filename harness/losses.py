"""Which losses a task may declare, where it reads them (``Task.loss_at``): what the backends can train.

``harness.task.LOSSES`` is this table as the first catalogue knew it. It stays unchanged there on
purpose: every task's code fingerprint includes ``harness/task.py``, so an edit there would mark every
stored trial of every task stale although none of their numbers could change. Additions go here:

* ``"mask"`` with ``"cross_entropy"`` (``associative_recall``): ``targets[..., :O]`` holds each read
  step's class one-hot, and the step's loss is ``−Σ_o y_o log softmax(outputs)_o``; the loss is the mean
  over the read steps, as for every masked loss (``masked_cross_entropy``; the backends compute the same
  in ``torch_backend.masked_loss`` and ``tf_backend.masked_loss``).
"""

from __future__ import annotations

import numpy as np

from harness.task import LOSSES as FIRST_LOSSES
from harness.task import softmax_cross_entropy

TRAINABLE_LOSSES: dict[str, tuple[str, ...]] = {**FIRST_LOSSES, "mask": (*FIRST_LOSSES["mask"], "cross_entropy")}


def masked_cross_entropy(outputs: np.ndarray, targets: np.ndarray) -> float:
    """The masked cross-entropy of one-hot classes (module docstring), in float64: targets (B, L, O + 1),
    the mask last (a step the mask does not read may hold no class at all)."""
    targets = np.asarray(targets)
    values, mask = targets[..., :-1], targets[..., -1].astype(np.float64)
    per_step = softmax_cross_entropy(outputs, values.argmax(axis=-1))
    return float((per_step * mask).sum() / max(1.0, mask.sum()))
