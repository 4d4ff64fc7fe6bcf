"""The member-axis layout of a population: M trials' parameter dicts as one dict of stacked arrays.

Every contract parameter gains a leading member axis, and vectors gain a batch axis, so that a
variant's unchanged ``step`` broadcasts over members (the ops namespace broadcasts like numpy):

    matrix (A, C)  ->  (M, A, C)      x (M, B, I) @ W (M, I, H) = (M, B, H), one product per member
    vector (C,)    ->  (M, 1, C)      adds to (M, B, C) member by member

Members of different hidden sizes are padded to the group's largest: member m's values sit in the
leading corner ``[:A_m, :C_m]`` of its slice (the shapes of ``parameter_shapes(I, H_m)``), and every
padded entry is zero. ``masks`` marks the real entries; the engines multiply gradients by them, so a
padded entry's gradient is zero and its Adam/SGD update is exactly zero: padding stays zero for the
whole run. With zero padded rows, padded units reach real ones only as ``0 · h`` (see
``harness.cell.batchable`` for the rule a variant must follow for that to be exact).
"""

from __future__ import annotations

import numpy as np


def stacked_shape(shape: tuple[int, ...], members: int) -> tuple[int, ...]:
    """The stacked shape of one parameter: (M, A, C) for a matrix, (M, 1, C) for a vector."""
    if len(shape) == 1:
        return (members, 1, int(shape[0]))
    if len(shape) == 2:
        return (members, int(shape[0]), int(shape[1]))
    raise ValueError(f"populations stack vectors and matrices only, not a parameter of shape {shape}")


def region(shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Where a member's own values of ``shape`` sit inside its (padded) stacked slice."""
    if len(shape) == 1:
        return (slice(0, 1), slice(0, int(shape[0])))
    return tuple(slice(0, int(d)) for d in shape)


def stack(params: list[dict[str, np.ndarray]], dtype: type = np.float32) -> dict[str, np.ndarray]:
    """Stack members' parameter dicts (same names, shapes at most the largest) into zero-padded arrays."""
    names = list(params[0])
    out = {}
    for name in names:
        largest = tuple(max(int(p[name].shape[k]) for p in params) for k in range(np.ndim(params[0][name])))
        arr = np.zeros(stacked_shape(largest, len(params)), dtype=dtype)
        for m, p in enumerate(params):
            arr[m][region(np.shape(p[name]))] = np.asarray(p[name])  # a vector broadcasts into its (1, C) row
        out[name] = arr
    return out


def masks(params: list[dict[str, np.ndarray]], stacked: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """1 at every member's real entries, 0 at padding; ``None`` when no member is padded."""
    out, padded = {}, False
    for name, arr in stacked.items():
        mask = np.zeros(arr.shape, dtype=arr.dtype)
        for m, p in enumerate(params):
            mask[m][region(np.shape(p[name]))] = 1
        padded = padded or not mask.all()
        out[name] = mask
    return out if padded else None


def unstack(stacked: dict[str, np.ndarray], member: int, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Member ``member``'s own parameter dict (its shapes, padding dropped), as float32."""
    return {
        name: np.asarray(stacked[name][member][region(shape)], dtype=np.float32).reshape(shape)
        for name, shape in shapes.items()
    }
