"""The ops namespace in PyTorch (see ``harness.ops`` for the contract)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harness.ops import Ops


class TorchOps(Ops):
    backend = "torch"

    sigmoid = staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)
    relu = staticmethod(torch.relu)
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    abs = staticmethod(torch.abs)
    softplus = staticmethod(F.softplus)
    matmul = staticmethod(torch.matmul)
    maximum = staticmethod(torch.maximum)
    minimum = staticmethod(torch.minimum)
    zeros_like = staticmethod(torch.zeros_like)
    ones_like = staticmethod(torch.ones_like)

    @staticmethod
    def concat(xs, axis=-1):
        return torch.cat(list(xs), dim=axis)

    @staticmethod
    def split(x, n, axis=-1):
        size = x.shape[axis]
        if size % n:  # torch.chunk would silently return other sizes; numpy and TensorFlow refuse
            raise ValueError(f"ops.split: size {size} along axis {axis} does not divide into {n} equal parts")
        return torch.split(x, size // n, dim=axis)

    @staticmethod
    def where(cond, a, b):
        a = a if torch.is_tensor(a) else torch.as_tensor(a, dtype=b.dtype, device=b.device)
        b = b if torch.is_tensor(b) else torch.as_tensor(b, dtype=a.dtype, device=a.device)
        return torch.where(cond, a, b)

    @staticmethod
    def equal(a, b):
        return torch.eq(a, b)

    @staticmethod
    def floormod(a, b):
        return torch.remainder(a, b)

    @staticmethod
    def constant(array, like):
        return torch.as_tensor(np.asarray(array), dtype=like.dtype, device=like.device)


TORCH_OPS = TorchOps()
