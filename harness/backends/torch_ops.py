"""The ops namespace in PyTorch (see ``harness.ops`` for the contract)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harness.ops import Ops

SCAN_CHUNK = 64  # steps per chunk of ``TorchOps.scan``: measured against 8-128 and unchunked (docs/variants.md)


class TorchOps(Ops):
    backend = "torch"

    sigmoid = staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)
    relu = staticmethod(torch.relu)
    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    abs = staticmethod(torch.abs)
    sqrt = staticmethod(torch.sqrt)
    softplus = staticmethod(F.softplus)
    matmul = staticmethod(torch.matmul)
    zeros_like = staticmethod(torch.zeros_like)
    ones_like = staticmethod(torch.ones_like)

    @staticmethod
    def concat(xs, axis=-1):
        return torch.cat(list(xs), dim=axis)

    @staticmethod
    def sum(x):
        return torch.sum(x, dim=-1, keepdim=True)

    @staticmethod
    def mean(x):
        return torch.mean(x, dim=-1, keepdim=True)

    @staticmethod
    def unflatten(x, shape):
        return x.unflatten(-1, tuple(shape))

    @staticmethod
    def flatten(x, n):
        return x.flatten(start_dim=-n)

    @staticmethod
    def transpose(x):
        return x.transpose(-1, -2)

    @staticmethod
    def scan(a, b):
        """A chunked parallel scan: within chunks of ``SCAN_CHUNK`` steps, Hillis & Steele's parallel prefix
        over the pairs (a_t, b_t), composed as (a2 a1, a2 b1 + b2); across chunks, the state each chunk
        ends with carries into the next (s = B + A ⊙ s_start). Few, cache-sized products instead of T
        small steps; only the order of the float additions differs from the loop's."""
        a = a.expand(*b.shape[:-1], a.shape[-1])  # a per time step, its last axis as given (1 or b's)
        length = int(b.shape[-2])
        outputs, state = [], None
        for start in range(0, length, SCAN_CHUNK):
            A, B = _prefix(a[..., start : start + SCAN_CHUNK, :], b[..., start : start + SCAN_CHUNK, :])
            if state is not None:
                B = B + A * state.unsqueeze(-2)
            state = B[..., -1, :]
            outputs.append(B)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-2)

    @staticmethod
    def cummax(x):
        return torch.cummax(x, dim=-2).values

    @staticmethod
    def split(x, n, axis=-1):
        size = x.shape[axis]
        if size % n:  # torch.chunk would silently return other sizes; numpy and TensorFlow refuse
            raise ValueError(f"ops.split: size {size} along axis {axis} does not divide into {n} equal parts")
        return torch.split(x, size // n, dim=axis)

    @staticmethod
    def where(cond, a, b):
        return torch.where(cond, *_both_tensors(a, b))

    @staticmethod
    def maximum(a, b):
        return torch.maximum(*_both_tensors(a, b))

    @staticmethod
    def minimum(a, b):
        return torch.minimum(*_both_tensors(a, b))

    @staticmethod
    def equal(a, b):
        return torch.eq(a, b)

    @staticmethod
    def floormod(a, b):
        return torch.remainder(a, b)

    @staticmethod
    def constant(array, like):
        return torch.as_tensor(np.asarray(array), dtype=like.dtype, device=like.device)


def _both_tensors(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """``a`` and ``b`` as tensors: a Python number takes the other's dtype and device (torch.maximum and
    torch.where refuse numbers, numpy and TensorFlow take them)."""
    a = a if torch.is_tensor(a) else torch.as_tensor(a, dtype=b.dtype, device=b.device)
    b = b if torch.is_tensor(b) else torch.as_tensor(b, dtype=a.dtype, device=a.device)
    return a, b


def _prefix(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A_t, B_t) for every t of a chunk: A_t = a_1 ⋯ a_t and B_t = s_t from s_0 = 0, in ceil(log2 L) rounds."""
    length, offset = int(b.shape[-2]), 1
    while offset < length:
        b = torch.cat([b[..., :offset, :], a[..., offset:, :] * b[..., :-offset, :] + b[..., offset:, :]], dim=-2)
        a = torch.cat([a[..., :offset, :], a[..., offset:, :] * a[..., :-offset, :]], dim=-2)
        offset *= 2
    return a, b


TORCH_OPS = TorchOps()
