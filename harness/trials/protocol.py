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

from typing import Any

from harness.errors import UsageError
from harness.variant import HyperParameter

PROTOCOL_VERSION = 1

FRAMEWORKS = ("torch", "tf")
DEVICES = ("cpu", "cuda")
OPTIMIZERS = ("adam", "sgd")

#: The protocol's settings, declared the way a variant declares its hyperparameters, so that one check
#: (``HyperParameter.check``) validates both; variant-specific ones are declared by each variant.
SETTINGS: dict[str, HyperParameter] = {
    "optimizer": HyperParameter("adam", "adam, or sgd with momentum", kind="choice", choices=OPTIMIZERS),
    "learning_rate": HyperParameter(1e-3, "the optimiser's step size, above 0"),  # bound: check_hparams
    "momentum": HyperParameter(0.9, "SGD only: the momentum, in [0, 1)", minimum=0.0),
    "nesterov": HyperParameter(True, "SGD only: Nesterov momentum", kind="bool", choices=(False, True)),
    "batch_size": HyperParameter(64, "training sequences per step", kind="int", minimum=1),
    "hidden_size": HyperParameter(64, "H, the width of the recurrent layer", kind="int", minimum=1),
    "clip_norm": HyperParameter(1.0, "the global gradient-norm clip; 0 disables it", minimum=0.0),
    "max_steps": HyperParameter(1000, "the most training steps", kind="int", minimum=1),
    "eval_every": HyperParameter(100, "steps between validations", kind="int", minimum=1),
    "validation_size": HyperParameter(512, "sequences in the fixed validation set", kind="int", minimum=1),
    "test_size": HyperParameter(1024, "sequences in the fixed test set", kind="int", minimum=1),
    "fused": HyperParameter(True, "the variant's fused kernel where it has one", kind="bool", choices=(False, True)),
    "xla": HyperParameter(False, "TensorFlow only: jit_compile the training step", kind="bool", choices=(False, True)),
}
#: The settings' defaults: what a trial gets for a setting its suite leaves out.
DEFAULTS: dict[str, Any] = {key: spec.default for key, spec in SETTINGS.items()}


def check_hparams(hp: dict[str, Any], where: str = "hyperparameters") -> dict[str, Any]:
    """Fill the settings' defaults and refuse impossible values, naming the key, the value and what is
    allowed. Keys that are not settings (a variant's hyperparameters) pass through unchanged."""
    out = {**DEFAULTS, **hp}
    for key, spec in SETTINGS.items():
        # HyperParameter.check takes 1 for True; it is fixed here, not there, because variant.py is in every
        # variant's code fingerprint and any edit of its code would mark every stored trial as changed
        if spec.kind == "bool" and not isinstance(out[key], bool):
            raise UsageError(f"{where}: {key}={out[key]!r} must be true or false")
        out[key] = spec.check(key, out[key], where)
    # the two open bounds HyperParameter's closed ``minimum`` cannot state
    if out["learning_rate"] <= 0:
        raise UsageError(f"{where}: learning_rate={hp.get('learning_rate')!r} is impossible; it must be above 0")
    if out["momentum"] >= 1:
        raise UsageError(f"{where}: momentum={hp.get('momentum')!r} is impossible; it must be in [0, 1)")
    return out
