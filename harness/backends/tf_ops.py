"""The ops namespace in TensorFlow (see ``harness.ops`` for the contract; same semantics as ``torch_ops``).

Every op takes and returns ``tf.Tensor`` and broadcasts like numpy. Python scalars mixed into an op
take the dtype of the tensor beside them, as they do in PyTorch.
"""

from __future__ import annotations

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
    def scan(a, b):
        """``torch_ops.TorchOps.scan``'s parallel prefix (Hillis & Steele), with a Python loop where the
        length is known while tracing and a ``tf.while_loop`` where it is not (a signature of any length)."""
        a = a * tf.ones_like(b[..., :1])  # a per time step and sequence, its last axis as given

        def combine(offset, a, b, length):
            b = tf.concat([b[..., :offset, :], a[..., offset:, :] * b[..., : length - offset, :] + b[..., offset:, :]],
                          axis=-2)  # fmt: skip
            a = tf.concat([a[..., :offset, :], a[..., offset:, :] * a[..., : length - offset, :]], axis=-2)
            return a, b

        static = b.shape[-2]
        if static is not None:
            offset = 1
            while offset < static:
                a, b = combine(offset, a, b, static)
                offset *= 2
            return b
        length = tf.shape(b)[-2]
        _, _, b = tf.while_loop(
            lambda offset, a, b: offset < length,
            lambda offset, a, b: (offset * 2, *combine(offset, a, b, length)),
            (tf.constant(1), a, b),
            shape_invariants=(tf.TensorShape([]), a.shape, b.shape),
        )  # fmt: skip
        return b

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


TF_OPS = TfOps()
