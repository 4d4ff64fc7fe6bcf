"""Which variants a population can train: the rules a variant's ``step`` must follow, and a numerical
check of them (numpy, float64, no framework needed).

A population calls the variant's unchanged ``step`` once per time step for all its members, with the
member-axis layout of ``harness.cell.stacking``: parameters (M, A, C) and (M, 1, C), input x_t (M, B, I),
state tensors (M, B, s). Two rules follow.

1. **Batchable**: the step must compute each member from its own slices alone, which it does when it
   broadcasts over leading axes: products with ``ops.matmul`` (it batches over leading axes), sizes
   read from the last axis (``p["b"].shape[-1]``, never ``shape[0]``, which is now M), ``concat`` and
   ``split`` only along the last axis. A step that breaks it trains solo (populations of one).
2. **Padding-exact** (members of different hidden sizes in one population): hidden units may interact
   only through ``ops.matmul`` with a parameter, and nothing else in the step may depend on H. Then
   the zero rows and columns of the padding (kept zero, ``harness.cell.stacking``) make a padded member
   compute exactly its own numbers. Clockwork's periods and mask are functions of H, so it is not
   padding-exact: its populations share one hidden size (``harness.training.grouping.population_groups``).

``batchability(variant)`` runs the step both ways for a few steps, random parameters and inputs, and
compares every member with its solo run (and says why not, when not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.cell.stacking import stack
from harness.cell.unroll import call_step
from harness.ops import NUMPY_OPS
from harness.variant import Variant

PROBE_INPUT, PROBE_BATCH, PROBE_STEPS = 3, 2, 4
TOLERANCE = 1e-10  # float64: a batched product rounds like a solo one, so any real difference is large


@dataclass(frozen=True)
class Batchability:
    """``batchable``: rule 1 holds; ``pads``: rule 2 holds too; ``reason``: why not, when not."""

    batchable: bool
    pads: bool
    reason: str = ""


_CACHE: dict[tuple, Batchability] = {}


def batchability(variant: Variant) -> Batchability:
    """Whether ``variant`` (with its hyperparameters) can train in a population, and with padding."""
    key = (type(variant), tuple(sorted((k, repr(v)) for k, v in variant.hparams.items())))
    if key not in _CACHE:
        _CACHE[key] = _probe(variant)
    return _CACHE[key]


def _probe(variant: Variant) -> Batchability:
    sizes = _hidden_sizes(variant)
    if len(sizes) < 2:
        return Batchability(False, False, "parameter_shapes accepts fewer than two hidden sizes in 4..64")
    small, large = sizes
    rng = np.random.default_rng(0)
    try:
        problem = _compare(variant, [small] * 3, rng)  # 3 members: no size of the probe equals M
    except Exception as e:  # the step itself fails on stacked tensors
        problem = f"the step fails on stacked (member-axis) tensors: {type(e).__name__}: {e}"
    if problem:
        return Batchability(False, False, f"{problem} (rule 1 in harness/cell/batchable.py)")
    try:
        problem = _compare(variant, [small, large], rng)
    except Exception as e:
        problem = f"the step fails on padded tensors: {type(e).__name__}: {e}"
    if problem:
        return Batchability(True, False, f"{problem} (rule 2 in harness/cell/batchable.py)")
    return Batchability(True, True)


def _hidden_sizes(variant: Variant) -> list[int]:
    """The two smallest hidden sizes >= 4 the variant accepts (clockwork wants multiples of its modules)."""
    found = []
    for h in range(4, 65):
        try:
            variant.parameter_shapes(PROBE_INPUT, h)
        except Exception:
            continue
        found.append(h)
        if len(found) == 2:
            break
    return found


def _random_params(variant: Variant, hidden_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    shapes = variant.parameter_shapes(PROBE_INPUT, hidden_size)
    return {name: 0.5 * rng.standard_normal(shape) for name, shape in shapes.items()}


def _solo(variant: Variant, params: dict, inputs: np.ndarray, hidden_size: int) -> list[np.ndarray]:
    """h_t then every state tensor, at every step, for one member alone."""
    state = tuple(np.zeros((PROBE_BATCH, s)) for s in variant.state_sizes(hidden_size))
    out = []
    for x in inputs:
        h, state = call_step(variant, NUMPY_OPS, params, x, state)
        out.extend([h, *state])
    return out


def _compare(variant: Variant, hidden_sizes: list[int], rng: np.random.Generator) -> str:
    """Run members of ``hidden_sizes`` stacked and solo; '' when each member matches its solo run."""
    members = len(hidden_sizes)
    params = [_random_params(variant, h, rng) for h in hidden_sizes]
    inputs = rng.standard_normal((PROBE_STEPS, members, PROBE_BATCH, PROBE_INPUT))
    stacked = stack(params, dtype=np.float64)
    largest = max(hidden_sizes)
    state = tuple(np.zeros((members, PROBE_BATCH, s)) for s in variant.state_sizes(largest))
    together = []
    for x in inputs:
        h, state = call_step(variant, NUMPY_OPS, stacked, x, state)
        if np.shape(h) != (members, PROBE_BATCH, largest):
            expected = (members, PROBE_BATCH, largest)
            return f"on stacked tensors the step returns h of shape {np.shape(h)}, not {expected}"
        together.extend([h, *state])
    for m, size in enumerate(hidden_sizes):
        alone = _solo(variant, params[m], inputs[:, m], size)
        for a, b in zip(alone, together):
            b = np.asarray(b)[m][:, : a.shape[-1]]
            if not np.allclose(a, b, rtol=TOLERANCE, atol=TOLERANCE, equal_nan=True):
                what = "of different hidden sizes " if len(set(hidden_sizes)) > 1 else ""
                return (f"members {what}{hidden_sizes} computed together differ from their solo runs "
                        f"(member {m}, H={size}: max difference {np.nanmax(np.abs(a - b)):.3g})")  # fmt: skip
    return ""
