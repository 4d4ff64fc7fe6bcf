"""What a recurrent variant declares: the framework-neutral contract (docs/architecture.md, docs/variants.md).

A variant is written once. It declares

* ``parameter_shapes(input_size, hidden_size)``: the contract's names and shapes, row-vector convention
  (``W`` is (I, H), ``R`` is (H, H), biases and peepholes are (H,));
* ``init_params(input_size, hidden_size, rng, lag)``: float32 numpy arrays of exactly those shapes;
* ``state_sizes(hidden_size)``: the sizes of its state tensors, every one starting at zero;
* ``step(ops, params, x, state)``: one time step, ``(x_t, state_{t-1}) -> (h_t, state_t)``, written only
  with Python's arithmetic operators and the ops namespace (``harness.ops``), so that each backend runs
  it natively (PyTorch autograd, a Keras RNN cell under ``tf.function``, numpy for reference).

Variant-specific hyperparameters (``forget_bias``, clockwork's ``modules``) are declared in
``hyperparameters`` and validated when the variant is instantiated: ``Variant(forget_bias=3.0)``.
A variant that is exactly a library kernel names it in ``fused_kernel`` (``"lstm"``, ``"gru"``,
``"rnn"``); backends convert the parameter dict to the kernel's packing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from harness.errors import UsageError


@dataclass(frozen=True)
class HyperParameter:
    """A variant-specific hyperparameter: its default, what is allowed, and what it means.

    ``check(value)`` returns the normalised value or raises ``UsageError`` naming the value and the
    allowed ones. ``choices`` restricts to a set; ``minimum`` bounds numbers from below; ``kind`` is
    ``"int"``, ``"float"`` or ``"float_or_choice"`` (a number or one of ``choices``); any other kind
    (the protocol's ``"choice"`` and ``"bool"``, ``harness.trials.protocol.SETTINGS``) is checked against
    ``choices`` only. ``init_only``: it sets only initial values, never the step, so the members of one
    population may differ in it.
    """

    default: Any
    doc: str
    kind: str = "float"
    minimum: float | None = None
    choices: tuple = ()
    init_only: bool = False

    def check(self, name: str, value: Any, where: str) -> Any:
        if self.kind == "float_or_choice" and isinstance(value, str):
            if value in self.choices:
                return value
            raise UsageError(f"{where}: {name}={value!r} is not allowed; use a number or one of {list(self.choices)}")
        if self.kind == "int":
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, np.integer))
                and not (isinstance(value, float) and value.is_integer())
            ):
                raise UsageError(f"{where}: {name}={value!r} must be a whole number")
            value = int(value)
        elif self.kind in ("float", "float_or_choice"):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise UsageError(f"{where}: {name}={value!r} must be a number")
            value = float(value)
            if not math.isfinite(value):
                raise UsageError(f"{where}: {name}={value!r} must be finite")
        if self.minimum is not None and value < self.minimum:
            raise UsageError(f"{where}: {name}={value!r} must be at least {self.minimum}")
        if self.choices and self.kind != "float_or_choice" and value not in self.choices:
            raise UsageError(f"{where}: {name}={value!r} is not allowed; allowed: {list(self.choices)}")
        return value


FORGET_BIAS = HyperParameter(
    default=1.0,
    kind="float_or_choice",
    choices=("chrono",),
    init_only=True,
    doc="initial forget-gate bias: a number (1.0 after Jozefowicz et al. 2015) or 'chrono' "
    "(Tallec & Ollivier 2018: b_f ~ log U[1, T_max - 1], b_i = -b_f, T_max the task's lag)",
)


class Variant:
    """Base class of every recurrent variant. Subclasses set the class attributes and implement
    ``parameter_shapes``, ``init_params`` (or use the default), ``state_sizes`` and ``step``."""

    id: ClassVar[str] = ""
    name: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = "other"
    hyperparameters: ClassVar[dict[str, HyperParameter]] = {}
    fused_kernel: ClassVar[str | None] = None
    source_file: ClassVar[str] = ""  # set by the registry

    def __init__(self, **hparams: Any) -> None:
        where = f"variant {self.id!r}"
        unknown = sorted(set(hparams) - set(self.hyperparameters))
        if unknown:
            allowed = sorted(self.hyperparameters) or "none"
            raise UsageError(f"{where}: unknown hyperparameter(s) {unknown}; this variant takes: {allowed}")
        self.hparams: dict[str, Any] = {}
        for key, spec in self.hyperparameters.items():
            self.hparams[key] = spec.check(key, hparams.get(key, spec.default), where)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
        return f"{type(self).__name__}({args})"

    # --- what subclasses define -------------------------------------------------------------------
    def parameter_shapes(self, input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        """The contract: parameter name -> shape."""
        raise NotImplementedError

    def state_sizes(self, hidden_size: int) -> tuple[int, ...]:
        """Sizes of the state tensors (each (batch, size), zero at t = 0). The first is h."""
        return (hidden_size,)

    def step(self, ops: Any, params: dict[str, Any], x: Any, state: tuple) -> tuple[Any, tuple]:
        """One time step: returns (h_t, new_state)."""
        raise NotImplementedError

    def init_params(
        self, input_size: int, hidden_size: int, rng: np.random.Generator | int, lag: int | None = None
    ) -> dict[str, np.ndarray]:
        """Default initialiser, by the parameter's role (its name):

        ``W*`` (input, I x H): Glorot uniform; ``R*`` (recurrent, H x H): orthogonal (Saxe et al. 2014,
        Keras' default); ``p*`` (peepholes): U(-1/sqrt(H), 1/sqrt(H)); ``b*``: zero. Then
        ``adjust_init`` applies variant-specific biases (the forget-gate bias).
        """
        from harness.initializers import initialise

        rng = np.random.default_rng(rng)
        params = {
            name: initialise(name, shape, rng) for name, shape in self.parameter_shapes(input_size, hidden_size).items()
        }
        self.adjust_init(params, rng, lag)
        return params

    def adjust_init(self, params: dict[str, np.ndarray], rng: np.random.Generator, lag: int | None) -> None:
        """Hook for variant-specific initial values (e.g. the forget-gate bias). Default: nothing."""

    # --- derived ------------------------------------------------------------------------------------
    def parameter_count(self, input_size: int, hidden_size: int) -> int:
        return int(sum(int(np.prod(s)) for s in self.parameter_shapes(input_size, hidden_size).values()))


def apply_forget_bias(
    params: dict[str, np.ndarray], forget_bias: Any, lag: int | None, rng: np.random.Generator, prefix: str = ""
) -> None:
    """Set the initial forget-gate bias ``b_f`` (and, for chrono, ``b_i = -b_f``).

    A number sets every unit's ``b_f`` to it. ``"chrono"`` (Tallec & Ollivier 2018) draws
    ``b_f ~ log(U[1, T_max - 1])`` per unit with ``T_max`` the task's lag, and sets ``b_i = -b_f``.
    Variants without ``b_f`` (CIFG couples f = 1 - i) take ``b_i = -forget_bias`` so that the initial
    f = σ(-b_i) is the same.
    """
    bf, bi = prefix + "b_f", prefix + "b_i"
    if forget_bias == "chrono":
        if lag is None:
            raise UsageError("forget_bias='chrono' sets b_f from the task's lag T_max: pass lag=T to init_params")
        t_max = max(int(lag), 3)  # U[1, T_max - 1] needs T_max >= 3; shorter lags use the shortest range
        chrono = np.log(rng.uniform(1.0, t_max - 1.0, size=params[bi if bf not in params else bf].shape))
        if bf in params:
            params[bf][...] = chrono
            if bi in params:
                params[bi][...] = -chrono
        elif bi in params:
            params[bi][...] = -chrono
        return
    if bf in params:
        params[bf][...] = float(forget_bias)
    elif bi in params:
        params[bi][...] = -float(forget_bias)


@dataclass
class StepError(Exception):
    """A variant's step broke its contract (wrong shape, unknown op, missing parameter)."""

    variant: str
    message: str
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"variant {self.variant!r}: {self.message}"
