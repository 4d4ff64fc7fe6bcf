"""mLSTM as xLSTM's chunkwise form (Beck et al. 2024 train it this way): its gates read only x_t, so its
memory C and normaliser n are linear in their past, and whole chunks of steps become a few matrix products.

This form lives apart from ``xlstm.py`` on purpose: it is another way to compute the same step, like a
fused kernel, and the step's file (the variants' code fingerprint) stays as the stored trials knew it.
The tests compare the form with its step, outputs and gradients, at T = 300.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.scan import linear_form
from variants.xlstm import MLSTM, log_sigmoid

#: steps per chunk of ``mlstm_scan``: within a chunk the layer is L × L products, across chunks a recurrence.
#: Timing the form's forward and backward in PyTorch (H = 32, B = 32; T = 100 and 1000; alone and 16
#: members; chunks of 16 to 256): 64 was the fastest in three of the four and within 6 % in the fourth
MLSTM_CHUNK = 64
#: where ``--scan auto`` runs ``mlstm_scan``: ``rnn-bench speed --variants mlstm --scan both --populations 1,16
#: --length 100|1000`` (H = 32, B = 32, reference machine, 2026-12-06; docs/variants.md, "Parallel scans").
#: PyTorch: 2.3-10x faster than the loop, alone and in populations of 16. TensorFlow: 3.8-4.3x alone; in a
#: population of 16, 1.16x faster at T = 100 and 1.17x slower at T = 1000, a draw that the memory decides
#: (the loop keeps an H × H matrix per step for the backward pass, the chunks one per 64 steps). GPU: not
#: measured, so the loop.
MLSTM_SCAN_FASTER = {
    ("torch", "cpu"): frozenset({"solo", "population"}),
    ("tf", "cpu"): frozenset({"solo", "population"}),
}


@linear_form("mlstm", faster=MLSTM_SCAN_FASTER)
def mlstm_scan(variant: MLSTM, ops: Any, p: dict[str, Any], xs: Any) -> Any:
    """The same layer for all steps at once, in xLSTM's chunkwise form where the length is known (always
    in PyTorch and numpy, in TensorFlow while tracing a fixed length), else as scans over C itself.

    Both rest on the stabiliser's closed form: the recurrence m_t = max(log σ(f̃_t) + m_{t-1}, ĩ_t)
    unrolls, from a state m_a at the step a before a stretch of steps, to

        m_t = b_t + max(m_a, max_{a < s <= t} (ĩ_s − b_s)),     b_t = Σ_{a < r <= t} log σ(f̃_r)

    a cumulative sum and a running maximum (``ops.cummax``); with it every i'_t and f'_t is known at
    once, and C_t, n_t are linear in their past with those coefficients. Same stabiliser as the step,
    so the same numbers up to float rounding (``rnn-bench check mlstm``, row ``scan``)."""
    H = p["W_q"].shape[-1]
    q = ops.matmul(xs, p["W_q"]) + p["b_q"]
    k = (ops.matmul(xs, p["W_k"]) + p["b_k"]) / math.sqrt(H)
    v = ops.matmul(xs, p["W_v"]) + p["b_v"]
    i = ops.matmul(xs, p["W_i"]) + p["b_i"]  # (..., T, 1)
    log_sigma_f = log_sigmoid(ops, ops.matmul(xs, p["W_f"]) + p["b_f"])
    length = xs.shape[-2]
    if length is None:  # TensorFlow, a length unknown while tracing: no chunks to cut
        read, normaliser, m = _mlstm_stepwise(ops, H, q, k, v, i, log_sigma_f)
    else:
        read, normaliser, m = _mlstm_chunkwise(ops, int(length), q, k, v, i, log_sigma_f)
    return ops.sigmoid(ops.matmul(xs, p["W_o"]) + p["b_o"]) * read / ops.maximum(ops.abs(normaliser), ops.exp(-m))


def _mlstm_stepwise(ops: Any, H: int, q: Any, k: Any, v: Any, i: Any, log_sigma_f: Any) -> tuple[Any, Any, Any]:
    """q_t C_t, q_t · n_t and m_t for every t, with C_t itself scanned: T · H² floats per sequence."""
    b = ops.scan(ops.ones_like(log_sigma_f), log_sigma_f)  # from the start: m_0 = 0
    m = b + ops.maximum(ops.cummax(i - b), 0.0)
    m_before = ops.concat([ops.zeros_like(m[..., :1, :]), m[..., :-1, :]], axis=-2)  # m_{t-1}
    input_gate, forget_gate = ops.exp(i - m), ops.exp(log_sigma_f + m_before - m)
    outer = ops.flatten(ops.matmul(ops.unflatten(k, (H, 1)), ops.unflatten(v, (1, H))), 2)  # k_tᵀ v_t, flat
    C = ops.scan(forget_gate, input_gate * outer)  # (..., T, H·H)
    n = ops.scan(forget_gate, input_gate * k)
    read = ops.flatten(ops.matmul(ops.unflatten(q, (1, H)), ops.unflatten(C, (H, H))), 2)
    return read, ops.sum(q * n), m


def _mlstm_chunkwise(ops: Any, length: int, q: Any, k: Any, v: Any, i: Any, log_sigma_f: Any) -> tuple[Any, Any, Any]:
    """q_t C_t, q_t · n_t and m_t for every t, chunk by chunk (Beck et al. 2024, the chunkwise form).
    Within a chunk of L steps after step a, with state (C_a, n_a, m_a) and b_t as in ``mlstm_scan``:

        D_ts   = exp(b_t − b_s + ĩ_s − m_t) for s <= t, else 0            (L × L)
        q_t C_t = exp(b_t + m_a − m_t) q_t C_a + Σ_s D_ts (q_t · k_s) v_s
        q_t n_t = exp(b_t + m_a − m_t) q_t n_a + Σ_s D_ts (q_t · k_s)

    and the chunk's last step e carries C_e = exp(b_e + m_a − m_e) C_a + Σ_s exp(b_e − b_s + ĩ_s − m_e) k_sᵀ v_s
    (n_e likewise) into the next. Every exponent is at most 0 up to rounding, as in the step. ``length``
    is at least 1 (every task's sequences are)."""
    state = None  # (C_a (..., H, H), n_a (..., H, 1), m_a (..., 1, 1)); zero before the first step
    reads, normalisers, stabilisers = [], [], []
    for start in range(0, length, MLSTM_CHUNK):
        part = slice(start, min(start + MLSTM_CHUNK, length))
        qc, kc, vc, ic, fc = (a[..., part, :] for a in (q, k, v, i, log_sigma_f))
        steps = part.stop - part.start
        lower = ops.constant(np.tril(np.ones((steps, steps))), like=fc)
        b = ops.matmul(lower, fc)  # Σ log σ(f̃) since the chunk began, (..., L, 1)
        m_a = ops.zeros_like(ic[..., :1, :]) if state is None else state[2]
        m = b + ops.maximum(ops.cummax(ic - b), m_a)
        exponent = b - ops.transpose(b - ic) - m  # [t, s] = b_t − b_s + ĩ_s − m_t
        D = ops.exp(ops.where(ops.equal(lower, 1.0), exponent, -np.inf))
        scores = ops.matmul(qc, ops.transpose(kc)) * D  # D_ts (q_t · k_s)
        read, normaliser = ops.matmul(scores, vc), ops.sum(scores)
        if state is not None:
            decay = ops.exp(b + m_a - m)  # what reaches step t of C_a, n_a
            read = read + decay * ops.matmul(qc, state[0])
            normaliser = normaliser + decay * ops.matmul(qc, state[1])
        reads.append(read)
        normalisers.append(normaliser)
        stabilisers.append(m)
        if part.stop < length:
            b_e, m_e = b[..., -1:, :], m[..., -1:, :]
            weighted = ops.transpose(kc * ops.exp(b_e - b + ic - m_e))  # (..., H, L)
            C, n = ops.matmul(weighted, vc), ops.sum(weighted)
            if state is not None:
                carry = ops.exp(b_e + m_a - m_e)
                C, n = C + carry * state[0], n + carry * state[1]
            state = (C, n, m_e)
    return tuple(parts[0] if len(parts) == 1 else ops.concat(parts, axis=-2)
                 for parts in (reads, normalisers, stabilisers))  # fmt: skip
