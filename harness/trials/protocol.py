"""The training protocol's settings: the common hyperparameters of every trial, their defaults and checks.

One trial trains a recurrent layer plus a linear readout (H -> task.output_size) on fresh training
batches: Adam by default, or SGD with (Nesterov) momentum as Greff et al. used; gradients are clipped
by their global norm (``clip_norm``, 0 disables it). Every ``eval_every`` steps the model is scored on
the fixed validation set; training stops early once the task's success rule holds on validation, when
the loss becomes NaN or infinite (``diverged``), or after ``max_steps``. The test metric is reported at
the best validation checkpoint and at the last step.

``PROTOCOL_VERSION`` is part of every trial id: bump it whenever a change alters what a trial computes.
"""

from __future__ import annotations

import math
from typing import Any

from harness.errors import UsageError

PROTOCOL_VERSION = 1

FRAMEWORKS = ("torch", "tf")
DEVICES = ("cpu", "cuda")
OPTIMIZERS = ("adam", "sgd")

#: The common hyperparameters and their defaults (variant-specific ones are declared by the variant).
DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "momentum": 0.9,  # SGD only
    "nesterov": True,  # SGD only
    "batch_size": 64,
    "hidden_size": 64,
    "clip_norm": 1.0,
    "max_steps": 1000,
    "eval_every": 100,
    "validation_size": 512,
    "test_size": 1024,
    "fused": True,
    "xla": False,  # TensorFlow only: jit_compile the training step
}


def _number(hp: dict, key: str, where: str, *, integer: bool = False, low: float | None = None,
            strict_low: bool = False) -> None:  # fmt: skip
    value = hp[key]
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise UsageError(f"{where}: {key}={value!r} must be {kind}")
    if low is not None and (value <= low if strict_low else value < low):
        bound = f"> {low}" if strict_low else f">= {low}"
        raise UsageError(f"{where}: {key}={value!r} is impossible; it must be {bound}")


def check_hparams(hp: dict[str, Any], where: str = "hyperparameters") -> dict[str, Any]:
    """Fill defaults and refuse impossible values, naming the key, the value and what is allowed."""
    out = {**DEFAULTS, **hp}
    if out["optimizer"] not in OPTIMIZERS:
        raise UsageError(f"{where}: optimizer={out['optimizer']!r} is unknown; valid: {', '.join(OPTIMIZERS)}")
    _number(out, "learning_rate", where, low=0, strict_low=True)
    _number(out, "momentum", where, low=0)
    if out["momentum"] >= 1:
        raise UsageError(f"{where}: momentum={out['momentum']!r} is impossible; it must be in [0, 1)")
    _number(out, "batch_size", where, integer=True, low=1)
    _number(out, "hidden_size", where, integer=True, low=1)
    _number(out, "clip_norm", where, low=0)
    _number(out, "max_steps", where, integer=True, low=1)
    _number(out, "eval_every", where, integer=True, low=1)
    _number(out, "validation_size", where, integer=True, low=1)
    _number(out, "test_size", where, integer=True, low=1)
    for flag in ("fused", "nesterov", "xla"):
        if not isinstance(out[flag], bool):
            raise UsageError(f"{where}: {flag}={out[flag]!r} must be true or false")
    out["learning_rate"] = float(out["learning_rate"])
    out["momentum"] = float(out["momentum"])
    out["clip_norm"] = float(out["clip_norm"])
    return out
