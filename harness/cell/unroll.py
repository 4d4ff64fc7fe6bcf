"""The time loop for eager backends (numpy, PyTorch): ``h_1..h_L`` from ``x_1..x_L``.

TensorFlow runs the same ``step`` inside a Keras RNN cell instead; both check the step's contract the
same way (``check_step_output``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from harness.ops import UnknownOpError
from harness.variant import StepError, Variant


def shape_of(t: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape)


def check_step_output(variant: Variant, h: Any, state: tuple, batch: int, hidden_size: int) -> None:
    """Raise ``StepError`` unless ``h`` is (batch, H) and each state tensor is (batch, declared size)."""
    sizes = variant.state_sizes(hidden_size)
    if shape_of(h) != (batch, hidden_size):
        raise StepError(variant.id, f"step returned h of shape {shape_of(h)}, expected {(batch, hidden_size)}")
    if not isinstance(state, (tuple, list)) or len(state) != len(sizes):
        n = len(state) if isinstance(state, (tuple, list)) else type(state).__name__
        raise StepError(variant.id, f"step returned {n} state tensors, state_sizes declares {len(sizes)}")
    for k, (s, size) in enumerate(zip(state, sizes)):
        if shape_of(s) != (batch, size):
            raise StepError(variant.id, f"state[{k}] has shape {shape_of(s)}, expected {(batch, size)}")


def check_params(variant: Variant, params: dict[str, Any], input_size: int, hidden_size: int) -> None:
    """Raise ``StepError`` unless ``params`` holds exactly the contract's names and shapes."""
    expected = variant.parameter_shapes(input_size, hidden_size)
    missing, extra = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or extra:
        raise StepError(variant.id, f"parameters differ from the contract: missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        if shape_of(params[name]) != tuple(shape):
            raise StepError(
                variant.id, f"parameter {name!r} has shape {shape_of(params[name])}, contract says {tuple(shape)}"
            )


def call_step(variant: Variant, ops: Any, params: dict, x: Any, state: tuple) -> tuple[Any, tuple]:
    """``variant.step`` with contract errors turned into ``StepError`` naming the op or parameter."""
    try:
        h, new_state = variant.step(ops, params, x, state)
    except UnknownOpError as e:
        raise StepError(variant.id, str(e), {"op": e.op}) from e
    except KeyError as e:
        raise StepError(
            variant.id, f"step reads parameter {e.args[0]!r}, which parameter_shapes does not declare"
        ) from e
    return h, tuple(new_state)


def unroll(
    variant: Variant,
    ops: Any,
    params: dict[str, Any],
    inputs: Any,
    hidden_size: int,
    stack: Callable[[list, int], Any],
    zeros: Callable[[int, int, Any], Any],
) -> Any:
    """Run ``variant.step`` over time. ``inputs`` is (B, L, I); returns the hidden outputs (B, L, H).

    ``zeros(batch, size, like)`` makes a zero state tensor; ``stack(list, axis)`` joins the outputs.
    """
    batch, length = int(inputs.shape[0]), int(inputs.shape[1])
    state = tuple(zeros(batch, size, inputs) for size in variant.state_sizes(hidden_size))
    outputs = []
    for t in range(length):
        h, state = call_step(variant, ops, params, inputs[:, t, :], state)
        if t == 0:
            check_step_output(variant, h, state, batch, hidden_size)
        outputs.append(h)
    return stack(outputs, 1)


def unroll_numpy(variant: Variant, params: dict[str, np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """Reference forward pass in numpy (float64 if the inputs are)."""
    from harness.cell.contract import hidden_size_of
    from harness.ops import NUMPY_OPS

    return unroll(
        variant, NUMPY_OPS, params, inputs, hidden_size_of(variant, params),
        stack=lambda xs, axis: np.stack(xs, axis=axis),
        zeros=lambda b, n, like: np.zeros((b, n), dtype=like.dtype),
    )  # fmt: skip
