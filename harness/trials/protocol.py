"""The training protocol's settings: the common hyperparameters of every trial, their defaults and checks.

One trial trains a recurrent layer plus a linear readout (H -> task.output_size) on fresh training
batches: Adam by default, or SGD with (Nesterov) momentum as Greff et al. used; gradients are clipped
by their global norm (``clip_norm``, 0 disables it). Every ``eval_every`` steps the model is scored on
the fixed validation set; training stops early once the task's success rule holds on validation, when
the loss becomes NaN or infinite (``diverged``), or after ``max_steps``. The test metric is reported at
the best validation checkpoint and at the last step.

Length generalisation (``harness.training.lengths``): ``train_lengths = "uniform"`` gives every training
batch one length drawn uniformly from the task's smallest to T, and ``test_lengths`` (multiples of T)
adds test sets at those longer lengths, scored at the best validation checkpoint too.

``PROTOCOL_VERSION`` is part of every trial id: bump it whenever a change alters what a trial computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import UsageError
from harness.variant import HyperParameter

PROTOCOL_VERSION = 1

FRAMEWORKS = ("torch", "tf")
DEVICES = ("cpu", "cuda")
OPTIMIZERS = ("adam", "sgd")
TRAIN_LENGTHS = ("fixed", "uniform")
#: the test lengths of a suite that trains at uniform lengths and names none: 2T, 4T and 8T (Delétang et al.)
LADDER = (2, 4, 8)
#: Settings added after stores held trials: a planned trial's hyperparameters hold them only where they
#: differ from their default (``id_hparams``), so every trial planned before they existed keeps its id.
LATER_SETTINGS = ("train_lengths", "test_lengths")

def _setting(default: Any, doc: str, **spec: Any) -> Any:
    """A field of ``Settings`` whose declaration (``HyperParameter``: default, meaning, what is allowed)
    rides in its metadata, so that the one check that validates a variant's hyperparameters validates
    these too."""
    return field(default=default, metadata={"spec": HyperParameter(default, doc, **spec)})


@dataclass(frozen=True)
class Settings:
    """The protocol settings of one trial, typed: what a worker's trainer and the backends read.

    Every instance is checked (``check_hparams``: types, bounds, choices; whole floats become ints), so
    a worker trains only settings that passed the check, whatever process built the trial.
    ``Settings.of(hparams)`` makes them from a trial's hyperparameters, naming where a bad one came
    from. A variant's own hyperparameters are not here: ``harness.training.grouping.variant_of`` builds
    the variant from them, checked by its own declarations.
    """

    optimizer: str = _setting("adam", "adam, or sgd with momentum", kind="choice", choices=OPTIMIZERS)
    learning_rate: float = _setting(1e-3, "the optimiser's step size, above 0")  # bound: check_hparams
    momentum: float = _setting(0.9, "SGD only: the momentum, in [0, 1)", minimum=0.0)
    nesterov: bool = _setting(True, "SGD only: Nesterov momentum", kind="bool", choices=(False, True))
    batch_size: int = _setting(64, "training sequences per step", kind="int", minimum=1)
    hidden_size: int = _setting(64, "H, the width of the recurrent layer", kind="int", minimum=1)
    clip_norm: float = _setting(1.0, "the global gradient-norm clip; 0 disables it", minimum=0.0)
    max_steps: int = _setting(1000, "the most training steps", kind="int", minimum=1)
    eval_every: int = _setting(100, "steps between validations", kind="int", minimum=1)
    validation_size: int = _setting(512, "sequences in the fixed validation set", kind="int", minimum=1)
    test_size: int = _setting(1024, "sequences in the fixed test set", kind="int", minimum=1)
    fused: bool = _setting(True, "the variant's fused kernel where it has one", kind="bool", choices=(False, True))
    xla: bool = _setting(False, "TensorFlow only: jit_compile the training step", kind="bool", choices=(False, True))
    train_lengths: str = _setting("fixed", "fixed: every batch at T; uniform: each batch at a length drawn "
                                  "uniformly from the task's smallest to T", kind="choice", choices=TRAIN_LENGTHS)
    test_lengths: tuple[int, ...] = _setting((), "multiples of T (whole numbers >= 2) at which the test set is "
                                             "scored too; (2, 4, 8) by default under uniform", kind="ladder")

    @classmethod
    def of(cls, hparams: Mapping[str, Any], where: str = "hyperparameters") -> Settings:
        """The settings among ``hparams`` (keys that are not settings are a variant's and are ignored),
        defaults filled; ``UsageError`` names a bad value, ``where`` it came from and what is allowed."""
        checked = check_hparams(dict(hparams), where)
        return cls(**{key: checked[key] for key in SETTINGS})

    def __post_init__(self) -> None:
        checked = check_hparams({f.name: getattr(self, f.name) for f in fields(self)}, "settings")
        for key, value in checked.items():
            object.__setattr__(self, key, value)  # normalised (3.0 -> 3); frozen, so not setattr

    def sgd_momentum(self) -> tuple[float, bool]:
        """SGD's momentum and whether it is Nesterov's (Nesterov without momentum is plain SGD)."""
        return self.momentum, self.nesterov and self.momentum > 0


#: The protocol's settings, declared the way a variant declares its hyperparameters (``Settings``' fields).
SETTINGS: dict[str, HyperParameter] = {f.name: f.metadata["spec"] for f in fields(Settings)}
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
    if out["train_lengths"] == "uniform" and "test_lengths" not in hp:
        out["test_lengths"] = LADDER
    out["test_lengths"] = _ladder(out["test_lengths"], where)
    return out


def _ladder(value: Any, where: str) -> tuple[int, ...]:
    """``test_lengths`` as sorted distinct whole multiples of T, each at least 2 (T itself is always tested)."""
    allowed = "a list of whole multiples of T, each at least 2, e.g. test_lengths = [2, 4, 8]"
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise UsageError(f"{where}: test_lengths={value!r} is not allowed; it must be {allowed}")
    for m in value:
        if isinstance(m, bool) or not isinstance(m, (int, float)) or m != int(m) or m < 2:
            raise UsageError(f"{where}: test_lengths={list(value)!r} holds {m!r}; it must be {allowed}")
    return tuple(sorted({int(m) for m in value}))


def id_hparams(hp: Mapping[str, Any]) -> dict[str, Any]:
    """Checked ``hp`` less the ``LATER_SETTINGS`` that ``check_hparams`` would fill in as they are (the
    ladder of uniform training is ``LADDER``): what a planned trial's id hashes."""
    implied = {"train_lengths": DEFAULTS["train_lengths"],
               "test_lengths": LADDER if hp.get("train_lengths") == "uniform" else ()}  # fmt: skip
    return {k: v for k, v in hp.items() if not (k in implied and _same(v, implied[k]))}


def _same(a: Any, b: Any) -> bool:
    return list(a) == list(b) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b
