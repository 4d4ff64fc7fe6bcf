"""A trial: (task, T, variant, framework, device, hyperparameters, seed) and its content id.

The id is the first 16 hex digits of the SHA-256 of exactly those fields (variant aliases resolved,
hyperparameters complete with defaults) plus ``PROTOCOL_VERSION``, as canonical JSON: same id, same
work. The suite a trial was planned by is not part of it, so two suites share finished trials.

A configuration id (``configuration_id``) hashes the same fields less those that choose how a trial is
computed rather than what (``EXECUTION_FIELDS``, ``EXECUTION_HPARAMS``): the PyTorch and the TensorFlow
trial of one configuration and seed share it, so it pairs the two frameworks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from harness.trials.protocol import PROTOCOL_VERSION, Settings

#: Trial fields that choose how a configuration is computed, not what it is: both frameworks build
#: their weights from one seeded parameter dict and train on one seeded data stream, on either device.
EXECUTION_FIELDS = ("framework", "device")
#: Settings of the same kind: a fused library kernel computes the generic step's function (``rnn-bench
#: check`` tests their parity), and ``xla`` exists in TensorFlow's trials only.
EXECUTION_HPARAMS = ("fused", "xla")
#: Settings that are never searched: the execution settings and how a trial is measured (never
#: "hyperparameters" of an importance analysis).
NOT_SEARCHED = (*EXECUTION_HPARAMS, "eval_every", "validation_size", "test_size", "time_limit", "train_lengths",
                "test_lengths")


def canonical(value: Any) -> Any:
    """JSON-stable form: floats that are whole stay floats, numpy scalars become Python ones."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


@dataclass(frozen=True)
class Trial:
    task: str
    length: int
    variant: str
    framework: str
    device: str
    hparams: dict[str, Any] = field(hash=False)
    seed: int

    @property
    def id(self) -> str:
        return trial_id(self)

    @property
    def configuration_id(self) -> str:
        return configuration_id(self)

    @cached_property
    def settings(self) -> Settings:
        """The protocol settings among ``hparams``, typed and checked (``UsageError`` names a bad one);
        computed once per trial (a plan reads them for every grouping and estimate)."""
        return Settings.of(self.hparams, where=self.label())

    def __getstate__(self) -> dict[str, Any]:
        """The fields only: a trial sent to a worker checks its settings again there."""
        return {k: v for k, v in self.__dict__.items() if k != "settings"}

    def key(self) -> dict[str, Any]:
        """Exactly what the id hashes."""
        d = asdict(self)
        d["hparams"] = canonical(self.hparams)
        d["protocol"] = PROTOCOL_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(canonical(asdict(self)), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Trial:
        return Trial(**json.loads(text))

    def label(self) -> str:
        return f"{self.task}/T={self.length}/{self.variant}/{self.framework}/seed={self.seed}"


def trial_id(trial: Trial) -> str:
    blob = json.dumps(trial.key(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def configuration_id(trial: Trial) -> str:
    """16 hex digits of the SHA-256 of ``trial.key()`` less ``EXECUTION_FIELDS`` and
    ``EXECUTION_HPARAMS``: task, T, variant, the other hyperparameters, seed and ``PROTOCOL_VERSION``.
    Equal for the PyTorch and TensorFlow trials of one configuration and seed; different for two seeds."""
    key = {k: v for k, v in trial.key().items() if k not in EXECUTION_FIELDS}
    key["hparams"] = {k: v for k, v in key["hparams"].items() if k not in EXECUTION_HPARAMS}
    blob = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
