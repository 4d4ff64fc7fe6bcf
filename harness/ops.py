"""The ops namespace: the only functions a variant's ``step`` may call, besides ``+ - * /`` and ``-x``.

Each backend supplies one implementation (numpy here; PyTorch and TensorFlow in ``harness.backends``).
Every op broadcasts like numpy. A variant that asks for an op outside this list gets an error naming
the op and the list, from ``check`` and from ``run`` alike. Ops read and reshape the last axes only, so a
step written with them runs unchanged on the leading (member, batch) axes of a population.

    sigmoid(x)            1 / (1 + exp(-x))
    tanh(x), relu(x), exp(x), log(x), abs(x), softplus(x), sqrt(x)
    matmul(a, b)          a @ b   (row vectors: x (B, I) @ W (I, H))
    concat(xs, axis=-1)   join a list of tensors
    split(x, n, axis=-1)  n equal parts
    where(cond, a, b)     elementwise choice
    equal(a, b)           elementwise a == b (a boolean tensor)
    floormod(a, b)        a mod b, elementwise
    maximum(a, b), minimum(a, b)
    sum(x), mean(x)       over the last axis, kept as size 1: (..., n) -> (..., 1)
    unflatten(x, shape)   the last axis as ``shape``: (..., prod(shape)) -> (..., *shape)
    flatten(x, n)         the last n axes as one: (..., a, b) -> (..., a * b) for n = 2
    transpose(x)          the last two axes swapped: (..., a, b) -> (..., b, a)
    scan(a, b)            s_t = a_t * s_{t-1} + b_t along the time axis (-2), s_0 = 0: every s_t, shaped
                          like b; a broadcasts over b's last axis. Only in linear forms (``harness.scan``),
                          whose inputs carry all time steps (..., T, I)
    cummax(x)             the running maximum along the time axis (-2): every max_{s <= t} x_s, shaped
                          like x. Only in linear forms, as ``scan``
    zeros_like(x), ones_like(x)
    constant(array, like) a numpy array as a tensor of like's dtype (and device)
"""

from __future__ import annotations

from typing import Any

import numpy as np

OP_NAMES: tuple[str, ...] = (
    "sigmoid", "tanh", "relu", "exp", "log", "abs", "softplus", "sqrt",
    "matmul", "concat", "split", "where", "equal", "floormod", "maximum", "minimum",
    "sum", "mean", "unflatten", "flatten", "transpose", "scan", "cummax",
    "zeros_like", "ones_like", "constant",
)  # fmt: skip


class UnknownOpError(AttributeError):
    """A variant called an op the namespace lacks."""

    def __init__(self, op: str, backend: str) -> None:
        self.op = op
        super().__init__(
            f"op {op!r} is not in the ops namespace ({backend}); allowed ops: {', '.join(OP_NAMES)} "
            "and the operators + - * / on tensors"
        )


class Ops:
    """Base of every ops namespace: refuses any name outside ``OP_NAMES``."""

    backend = "abstract"

    def __getattr__(self, name: str) -> Any:  # only called for names not found normally
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnknownOpError(name, self.backend)

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        extra = [n for n in vars(cls) if not n.startswith("_") and n not in OP_NAMES and n != "backend"]
        if extra:
            raise TypeError(f"{cls.__name__} defines ops outside the namespace: {extra}")


class NumpyOps(Ops):
    """The reference implementation, for tests and for reading a variant's numbers by hand."""

    backend = "numpy"

    @staticmethod
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    tanh = staticmethod(np.tanh)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    abs = staticmethod(np.abs)
    sqrt = staticmethod(np.sqrt)
    matmul = staticmethod(np.matmul)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    floormod = staticmethod(np.mod)
    equal = staticmethod(np.equal)
    where = staticmethod(np.where)
    zeros_like = staticmethod(np.zeros_like)
    ones_like = staticmethod(np.ones_like)

    @staticmethod
    def relu(x):
        return np.maximum(x, 0)

    @staticmethod
    def softplus(x):
        return np.logaddexp(0, x)

    @staticmethod
    def concat(xs, axis=-1):
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def sum(x):
        return np.sum(x, axis=-1, keepdims=True)

    @staticmethod
    def mean(x):
        return np.mean(x, axis=-1, keepdims=True)

    @staticmethod
    def unflatten(x, shape):
        return np.reshape(x, (*np.shape(x)[:-1], *shape))

    @staticmethod
    def flatten(x, n):
        leading = np.shape(x)[:-n]
        return np.reshape(x, (*leading, -1))

    @staticmethod
    def transpose(x):
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def scan(a, b):
        """The recurrence itself, one step at a time: the reference the parallel scans are tested against."""
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        out = np.empty_like(b, dtype=np.result_type(a, b))  # like b: an array subclass of b's is kept
        s = np.zeros_like(out[..., 0, :])
        for t in range(b.shape[-2]):
            s = a[..., t, :] * s + b[..., t, :]
            out[..., t, :] = s
        return out

    @staticmethod
    def cummax(x):
        return np.maximum.accumulate(x, axis=-2)

    @staticmethod
    def split(x, n, axis=-1):
        return np.split(x, n, axis=axis)

    @staticmethod
    def constant(array, like):
        return np.asarray(array, dtype=np.asarray(like).dtype)


NUMPY_OPS = NumpyOps()
