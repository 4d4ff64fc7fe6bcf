"""The variant catalogue against docs/variants.md: parameter contracts, equations (an independent numpy
reference per variant, written here from the spec, never calling a variant's step), gradients, the fused
kernels, initial forget-gate biases, hyperparameter errors, clockwork timing and the min-RNN closed form.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

try:  # PyTorch is optional: the numpy tests run without it, the PyTorch ones skip with the reason
    import torch

    from harness.backends.torch_cell import run_layer, unroll_torch
except ImportError:
    torch = None
from harness.cell.contract import sizes_of
from harness.cell.unroll import unroll_numpy
from harness.errors import UsageError
from harness.ops import NUMPY_OPS
from harness.plugins.registry import registry
from harness.variant import FORGET_BIAS, Variant

I, H = 3, 4  # sizes of the hard-coded contracts
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
BACKENDS = ["numpy", pytest.param("torch", marks=needs_torch)]


def all_ids() -> list[str]:
    return sorted(registry().variants)


def make(variant_id: str, **hparams) -> Variant:
    return registry().variant(variant_id, **hparams)


# --------------------------------------------------------------------------------------------------------
# (a) the parameter contract, hard-coded from docs/variants.md's tables at I=3, H=4
# --------------------------------------------------------------------------------------------------------
def _drop(contract: dict, names: str) -> dict:
    """The contract of V minus the parameters a Greff variant drops (docs/variants.md's table)."""
    gone = names.split()
    assert set(gone) <= set(contract)
    return {k: v for k, v in contract.items() if k not in gone}


V_CONTRACT = {
    "W_z": (I, H), "W_i": (I, H), "W_f": (I, H), "W_o": (I, H),
    "R_z": (H, H), "R_i": (H, H), "R_f": (H, H), "R_o": (H, H),
    "b_z": (H,), "b_i": (H,), "b_f": (H,), "b_o": (H,),
    "p_i": (H,), "p_f": (H,), "p_o": (H,),
}  # fmt: skip

NP_LAYER2 = {  # an np layer whose input is h¹ (H wide), prefixed l2.
    "l2.W_z": (H, H), "l2.W_i": (H, H), "l2.W_f": (H, H), "l2.W_o": (H, H),
    "l2.R_z": (H, H), "l2.R_i": (H, H), "l2.R_f": (H, H), "l2.R_o": (H, H),
    "l2.b_z": (H,), "l2.b_i": (H,), "l2.b_f": (H,), "l2.b_o": (H,),
}  # fmt: skip

GRU_CONTRACT = {
    "W_z": (I, H), "W_r": (I, H), "W_h": (I, H),
    "R_z": (H, H), "R_r": (H, H), "R_h": (H, H),
    "b_z": (H,), "b_r": (H,), "b_h": (H,),
}  # fmt: skip

CONTRACTS: dict[str, dict[str, tuple[int, ...]]] = {
    "v": V_CONTRACT,
    "nig": _drop(V_CONTRACT, "W_i R_i b_i p_i"),
    "nfg": _drop(V_CONTRACT, "W_f R_f b_f p_f"),
    "nog": _drop(V_CONTRACT, "W_o R_o b_o p_o"),
    "niaf": V_CONTRACT,
    "noaf": V_CONTRACT,
    "np": _drop(V_CONTRACT, "p_i p_f p_o"),
    "cifg": _drop(V_CONTRACT, "W_f R_f b_f p_f"),
    "fgr": {**V_CONTRACT, **{f"R_{s}{g}": (H, H) for s in "ifo" for g in "ifo"}},
    "gru": GRU_CONTRACT,
    "gru_ra": {**GRU_CONTRACT, "b_rh": (H,)},
    "rnn": {"W": (I, H), "R": (H, H), "b": (H,)},
    "clockwork": {"W": (I, H), "R": (H, H), "b": (H,)},
    "depth_gated": {
        **{f"l1.{k}": v for k, v in _drop(V_CONTRACT, "p_i p_f p_o").items()},
        **NP_LAYER2,
        "l2.W_d": (H, H),
        "l2.p_dc": (H,),
        "l2.p_dl": (H,),
        "l2.b_d": (H,),
    },
    "mut1": {
        "W_z": (I, H),
        "b_z": (H,),
        "W_r": (I, H),
        "R_r": (H, H),
        "b_r": (H,),
        "R_h": (H, H),
        "W_x": (I, H),
        "b_h": (H,),
    },
    "mut2": {
        "W_z": (I, H),
        "R_z": (H, H),
        "b_z": (H,),
        "W_x": (I, H),
        "R_r": (H, H),
        "b_r": (H,),
        "R_h": (H, H),
        "W_h": (I, H),
        "b_h": (H,),
    },
    "mut3": {
        "W_z": (I, H),
        "R_z": (H, H),
        "b_z": (H,),
        "W_r": (I, H),
        "R_r": (H, H),
        "b_r": (H,),
        "R_h": (H, H),
        "W_h": (I, H),
        "b_h": (H,),
    },
    "min_gru": {"W_z": (I, H), "b_z": (H,), "W_h": (I, H), "b_h": (H,)},
    "min_lstm": {"W_f": (I, H), "b_f": (H,), "W_i": (I, H), "b_i": (H,), "W_h": (I, H), "b_h": (H,)},
    "indrnn": {"W": (I, H), "u": (H,), "b": (H,)},
    "ln_lstm": {
        **_drop(V_CONTRACT, "p_i p_f p_o"),
        "g_x": (4 * H,), "d_x": (4 * H,), "g_h": (4 * H,), "d_h": (4 * H,), "g_c": (H,), "d_c": (H,),
    },  # fmt: skip
    "slstm": _drop(V_CONTRACT, "p_i p_f p_o"),
    "mlstm": {
        "W_q": (I, H), "W_k": (I, H), "W_v": (I, H), "W_o": (I, H),
        "b_q": (H,), "b_k": (H,), "b_v": (H,), "b_o": (H,),
        "W_i": (I, 1), "W_f": (I, 1), "b_i": (1,), "b_f": (1,),
    },  # fmt: skip
    "rg_lru": {"W_u": (I, H), "W_a": (I, H), "W_x": (I, H), "b_u": (H,), "b_a": (H,), "b_x": (H,), "lam": (H,)},
}
CONTRACT_HPARAMS = {"clockwork": {"modules": 2}}


def test_the_whole_catalogue_is_registered_and_covered() -> None:
    """Every id of docs/variants.md is registered and has its contract and reference here. Variants a user
    adds (``rnn-bench new-variant``) bring their own test file; the registry-wide checks below
    (gradcheck, fused parity) pick them up by themselves."""
    reg = registry()
    broken = {f: e for f, e in reg.broken_files.items() if "/variants/" in f.replace("\\", "/")}
    assert not broken, f"variant files failed to import: {broken}"
    ids = set(reg.variants)
    assert set(CONTRACTS) <= ids, f"catalogue ids not registered: {sorted(set(CONTRACTS) - ids)}"
    assert set(REFERENCES) == set(CONTRACTS), f"no reference for {sorted(set(CONTRACTS) - set(REFERENCES))}"
    assert len(CONTRACTS) == 24


@pytest.mark.parametrize("variant_id", sorted(CONTRACTS))
def test_parameter_contract(variant_id: str) -> None:
    variant = make(variant_id, **CONTRACT_HPARAMS.get(variant_id, {}))
    for attr in ("id", "name", "reference", "family"):
        assert getattr(variant, attr), f"{variant_id} lacks {attr}"
    assert variant.__doc__, f"{variant_id} lacks a docstring"
    shapes = {k: tuple(v) for k, v in variant.parameter_shapes(I, H).items()}
    assert shapes == CONTRACTS[variant_id]
    params = variant.init_params(I, H, rng=0, lag=20)
    assert {k: v.shape for k, v in params.items()} == CONTRACTS[variant_id]
    assert all(v.dtype == np.float32 for v in params.values())
    assert sizes_of(variant, params) == (I, H)
    assert variant.parameter_count(I, H) == sum(int(np.prod(s)) for s in CONTRACTS[variant_id].values())


@pytest.mark.parametrize(("alias", "canonical"), [("lstm", "np"), ("peephole", "v"), ("coupled", "cifg")])
def test_aliases(alias: str, canonical: str) -> None:
    assert registry().canonical_variant(alias) == canonical
    assert type(make(alias)) is registry().variants[canonical]


def test_initial_values_by_role() -> None:
    """W Glorot, R orthogonal, b zero (np, no forget bias asked), peepholes small and non-zero."""
    params = make("v", forget_bias=0.0).init_params(I, H, rng=1)
    limit = np.sqrt(6.0 / (I + H))
    assert all(np.abs(params[f"W_{g}"]).max() <= limit for g in "zifo")
    assert all(np.allclose(params[f"R_{g}"] @ params[f"R_{g}"].T, np.eye(H), atol=1e-5) for g in "zifo")
    assert all(not params[f"b_{g}"].any() for g in "zifo")
    assert all(0 < np.abs(params[f"p_{g}"]).max() <= 1 / np.sqrt(H) for g in "ifo")


# --------------------------------------------------------------------------------------------------------
# (b) independent numpy references, written from docs/variants.md. x is (B, L, I); each returns (B, L, H).
# --------------------------------------------------------------------------------------------------------
def sig(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def identity(a: np.ndarray) -> np.ndarray:
    return a


def ref_lstm(
    p: dict, x: np.ndarray, *, input_gate: bool = True, forget_gate: bool = True, output_gate: bool = True,
    g: Callable = np.tanh, k: Callable = np.tanh, peepholes: bool = True, coupled: bool = False,
    full_gate_recurrence: bool = False,
) -> np.ndarray:  # fmt: skip
    """V (Greff et al. 2015) with one of its parts changed, per docs/variants.md's table."""
    batch, length, _ = x.shape
    n = p["b_z"].shape[0]
    h, c = np.zeros((batch, n)), np.zeros((batch, n))
    i_prev, f_prev, o_prev = np.zeros((batch, n)), np.zeros((batch, n)), np.zeros((batch, n))
    out = []
    for t in range(length):
        xt = x[:, t]
        pre = {
            gate: xt @ p[f"W_{gate}"] + h @ p[f"R_{gate}"] + p[f"b_{gate}"]
            + (i_prev @ p[f"R_i{gate}"] + f_prev @ p[f"R_f{gate}"] + o_prev @ p[f"R_o{gate}"]
               if full_gate_recurrence else 0.0)
            for gate in "ifo"
            if f"W_{gate}" in p
        }  # fmt: skip
        z = g(xt @ p["W_z"] + h @ p["R_z"] + p["b_z"])
        i = sig(pre["i"] + (p["p_i"] * c if peepholes else 0.0)) if input_gate else np.ones((batch, n))
        if coupled:
            f = 1.0 - i
        elif forget_gate:
            f = sig(pre["f"] + (p["p_f"] * c if peepholes else 0.0))
        else:
            f = np.ones((batch, n))
        c = z * i + c * f
        o = sig(pre["o"] + (p["p_o"] * c if peepholes else 0.0)) if output_gate else np.ones((batch, n))
        h = k(c) * o
        i_prev, f_prev, o_prev = i, f, o
        out.append(h)
    return np.stack(out, axis=1)


def ref_gru(p: dict, x: np.ndarray, reset_after: bool = False) -> np.ndarray:
    batch, length, _ = x.shape
    h = np.zeros((batch, p["b_z"].shape[0]))
    out = []
    for t in range(length):
        xt = x[:, t]
        z = sig(xt @ p["W_z"] + h @ p["R_z"] + p["b_z"])
        r = sig(xt @ p["W_r"] + h @ p["R_r"] + p["b_r"])
        if reset_after:
            cand = np.tanh(xt @ p["W_h"] + p["b_h"] + r * (h @ p["R_h"] + p["b_rh"]))
        else:
            cand = np.tanh(xt @ p["W_h"] + (r * h) @ p["R_h"] + p["b_h"])
        h = (1.0 - z) * h + z * cand
        out.append(h)
    return np.stack(out, axis=1)


def ref_rnn(p: dict, x: np.ndarray) -> np.ndarray:
    h = np.zeros((x.shape[0], p["b"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ p["W"] + h @ p["R"] + p["b"])
        out.append(h)
    return np.stack(out, axis=1)


def clockwork_mask(n: int, modules: int) -> np.ndarray:
    """M[src, dst]: dst's module k listens to src's module j iff j >= k (row-vector h @ (R ⊙ M))."""
    size = n // modules
    mask = np.zeros((n, n))
    for k in range(modules):  # receiving module
        for j in range(k, modules):  # sending module, same or slower
            mask[j * size : (j + 1) * size, k * size : (k + 1) * size] = 1.0
    return mask


def ref_clockwork(p: dict, x: np.ndarray, modules: int) -> np.ndarray:
    n = p["b"].shape[0]
    size = n // modules
    mask = clockwork_mask(n, modules)
    h = np.zeros((x.shape[0], n))
    out = []
    for t in range(x.shape[1]):
        full = np.tanh(x[:, t] @ p["W"] + h @ (p["R"] * mask) + p["b"])
        new = h.copy()
        for k in range(modules):
            if t % (2**k) == 0:
                new[:, k * size : (k + 1) * size] = full[:, k * size : (k + 1) * size]
        h = new
        out.append(h)
    return np.stack(out, axis=1)


def ref_depth_gated(p: dict, x: np.ndarray) -> np.ndarray:
    batch, length, _ = x.shape
    n = p["l1.b_z"].shape[0]
    h1, c1, h2, c2 = (np.zeros((batch, n)) for _ in range(4))
    out = []

    def gate(prefix: str, g: str, inp: np.ndarray, h: np.ndarray) -> np.ndarray:
        return inp @ p[f"{prefix}W_{g}"] + h @ p[f"{prefix}R_{g}"] + p[f"{prefix}b_{g}"]

    for t in range(length):
        xt = x[:, t]
        z1, i1 = np.tanh(gate("l1.", "z", xt, h1)), sig(gate("l1.", "i", xt, h1))
        f1, o1 = sig(gate("l1.", "f", xt, h1)), sig(gate("l1.", "o", xt, h1))
        c1 = z1 * i1 + c1 * f1
        h1 = np.tanh(c1) * o1
        z2, i2 = np.tanh(gate("l2.", "z", h1, h2)), sig(gate("l2.", "i", h1, h2))
        f2, o2 = sig(gate("l2.", "f", h1, h2)), sig(gate("l2.", "o", h1, h2))
        d = sig(h1 @ p["l2.W_d"] + p["l2.p_dc"] * c2 + p["l2.p_dl"] * c1 + p["l2.b_d"])
        c2 = d * c1 + f2 * c2 + i2 * z2
        h2 = np.tanh(c2) * o2
        out.append(h2)
    return np.stack(out, axis=1)


def ref_mut(p: dict, x: np.ndarray, which: int) -> np.ndarray:
    h = np.zeros((x.shape[0], p["b_h"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        u = xt @ p["W_x"] if "W_x" in p else None
        if which == 1:
            z = sig(xt @ p["W_z"] + p["b_z"])
            r = sig(xt @ p["W_r"] + h @ p["R_r"] + p["b_r"])
            h = np.tanh((r * h) @ p["R_h"] + np.tanh(u) + p["b_h"]) * z + h * (1.0 - z)
        elif which == 2:
            z = sig(xt @ p["W_z"] + h @ p["R_z"] + p["b_z"])
            r = sig(u + h @ p["R_r"] + p["b_r"])
            h = np.tanh((r * h) @ p["R_h"] + xt @ p["W_h"] + p["b_h"]) * z + h * (1.0 - z)
        else:
            z = sig(xt @ p["W_z"] + np.tanh(h) @ p["R_z"] + p["b_z"])
            r = sig(xt @ p["W_r"] + h @ p["R_r"] + p["b_r"])
            h = np.tanh((r * h) @ p["R_h"] + xt @ p["W_h"] + p["b_h"]) * z + h * (1.0 - z)
        out.append(h)
    return np.stack(out, axis=1)


def ref_min_gru(p: dict, x: np.ndarray) -> np.ndarray:
    h = np.zeros((x.shape[0], p["b_h"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        z = sig(x[:, t] @ p["W_z"] + p["b_z"])
        h = (1.0 - z) * h + z * (x[:, t] @ p["W_h"] + p["b_h"])
        out.append(h)
    return np.stack(out, axis=1)


def ref_min_lstm(p: dict, x: np.ndarray) -> np.ndarray:
    h = np.zeros((x.shape[0], p["b_h"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        f = sig(x[:, t] @ p["W_f"] + p["b_f"])
        i = sig(x[:, t] @ p["W_i"] + p["b_i"])
        h = (f / (f + i)) * h + (i / (f + i)) * (x[:, t] @ p["W_h"] + p["b_h"])
        out.append(h)
    return np.stack(out, axis=1)


def ref_indrnn(p: dict, x: np.ndarray) -> np.ndarray:
    h = np.zeros((x.shape[0], p["b"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        h = np.maximum(x[:, t] @ p["W"] + p["u"] * h + p["b"], 0.0)
        out.append(h)
    return np.stack(out, axis=1)


def ln(a: np.ndarray, g: np.ndarray, d: np.ndarray) -> np.ndarray:
    mu = a.mean(axis=-1, keepdims=True)
    return g * (a - mu) / np.sqrt(a.var(axis=-1, keepdims=True) + 1e-5) + d


def ref_ln_lstm(p: dict, x: np.ndarray) -> np.ndarray:
    hidden = p["b_z"].shape[0]
    h, c = np.zeros((x.shape[0], hidden)), np.zeros((x.shape[0], hidden))
    W = np.concatenate([p[f"W_{g}"] for g in "zifo"], axis=1)
    R = np.concatenate([p[f"R_{g}"] for g in "zifo"], axis=1)
    b = np.concatenate([p[f"b_{g}"] for g in "zifo"])
    out = []
    for t in range(x.shape[1]):
        a = ln(x[:, t] @ W, p["g_x"], p["d_x"]) + ln(h @ R, p["g_h"], p["d_h"]) + b
        z, i, f, o = np.split(a, 4, axis=1)
        c = np.tanh(z) * sig(i) + c * sig(f)
        h = sig(o) * np.tanh(ln(c, p["g_c"], p["d_c"]))
        out.append(h)
    return np.stack(out, axis=1)


def ref_slstm(p: dict, x: np.ndarray) -> np.ndarray:
    """Without the stabiliser: i = exp(ĩ), f = σ(f̃). Every term of c and n carries the same exp(−m), so
    h is the stabilised cell's (the claim this reference tests, at moderate pre-activations)."""
    hidden = p["b_z"].shape[0]
    h, c, n = (np.zeros((x.shape[0], hidden)) for _ in range(3))
    out = []
    for t in range(x.shape[1]):
        pre = {g: x[:, t] @ p[f"W_{g}"] + h @ p[f"R_{g}"] + p[f"b_{g}"] for g in "zifo"}
        i, f = np.exp(pre["i"]), sig(pre["f"])
        c = f * c + i * np.tanh(pre["z"])
        n = f * n + i
        h = sig(pre["o"]) * c / n
        out.append(h)
    return np.stack(out, axis=1)


def ref_mlstm(p: dict, x: np.ndarray) -> np.ndarray:
    """Without the stabiliser: C and n are the stabilised ones times exp(m), so the normaliser
    max(|q·n|, exp(−m)) becomes max(|q·n|, 1)."""
    batch, hidden = x.shape[0], p["b_q"].shape[0]
    C, n = np.zeros((batch, hidden, hidden)), np.zeros((batch, hidden))
    out = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        q, k, v = xt @ p["W_q"] + p["b_q"], (xt @ p["W_k"] + p["b_k"]) / np.sqrt(hidden), xt @ p["W_v"] + p["b_v"]
        i, f = np.exp(xt @ p["W_i"] + p["b_i"]), sig(xt @ p["W_f"] + p["b_f"])  # (B, 1)
        C = f[:, :, None] * C + i[:, :, None] * np.einsum("bi,bj->bij", k, v)
        n = f * n + i * k
        read = np.einsum("bi,bij->bj", q, C)
        h = sig(xt @ p["W_o"] + p["b_o"]) * read / np.maximum(np.abs((q * n).sum(axis=1, keepdims=True)), 1.0)
        out.append(h)
    return np.stack(out, axis=1)


def ref_rg_lru(p: dict, x: np.ndarray) -> np.ndarray:
    h = np.zeros((x.shape[0], p["lam"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        u, r, i = xt @ p["W_u"] + p["b_u"], sig(xt @ p["W_a"] + p["b_a"]), sig(xt @ p["W_x"] + p["b_x"])
        a = sig(p["lam"]) ** (8.0 * r)
        h = a * h + (np.sqrt(np.maximum(1.0 - a**2, 2.5e-7)) if t > 0 else 1.0) * (i * u)  # the documented floor
        out.append(h)
    return np.stack(out, axis=1)


# id -> (reference, hyperparameters, hidden size)
REFERENCES: dict[str, tuple[Callable, dict, int]] = {
    "v": (ref_lstm, {}, 4),
    "nig": (lambda p, x: ref_lstm(p, x, input_gate=False), {}, 4),
    "nfg": (lambda p, x: ref_lstm(p, x, forget_gate=False), {}, 4),
    "nog": (lambda p, x: ref_lstm(p, x, output_gate=False), {}, 4),
    "niaf": (lambda p, x: ref_lstm(p, x, g=identity), {}, 4),
    "noaf": (lambda p, x: ref_lstm(p, x, k=identity), {}, 4),
    "np": (lambda p, x: ref_lstm(p, x, peepholes=False), {}, 4),
    "cifg": (lambda p, x: ref_lstm(p, x, coupled=True), {}, 4),
    "fgr": (lambda p, x: ref_lstm(p, x, full_gate_recurrence=True), {}, 4),
    "gru": (ref_gru, {}, 4),
    "gru_ra": (lambda p, x: ref_gru(p, x, reset_after=True), {}, 4),
    "rnn": (ref_rnn, {}, 4),
    # three modules of two units: the slowest (period 4) ticks at t = 0, 4, 8 within L = 9
    "clockwork": (lambda p, x: ref_clockwork(p, x, modules=3), {"modules": 3}, 6),
    "depth_gated": (ref_depth_gated, {}, 4),
    "mut1": (lambda p, x: ref_mut(p, x, 1), {}, 4),
    "mut2": (lambda p, x: ref_mut(p, x, 2), {}, 4),
    "mut3": (lambda p, x: ref_mut(p, x, 3), {}, 4),
    "min_gru": (ref_min_gru, {}, 4),
    "min_lstm": (ref_min_lstm, {}, 4),
    "indrnn": (ref_indrnn, {}, 4),
    "ln_lstm": (ref_ln_lstm, {}, 4),
    "slstm": (ref_slstm, {}, 4),
    "mlstm": (ref_mlstm, {}, 4),
    "rg_lru": (ref_rg_lru, {}, 4),
}


def random_params(variant: Variant, input_size: int, hidden_size: int, seed: int) -> dict[str, np.ndarray]:
    """float64 parameters, all non-zero (biases and peepholes included), so that every term matters."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0.0, 0.5, size=shape)
        for name, shape in variant.parameter_shapes(input_size, hidden_size).items()
    }


def to_torch(params: dict[str, np.ndarray], requires_grad: bool = False) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=requires_grad) for k, v in params.items()}


def unroll(backend: str, variant: Variant, params: dict[str, np.ndarray], x: np.ndarray, hidden: int) -> np.ndarray:
    """The layer's outputs (B, L, H) in float64, with numpy or PyTorch."""
    if backend == "numpy":
        return unroll_numpy(variant, params, x)
    with torch.no_grad():
        return unroll_torch(variant, to_torch(params), torch.tensor(x), hidden).numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant_id", sorted(REFERENCES))
def test_equations_match_reference(variant_id: str, backend: str) -> None:
    reference, hparams, hidden = REFERENCES[variant_id]
    variant = make(variant_id, **hparams)
    seed = sorted(REFERENCES).index(variant_id)
    rng = np.random.default_rng(100 + seed)
    length = 9 if variant_id == "clockwork" else int(rng.integers(5, 10))
    params = random_params(variant, I, hidden, seed)
    x = rng.normal(0.0, 1.0, size=(2, length, I))
    expected = reference(params, x)
    assert expected.shape == (2, length, hidden)
    np.testing.assert_allclose(unroll(backend, variant, params, x, hidden), expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# (c) finite-difference gradients, every registered variant
# --------------------------------------------------------------------------------------------------------
GRAD_HPARAMS = {"clockwork": {"modules": 2}}


@needs_torch
@pytest.mark.parametrize("variant_id", all_ids())
def test_gradcheck(variant_id: str) -> None:
    variant = make(variant_id, **GRAD_HPARAMS.get(variant_id, {}))
    in_size, hidden = 2, 2
    params = to_torch(random_params(variant, in_size, hidden, seed=7), requires_grad=True)
    names = list(params)
    x = torch.tensor(np.random.default_rng(8).normal(size=(2, 4, in_size)), requires_grad=True)

    def forward(inputs: torch.Tensor, *flat: torch.Tensor) -> torch.Tensor:
        return unroll_torch(variant, dict(zip(names, flat)), inputs, hidden)

    assert torch.autograd.gradcheck(forward, (x, *params.values()), eps=1e-6, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------------------------------------
# (d) fused library kernels against the generic path
# --------------------------------------------------------------------------------------------------------
FUSED_IDS = sorted(i for i, cls in registry().variants.items() if cls.fused_kernel)


def test_fused_variants() -> None:
    assert {"np", "gru_ra", "rnn"} <= set(FUSED_IDS)
    assert make("gru").fused_kernel is None  # reset-before is not what cuDNN computes


@needs_torch
@pytest.mark.parametrize("variant_id", FUSED_IDS)
def test_fused_matches_generic(variant_id: str) -> None:
    variant = make(variant_id)
    rng = np.random.default_rng(3)
    params = to_torch(random_params(variant, I, H, seed=4), requires_grad=True)
    x = torch.tensor(rng.normal(size=(2, 7, I)), requires_grad=True)
    cotangent = torch.tensor(rng.normal(size=(2, 7, H)))
    cache: dict = {}
    fused = run_layer(variant, params, x, H, fused=True, kernel_cache=cache)
    assert len(cache) == 1, "the fused path did not use a library kernel"
    generic = run_layer(variant, params, x, H, fused=False)
    assert (fused - generic).abs().max().item() <= 1e-10
    leaves = [x, *params.values()]
    grads_fused = torch.autograd.grad((fused * cotangent).sum(), leaves)
    grads_generic = torch.autograd.grad((generic * cotangent).sum(), leaves)
    for name, a, b in zip(["x", *params], grads_fused, grads_generic):
        assert (a - b).abs().max().item() <= 1e-10, f"gradient of {name} differs"


# --------------------------------------------------------------------------------------------------------
# (e) initial forget-gate bias and hyperparameter errors
# --------------------------------------------------------------------------------------------------------
#: the variants whose forget_bias is the catalogue's shared one (slstm declares its own: tested below)
FORGET_BIAS_IDS = sorted(
    i for i, cls in registry().variants.items() if cls.hyperparameters.get("forget_bias") is FORGET_BIAS
)


def test_which_variants_take_forget_bias() -> None:
    lstm_ids = {"v", "nig", "nog", "niaf", "noaf", "np", "cifg", "fgr", "depth_gated", "ln_lstm"}
    assert lstm_ids <= set(FORGET_BIAS_IDS)
    assert "nfg" not in FORGET_BIAS_IDS
    with pytest.raises(UsageError, match="forget_bias"):
        make("nfg", forget_bias=1.0)


def _bias_names(params: dict) -> list[tuple[str, str]]:
    """(b_f name, b_i name) per layer; a name is None where the layer lacks that bias."""
    prefixes = sorted({n[: -len("b_f")] for n in params if n.endswith(("b_f", "b_i"))})
    return [
        (p + "b_f" if p + "b_f" in params else None, p + "b_i" if p + "b_i" in params else None)
        for p in prefixes
    ]


@pytest.mark.parametrize("variant_id", FORGET_BIAS_IDS)
@pytest.mark.parametrize("value", [None, 2.5])
def test_forget_bias_number(variant_id: str, value: float | None) -> None:
    variant = make(variant_id) if value is None else make(variant_id, forget_bias=value)
    expected = 1.0 if value is None else value
    params = variant.init_params(I, H, rng=0)
    pairs = _bias_names(params)
    assert pairs
    for bf, bi in pairs:
        if bf is not None:
            assert np.all(params[bf] == np.float32(expected))
            if bi is not None:
                assert not params[bi].any()  # a number leaves the input gate's bias at zero
        else:  # cifg: f = 1 - σ(a_i) = σ(-a_i), so b_i = -forget_bias gives the same initial f
            assert np.all(params[bi] == np.float32(-expected))


def test_cifg_forget_bias_sets_input_bias() -> None:
    params = make("coupled", forget_bias=3.0).init_params(I, H, rng=0)
    assert "b_f" not in params
    np.testing.assert_array_equal(params["b_i"], np.full(H, -3.0, dtype=np.float32))


@pytest.mark.parametrize("variant_id", FORGET_BIAS_IDS)
def test_forget_bias_chrono(variant_id: str) -> None:
    lag, hidden = 50, 32
    variant = make(variant_id, forget_bias="chrono")
    params = variant.init_params(I, hidden, rng=0, lag=lag)
    for bf, bi in _bias_names(params):
        chrono = params[bf] if bf is not None else -params[bi]
        assert np.all(chrono >= 0.0) and np.all(chrono <= np.log(lag - 1) + 1e-6)
        assert np.ptp(chrono) > 0, "chrono draws each unit's bias"
        if bf is not None and bi is not None:
            np.testing.assert_array_equal(params[bi], -params[bf])


@pytest.mark.parametrize("variant_id", all_ids())
def test_unknown_hyperparameter(variant_id: str) -> None:
    with pytest.raises(UsageError, match="no_such_knob"):
        make(variant_id, no_such_knob=1)


@pytest.mark.parametrize(
    ("variant_id", "hparams", "needle"),
    [
        ("np", {"forget_bias": "x"}, "'x'"),
        ("depth_gated", {"forget_bias": "x"}, "'x'"),
        ("v", {"forget_bias": float("nan")}, "nan"),
        ("clockwork", {"modules": 0}, "modules=0"),
        ("clockwork", {"modules": 2.5}, "2.5"),
        ("clockwork", {"modules": "4"}, "'4'"),
    ],
)
def test_bad_hyperparameter_values(variant_id: str, hparams: dict, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        make(variant_id, **hparams)
    assert needle in str(info.value)


def test_clockwork_hidden_size_not_divisible() -> None:
    variant = make("clockwork", modules=3)
    for call in (lambda: variant.parameter_shapes(I, 4), lambda: variant.init_params(I, 4, rng=0)):
        with pytest.raises(UsageError) as info:
            call()
        assert "4" in str(info.value) and "modules=3" in str(info.value)
    assert make("clockwork").hparams["modules"] == 4  # the default


# --------------------------------------------------------------------------------------------------------
# (f) clockwork: slow modules hold their units between ticks
# --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_clockwork_slow_modules_hold(backend: str) -> None:
    modules, hidden, length = 3, 6, 13
    variant = make("clockwork", modules=modules)
    params = random_params(variant, I, hidden, seed=11)
    x = np.zeros((2, length, I))
    x[:, 0] = np.random.default_rng(12).normal(size=(2, I))  # input only at t = 0
    h = unroll(backend, variant, params, x, hidden)
    size = hidden // modules
    for k in range(modules):
        units = slice(k * size, (k + 1) * size)
        for t in range(1, length):
            same = np.array_equal(h[:, t, units], h[:, t - 1, units])
            if t % 2**k:
                assert same, f"module {k} (period {2**k}) changed at t={t}, between its ticks"
            else:
                assert not same, f"module {k} (period {2**k}) did not update at its tick t={t}"


# --------------------------------------------------------------------------------------------------------
# (g) min_gru / min_lstm: gates read only x, so a closed form over time gives the same outputs
# --------------------------------------------------------------------------------------------------------
def min_coefficients(variant_id: str, p: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a_t, b_t) with h_t = a_t ⊙ h_{t-1} + b_t, computed for all t at once from x alone."""
    cand = x @ p["W_h"] + p["b_h"]
    if variant_id == "min_gru":
        z = sig(x @ p["W_z"] + p["b_z"])
        return 1.0 - z, z * cand
    f, i = sig(x @ p["W_f"] + p["b_f"]), sig(x @ p["W_i"] + p["b_i"])
    return f / (f + i), i / (f + i) * cand


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant_id", ["min_gru", "min_lstm"])
def test_min_rnn_closed_form(variant_id: str, backend: str) -> None:
    variant = make(variant_id)
    params = random_params(variant, I, H, seed=21)
    x = np.random.default_rng(22).normal(size=(2, 8, I))
    a, b = min_coefficients(variant_id, params, x)
    # h_t = Σ_{s≤t} (Π_{s<r≤t} a_r) b_s, with the products from cumulative log-sums (the scan's form)
    log_a = np.cumsum(np.log(a), axis=1)  # (B, L, H)
    decay = np.exp(log_a[:, :, None, :] - log_a[:, None, :, :])  # [t, s] = Π_{s<r≤t} a_r
    causal = np.tril(np.ones((x.shape[1], x.shape[1])))[None, :, :, None]
    closed = np.sum(decay * causal * b[:, None, :, :], axis=2)
    np.testing.assert_allclose(unroll(backend, variant, params, x, H), closed, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant_id", ["min_gru", "min_lstm"])
def test_min_rnn_step_is_affine_in_h(variant_id: str) -> None:
    """One step from two different states: the difference is a_t ⊙ Δh with a_t from x alone, so no
    gate reads h."""
    variant = make(variant_id)
    params = random_params(variant, I, H, seed=23)
    rng = np.random.default_rng(24)
    x, h_a, h_b = rng.normal(size=(2, I)), rng.normal(size=(2, H)), rng.normal(size=(2, H))
    a, b = min_coefficients(variant_id, params, x)
    out_a, _ = variant.step(NUMPY_OPS, params, x, (h_a,))
    out_b, _ = variant.step(NUMPY_OPS, params, x, (h_b,))
    np.testing.assert_allclose(out_a, a * h_a + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out_a - out_b, a * (h_a - h_b), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# (g) the frontier cells: their documented initial values and what their states mean
# --------------------------------------------------------------------------------------------------------
def test_indrnn_recurrent_weights_start_where_a_signal_survives_the_lag() -> None:
    lag, hidden = 50, 256
    u = make("indrnn").init_params(I, hidden, rng=0, lag=lag)["u"]
    assert np.all(u >= 0.5 ** (1 / lag)) and np.all(u <= 2 ** (1 / lag))  # u^T in [1/2, 2]
    assert np.ptp(u) > 0.5 * (2 ** (1 / lag) - 0.5 ** (1 / lag))  # drawn across the range, not one value
    bare = make("indrnn").init_params(I, hidden, rng=0)
    assert np.all((bare["u"] >= 0) & (bare["u"] <= 1))
    assert abs(bare["W"].std() - 0.01) < 0.002 and not bare["b"].any()  # small input weights, as StefOe's


def test_ln_lstm_starts_with_unit_gains_zero_shifts_and_np_forget_bias() -> None:
    params = make("ln_lstm", forget_bias=2.0).init_params(I, H, rng=0)
    assert all(np.all(params[g] == 1.0) for g in ("g_x", "g_h", "g_c"))
    assert all(not params[d].any() for d in ("d_x", "d_h", "d_c"))
    assert np.all(params["b_f"] == 2.0) and not params["b_i"].any()


def test_slstm_starts_as_xlstm_does_powerlaw_forget_bias_and_zero_recurrence() -> None:
    params = make("slstm").init_params(I, 5, rng=0)
    np.testing.assert_allclose(params["b_f"], [5 - 12 * (j / 4) ** 0.3 for j in range(5)], rtol=1e-6)
    assert params["b_f"][0] == 5.0 and params["b_f"][-1] == -7.0
    assert all(not params[f"R_{g}"].any() for g in "zifo") and all(params[f"W_{g}"].any() for g in "zifo")
    assert not any(params[f"b_{g}"].any() for g in "zio")
    chrono = make("slstm", forget_bias="chrono").init_params(I, 32, rng=0, lag=50)
    assert np.all((chrono["b_f"] >= 0) & (chrono["b_f"] <= np.log(49) + 1e-6)) and not chrono["b_i"].any()
    assert np.all(make("slstm", forget_bias=1.5).init_params(I, H, rng=0)["b_f"] == 1.5)
    with pytest.raises(UsageError, match="'sideways'"):
        make("slstm", forget_bias="sideways")


def test_slstm_stabiliser_keeps_large_gates_finite_where_the_plain_form_overflows() -> None:
    """ĩ = 1000 overflows exp() in the unstabilised form; the stabilised h is the ratio it stands for."""
    variant = make("slstm")
    params = {k: np.zeros_like(v, dtype=np.float64) for k, v in random_params(variant, I, H, 0).items()}
    params["b_i"][:], params["b_z"][:], params["b_f"][:] = 1000.0, 0.5, 0.0
    out = unroll_numpy(variant, params, np.zeros((1, 3, I)))
    # every step: c/n is tanh(0.5) whatever the gates (one input, i' = 1 after it is stabilised), o = 0.5
    np.testing.assert_allclose(out, np.full((1, 3, H), 0.5 * np.tanh(0.5)), rtol=1e-12)


def test_mlstm_starts_as_xlstm_does_and_keeps_its_matrix_memory_flat() -> None:
    variant = make("mlstm")
    params = variant.init_params(I, H, rng=0)
    assert not params["W_i"].any() and not params["W_f"].any() and params["b_f"][0] == 3.0
    wide = variant.init_params(I, 64, rng=0)["W_q"]
    assert abs(wide.std() - np.sqrt(2 / (5 * 64))) < 0.02  # xLSTM's small init for q, k, v
    assert 0 < abs(params["b_i"][0]) < 0.5
    assert variant.state_sizes(H) == (H, H * H, H, 1)
    # one step from zero state with one input: C_1 = i'·k vᵀ, with i' = 1 (m_1 = ĩ_1 > log σ(f̃_1) here)
    p = random_params(variant, I, H, seed=3)
    p["b_i"][:] = 5.0
    x = np.random.default_rng(4).normal(size=(2, I))
    zeros = tuple(np.zeros((2, s)) for s in variant.state_sizes(H))
    _, (_, C, n, m) = variant.step(NUMPY_OPS, p, x, zeros)
    k, v = (x @ p["W_k"] + p["b_k"]) / np.sqrt(H), x @ p["W_v"] + p["b_v"]
    np.testing.assert_allclose(C.reshape(2, H, H), np.einsum("bi,bj->bij", k, v), rtol=1e-12)
    np.testing.assert_allclose(n, k, rtol=1e-12)
    np.testing.assert_allclose(m, x @ p["W_i"] + p["b_i"], rtol=1e-12)


def test_rg_lru_starts_with_a_to_the_c_in_griffins_range_and_skips_the_first_scale() -> None:
    variant = make("rg_lru")
    lam = variant.init_params(I, 512, rng=0)["lam"].astype(np.float64)
    a_c = sig(lam) ** 8
    assert np.all((a_c >= 0.9 - 1e-6) & (a_c <= 0.999 + 1e-6)) and np.ptp(a_c) > 0.09
    params = random_params(variant, I, H, seed=5)
    x = np.random.default_rng(6).normal(size=(2, 1, I))
    first = unroll_numpy(variant, params, x)[:, 0]
    xt = x[:, 0]
    gated = sig(xt @ params["W_x"] + params["b_x"]) * (xt @ params["W_u"] + params["b_u"])
    np.testing.assert_allclose(first, gated, rtol=1e-12)  # h_1 = i_1 ⊙ u_1, not scaled by sqrt(1 − a²)


@needs_torch
def test_rg_lru_gradients_stay_finite_where_its_gate_rounds_to_one() -> None:
    """σ(lam)^(c r) rounds to 1 for a large lam: the floor under sqrt(1 − a²) keeps every gradient finite
    (without it: inf, and NaN at the first step, where the root is multiplied by 0)."""
    from harness.backends import torch_backend

    variant = make("rg_lru")
    params = {k: v.astype(np.float32) for k, v in random_params(variant, I, H, seed=9).items()}
    params["lam"][:] = 20.0
    rng = np.random.default_rng(10)
    x, upstream = rng.normal(size=(2, 6, I)).astype(np.float32), rng.normal(size=(2, 6, H)).astype(np.float32)
    for scan in (False, True):
        _, grads, input_grad = torch_backend.cell_gradients(variant, params, x, upstream, scan=scan)
        assert all(np.all(np.isfinite(g)) for g in [*grads.values(), input_grad]), scan
