"""What a task declares (docs/tasks.md): a seeded numpy generator plus metadata. Knows nothing of frameworks.

A task maps a dependency length ``T`` (the lag to bridge) to batches of ``inputs`` (B, L, I) float32 and
``targets``; ``L = seq_len(T)``. The model's readout gives ``outputs`` (B, L, O); the loss is read
where ``loss_at`` says:

* ``"last"``: from ``outputs[:, -1, :]`` only; targets are (B,) (float for MSE, int for classes);
* ``"all"``: from every step; targets are (B, L) class indices;
* ``"mask"``: from the steps a mask chooses; targets are (B, L, O + 1) float32, ``targets[..., :O]`` the
  target of every step and ``targets[..., O]`` the mask, 1 where the loss is read and 0 elsewhere
  (unread steps and the padding after a shorter sequence). The loss is the mean over the read steps of
  the step's loss, the step's loss being the mean over the O outputs of the squared error (``"mse"``)
  or of the binary cross-entropy of ``sigmoid(outputs)`` (``"binary_cross_entropy"``):

      loss = sum_{b,t} mask_bt * l_bt / max(1, sum_{b,t} mask_bt)

  (the ``max`` only matters for an all-zero mask, a finished population member's empty slot).

``loss`` is ``"mse"`` (O = 1 unless ``loss_at`` is ``"mask"``), ``"cross_entropy"`` (O = number of
classes, softmax over them) or ``"binary_cross_entropy"`` (``"mask"`` only: O independent sigmoid
outputs, targets 0 or 1). Sequences of one batch may differ in length only under ``"mask"``: they are
right-padded with zero inputs and a zero mask, so no padded step is ever read, and a recurrent model's
outputs at the real steps do not depend on the padding after them.
``metrics(outputs, targets)`` computes every metric in numpy, so both frameworks are scored by the
same code; ``metric`` names the primary one and ``higher_is_better`` its direction.

Data streams (``data_rng``): training batches come from ``SeedSequence(seed, spawn_key=(0,))``, an
endless stream per trial seed; the validation and test sets are fixed per (task, T), drawn from
``SeedSequence(DATA_SEED, spawn_key=(1,))`` and ``(2,)``, keys the training stream never uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.errors import UsageError

#: The fixed entropy of every validation and test set (Greff et al.'s year).
DATA_SEED = 2015
SPLIT_KEYS = {"train": 0, "validation": 1, "test": 2}
#: where a task's loss can be read (``Task.loss_at``), and the losses allowed with each
LOSSES = {"last": ("mse", "cross_entropy"), "all": ("cross_entropy",), "mask": ("mse", "binary_cross_entropy")}


@dataclass
class Batch:
    """One batch: ``inputs`` (B, L, I) float32 and ``targets`` ((B,), (B, L) or (B, L, O + 1))."""

    inputs: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def data_rng(split: str, seed: int) -> np.random.Generator:
    """The generator of one data split: a stream that no other split can produce (distinct spawn keys)."""
    if split not in SPLIT_KEYS:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLIT_KEYS)}")
    entropy = seed if split == "train" else DATA_SEED
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(SPLIT_KEYS[split],)))


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example cross-entropy (natural log) of integer ``labels`` under ``softmax(logits)``, in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=-1))
    picked = np.take_along_axis(z, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return log_norm - picked


def sigmoid_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Elementwise binary cross-entropy (natural log) of 0/1 ``labels`` under ``sigmoid(logits)``, in
    float64: ``max(z, 0) - z y + log(1 + exp(-|z|))``, a form that cannot overflow (TensorFlow's own)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.maximum(z, 0.0) - z * np.asarray(labels, dtype=np.float64) + np.logaddexp(0.0, -np.abs(z))


def masked_step_losses(loss: str, outputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-step loss (B, L), mask (B, L)) of ``loss_at = "mask"`` in float64: the step's loss is the
    mean over the O outputs of the squared error (``"mse"``) or of ``sigmoid_cross_entropy``."""
    outputs, targets = np.asarray(outputs, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    values, mask = targets[..., :-1], targets[..., -1]
    per_output = (outputs - values) ** 2 if loss == "mse" else sigmoid_cross_entropy(outputs, values)
    return per_output.mean(axis=-1), mask


def masked_loss(loss: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    """The training loss of ``loss_at = "mask"`` (module docstring), in float64."""
    per_step, mask = masked_step_losses(loss, outputs, targets)
    return float((per_step * mask).sum() / max(1.0, mask.sum()))


def pad_steps(batch: Batch, length: int) -> Batch:
    """``batch`` right-padded to ``length`` steps: zero inputs and zero targets (under ``loss_at =
    "mask"`` a zero mask, so the padding is never read). A batch of that length is returned as it is."""
    extra = length - batch.inputs.shape[1]
    if extra == 0:
        return batch
    if extra < 0 or batch.targets.ndim != 3:
        raise ValueError(f"cannot pad a batch of {batch.inputs.shape[1]} steps with targets of shape "
                         f"{batch.targets.shape} to {length} steps; only masked targets (B, L, O + 1) pad")  # fmt: skip
    widths = [(0, 0), (0, extra), (0, 0)]
    return Batch(np.pad(batch.inputs, widths), np.pad(batch.targets, widths))


def stack_batches(batches: Sequence[Batch]) -> tuple[np.ndarray, np.ndarray]:
    """Several batches of one task as ``inputs`` (M, B, L, I) and ``targets`` (M, ...): batches of
    different lengths (``loss_at = "mask"`` only) are right-padded to the longest first (``pad_steps``)."""
    length = max(b.inputs.shape[1] for b in batches)
    padded = [pad_steps(b, length) for b in batches]
    return np.stack([b.inputs for b in padded]), np.stack([b.targets for b in padded])


def last_step_classification(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Cross-entropy ("loss") and accuracy of the class read at the last step (B, L, C) vs (B,) labels."""
    last = np.asarray(outputs)[:, -1, :]
    targets = np.asarray(targets, dtype=np.int64)
    return {
        "loss": float(softmax_cross_entropy(last, targets).mean()),
        "accuracy": float((last.argmax(axis=-1) == targets).mean()),
    }


class Task:
    """Base class of every task. Subclasses set the metadata and implement ``generate``,
    ``seq_len``, ``baseline`` and ``metrics`` (``solved`` defaults to ``metric`` vs ``solved_threshold``)."""

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    input_size: ClassVar[int] = 0
    output_size: ClassVar[int] = 0
    loss: ClassVar[str] = "mse"  # "mse" | "cross_entropy" | "binary_cross_entropy" (LOSSES)
    loss_at: ClassVar[str] = "last"  # "last" | "all" | "mask"
    metric: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    solved_threshold: ClassVar[float] = 0.0
    min_length: ClassVar[int] = 2
    source_file: ClassVar[str] = ""  # set by the registry

    # --- what subclasses define -------------------------------------------------------------------
    def seq_len(self, T: int) -> int:
        """Sequence length L of a training batch for dependency length T (the expected length where
        sequences vary in length: it sizes estimates and schedules, not arrays)."""
        return T

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        raise NotImplementedError

    def generate_held_out(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        """The sequences of the validation and test sets: by default drawn as training's (``generate``).
        A continual task overrides it to hold longer streams than training's."""
        return self.generate(T, batch_size, rng)

    def baseline(self, T: int) -> dict[str, float]:
        """The trivial (memoryless) strategy's score on every metric, from docs/tasks.md."""
        raise NotImplementedError

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        """Every metric of ``outputs`` (B, L, O) against ``targets``; includes ``"loss"``."""
        raise NotImplementedError

    # --- derived ------------------------------------------------------------------------------------
    def solved(self, metrics: dict[str, float]) -> bool:
        value = metrics[self.metric]
        return bool(value >= self.solved_threshold if self.higher_is_better else value < self.solved_threshold)

    def check_length(self, T: Any, where: str = "") -> int:
        """T as an int, or ``UsageError`` naming it, where it came from and the allowed range."""
        origin = f" (from {where})" if where else ""
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < self.min_length:
            raise UsageError(
                f"task {self.id!r}: length T={T!r}{origin} is not allowed; T must be an integer >= {self.min_length}"
            )
        return int(T)

    def batch(self, T: int, batch_size: int, seed: int) -> Batch:
        """A batch drawn from ``np.random.default_rng(seed)`` (the API's ``make_batch``)."""
        T = self.check_length(T)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise UsageError(f"seed={seed!r} is not allowed; it must be an integer >= 0")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise UsageError(f"batch_size={batch_size!r} is not allowed; it must be an integer >= 1")
        return self.generate(T, int(batch_size), np.random.default_rng(seed))

    def training_stream(self, T: int, batch_size: int, seed: int):
        """Endless fresh training batches for one trial seed (never the validation or test streams)."""
        rng = data_rng("train", seed)
        while True:
            yield self.generate(T, batch_size, rng)

    def fixed_set(self, split: str, T: int, size: int) -> Batch:
        """The fixed validation or test set of (task, T): the same for every trial."""
        if split not in ("validation", "test"):
            raise ValueError(f"fixed sets are 'validation' or 'test', not {split!r}")
        return self.generate_held_out(T, size, data_rng(split, 0))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "reference": self.reference,
            "input_size": self.input_size, "output_size": self.output_size,
            "loss": self.loss, "loss_at": self.loss_at, "metric": self.metric,
            "higher_is_better": self.higher_is_better, "solved_threshold": self.solved_threshold,
        }  # fmt: skip
