"""A task whose declared loss no backend can train: softmax cross-entropy read under a mask."""

from harness.task import Task


class BadLoss(Task):
    id = "bad_loss"
    loss = "cross_entropy"
    loss_at = "mask"
