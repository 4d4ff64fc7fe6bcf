"""The ops namespace in TensorFlow (see ``harness.ops`` for the contract; same semantics as ``torch_ops``).

Every op takes and returns ``tf.Tensor`` and broadcasts like numpy. Python scalars mixed into an op
take the dtype of the tensor beside them, as they do in PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from harness.ops import Ops


def _as_tensor_like(value, other):
    """``value`` as a tensor; a Python or numpy scalar takes ``other``'s dtype (tf would guess float32)."""
    if tf.is_tensor(value):
        return value
    dtype = other.dtype if tf.is_tensor(other) else None
    return tf.convert_to_tensor(value, dtype=dtype)


class TfOps(Ops):
    backend = "tf"

    sigmoid = staticmethod(tf.math.sigmoid)
    tanh = staticmethod(tf.math.tanh)
    relu = staticmethod(tf.nn.relu)
    exp = staticmethod(tf.math.exp)
    log = staticmethod(tf.math.log)
    abs = staticmethod(tf.math.abs)
    sqrt = staticmethod(tf.math.sqrt)
    softplus = staticmethod(tf.math.softplus)
    matmul = staticmethod(tf.linalg.matmul)
    zeros_like = staticmethod(tf.zeros_like)
    ones_like = staticmethod(tf.ones_like)

    @staticmethod
    def maximum(a, b):
        return tf.math.maximum(_as_tensor_like(a, b), _as_tensor_like(b, a))

    @staticmethod
    def minimum(a, b):
        return tf.math.minimum(_as_tensor_like(a, b), _as_tensor_like(b, a))

    @staticmethod
    def concat(xs, axis=-1):
        return tf.concat(list(xs), axis=axis)

    @staticmethod
    def sum(x):
        return tf.math.reduce_sum(x, axis=-1, keepdims=True)

    @staticmethod
    def mean(x):
        return tf.math.reduce_mean(x, axis=-1, keepdims=True)

    @staticmethod
    def unflatten(x, shape):
        # the leading axes may be unknown while tracing (a Keras cell's batch): take them from tf.shape
        return tf.reshape(x, tf.concat([tf.shape(x)[:-1], list(shape)], axis=0))

    @staticmethod
    def flatten(x, n):
        size = int(np.prod(x.shape[-n:]))  # the trailing sizes are known (they come from H and I)
        return tf.reshape(x, tf.concat([tf.shape(x)[:-n], [size]], axis=0))

    @staticmethod
    def transpose(x):
        return tf.linalg.matrix_transpose(x)

    @staticmethod
    def scan(a, b):
        """``torch_ops.TorchOps.scan``'s parallel prefix (Hillis & Steele) over the pairs (a_t, b_t), composed
        as (a2 a1, a2 b1 + b2), in ceil(log2 T) rounds (``_doubling``)."""
        a = a * tf.ones_like(b[..., :1])  # a per time step and sequence, its last axis as given

        def combine(offset, length, a, b):
            b = tf.concat([b[..., :offset, :], a[..., offset:, :] * b[..., : length - offset, :] + b[..., offset:, :]],
                          axis=-2)  # fmt: skip
            a = tf.concat([a[..., :offset, :], a[..., offset:, :] * a[..., : length - offset, :]], axis=-2)
            return a, b

        return _doubling(combine, (a, b))[1]

    @staticmethod
    def cummax(x):
        """The running maximum by the same parallel prefix (TensorFlow has no cumulative maximum)."""

        def combine(offset, length, x):
            return (tf.concat([x[..., :offset, :], tf.maximum(x[..., offset:, :], x[..., : length - offset, :])],
                              axis=-2),)  # fmt: skip

        return _doubling(combine, (x,))[0]

    @staticmethod
    def split(x, n, axis=-1):
        return tuple(tf.split(x, n, axis=axis))

    @staticmethod
    def where(cond, a, b):
        # tf.where broadcasts (TF2 semantics), like torch.where and np.where
        return tf.where(cond, _as_tensor_like(a, b), _as_tensor_like(b, a))

    @staticmethod
    def equal(a, b):
        return tf.math.equal(_as_tensor_like(a, b), _as_tensor_like(b, a))

    @staticmethod
    def floormod(a, b):
        # the result has the divisor's sign, like torch.remainder and np.mod
        return tf.math.floormod(_as_tensor_like(a, b), _as_tensor_like(b, a))

    @staticmethod
    def constant(array, like):
        dtype = tf.as_dtype(like.dtype)
        return tf.constant(np.asarray(array).astype(dtype.as_numpy_dtype))


def _doubling(combine: Any, tensors: tuple) -> tuple:
    """Hillis & Steele's rounds ``tensors = combine(offset, length, *tensors)`` for offset = 1, 2, 4, ...
    below the length of the time axis (-2): a Python loop where the length is known while tracing, a
    ``tf.while_loop`` where it is not (a signature of any length)."""
    static = tensors[0].shape[-2]
    if static is not None:
        offset = 1
        while offset < static:
            tensors = combine(offset, static, *tensors)
            offset *= 2
        return tensors
    length = tf.shape(tensors[0])[-2]
    result = tf.while_loop(
        lambda offset, *tensors: offset < length,
        lambda offset, *tensors: (offset * 2, *combine(offset, length, *tensors)),
        (tf.constant(1), *tensors),
        shape_invariants=(tf.TensorShape([]), *(t.shape for t in tensors)),
    )  # fmt: skip
    return tuple(result[1:])


TF_OPS = TfOps()
