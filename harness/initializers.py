"""Initial values of a variant's parameters, chosen by the parameter's role (its contract name).

Names follow docs/variants.md: ``W...`` input weights (I, H), ``R...`` recurrent weights (H, H), ``b...``
biases and ``p...`` peepholes (H,). Stacked layers prefix ``l1.``, ``l2.``; the readout uses
``readout.W`` / ``readout.b``.
"""

from __future__ import annotations

import numpy as np


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    fan_in, fan_out = shape[0], shape[-1]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def orthogonal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one (Saxe et al. 2014)."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))  # make the decomposition unique, so the draw is uniform
    if rows < cols:
        q = q.T
    return q[:rows, :cols].astype(np.float32)


def initialise(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """The default initial value of the parameter called ``name`` (prefixes like ``l1.`` ignored)."""
    role = name.rsplit(".", 1)[-1]
    if role.startswith("W"):
        return glorot_uniform(shape, rng)
    if role.startswith("R"):
        return orthogonal(shape, rng) if len(shape) == 2 and shape[0] == shape[1] else glorot_uniform(shape, rng)
    if role.startswith("p"):
        limit = 1.0 / np.sqrt(shape[0])
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)
    if role.startswith("b"):
        return np.zeros(shape, dtype=np.float32)
    raise ValueError(
        f"no default initialiser for parameter {name!r}: contract names start with W, R, b or p; "
        "override init_params or adjust_init in the variant"
    )
