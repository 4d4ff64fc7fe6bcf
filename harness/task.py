"""What a task declares (docs/tasks.md): a seeded numpy generator plus metadata. Knows nothing of frameworks.

A task maps a dependency length ``T`` (the lag to bridge) to batches of ``inputs`` (B, L, I) float32 and
``targets``; ``L = seq_len(T)``. The model's readout gives ``outputs`` (B, L, O); the loss is read
where ``loss_at`` says:

* ``"last"``: from ``outputs[:, -1, :]`` only; targets are (B,) (float for MSE, int for classes);
* ``"all"``: from every step; targets are (B, L) class indices.

``loss`` is ``"mse"`` (O = 1) or ``"cross_entropy"`` (O = number of classes, softmax over them).
``metrics(outputs, targets)`` computes every metric in numpy, so both frameworks are scored by the
same code; ``metric`` names the primary one and ``higher_is_better`` its direction.

Data streams (``data_rng``): training batches come from ``SeedSequence(seed, spawn_key=(0,))``, an
endless stream per trial seed; the validation and test sets are fixed per (task, T), drawn from
``SeedSequence(DATA_SEED, spawn_key=(1,))`` and ``(2,)``, keys the training stream never uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.errors import UsageError

#: The fixed entropy of every validation and test set (Greff et al.'s year).
DATA_SEED = 2015
SPLIT_KEYS = {"train": 0, "validation": 1, "test": 2}


@dataclass
class Batch:
    """One batch: ``inputs`` (B, L, I) float32 and ``targets`` ((B,) or (B, L))."""

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
    loss: ClassVar[str] = "mse"  # "mse" | "cross_entropy"
    loss_at: ClassVar[str] = "last"  # "last" | "all"
    metric: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    solved_threshold: ClassVar[float] = 0.0
    min_length: ClassVar[int] = 2
    source_file: ClassVar[str] = ""  # set by the registry

    # --- what subclasses define -------------------------------------------------------------------
    def seq_len(self, T: int) -> int:
        """Sequence length L for dependency length T."""
        return T

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        raise NotImplementedError

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
        return self.generate(T, size, data_rng(split, 0))

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "reference": self.reference,
            "input_size": self.input_size, "output_size": self.output_size,
            "loss": self.loss, "loss_at": self.loss_at, "metric": self.metric,
            "higher_is_better": self.higher_is_better, "solved_threshold": self.solved_threshold,
        }  # fmt: skip
