"""A task whose declared loss no backend can train: binary cross-entropy read at every step (binary
cross-entropy is trained under a mask only)."""

from harness.task import Task


class BadLoss(Task):
    id = "bad_loss"
    loss = "binary_cross_entropy"
    loss_at = "all"
