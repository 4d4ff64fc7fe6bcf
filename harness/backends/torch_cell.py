"""A variant's recurrent layer in PyTorch: the generic path (its ``step`` under autograd) and the
fused library kernels (``torch.nn.LSTM`` / ``GRU`` / ``RNN``) for the variants that are exactly them.

Both take the contract's parameter dict as tensors, so gradients are always with respect to the
contract's parameters. The fused path packs them into the kernel's layout on every call (a few
concatenations, negligible next to the recurrence): the packing is differentiable, so one optimizer
state per contract parameter serves both paths and they train identically.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.backends.torch_ops import TORCH_OPS
from harness.cell.unroll import unroll
from harness.scan import LINEAR_FORMS
from harness.variant import Variant


def unroll_torch(
    variant: Variant, params: dict[str, torch.Tensor], inputs: torch.Tensor, hidden_size: int
) -> torch.Tensor:
    """Generic path: (B, L, I) -> (B, L, H) by calling ``variant.step`` at each time step."""
    return unroll(
        variant, TORCH_OPS, params, inputs, hidden_size,
        stack=lambda xs, axis: torch.stack(xs, dim=axis),
        zeros=lambda b, n, like: torch.zeros(b, n, dtype=like.dtype, device=like.device),
    )  # fmt: skip


def _t(m: torch.Tensor) -> torch.Tensor:
    """Contract matrices are (in, out); torch kernels store (out, in)."""
    return m.transpose(0, 1)


def pack_lstm(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``np`` -> ``torch.nn.LSTM`` (gate order i, f, g, o; our z is torch's g; one bias, the other 0)."""
    order = ("i", "f", "z", "o")
    return {
        "weight_ih_l0": _t(torch.cat([p[f"W_{g}"] for g in order], dim=1)),
        "weight_hh_l0": _t(torch.cat([p[f"R_{g}"] for g in order], dim=1)),
        "bias_ih_l0": torch.cat([p[f"b_{g}"] for g in order]),
        "bias_hh_l0": torch.zeros(4 * p["b_z"].shape[0], dtype=p["b_z"].dtype, device=p["b_z"].device),
    }


def pack_gru(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``gru_ra`` -> ``torch.nn.GRU`` (gate order r, z, n).

    torch computes h_t = (1 - z') ⊙ n + z' ⊙ h_{t-1}, we h_t = (1 - z) ⊙ h_{t-1} + z ⊙ ĥ, so z' = 1 - z,
    which σ(-a) = 1 - σ(a) gives by negating z's weights and bias. torch's b_hn is our b_rh.
    """
    zero = torch.zeros_like(p["b_r"])
    return {
        "weight_ih_l0": _t(torch.cat([p["W_r"], -p["W_z"], p["W_h"]], dim=1)),
        "weight_hh_l0": _t(torch.cat([p["R_r"], -p["R_z"], p["R_h"]], dim=1)),
        "bias_ih_l0": torch.cat([p["b_r"], -p["b_z"], p["b_h"]]),
        "bias_hh_l0": torch.cat([zero, zero, p["b_rh"]]),
    }


def pack_rnn(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``rnn`` -> ``torch.nn.RNN`` (tanh)."""
    return {
        "weight_ih_l0": _t(p["W"]), "weight_hh_l0": _t(p["R"]),
        "bias_ih_l0": p["b"], "bias_hh_l0": torch.zeros_like(p["b"]),
    }  # fmt: skip


KERNELS = {"lstm": (torch.nn.LSTM, pack_lstm), "gru": (torch.nn.GRU, pack_gru), "rnn": (torch.nn.RNN, pack_rnn)}


class FusedKernel:
    """A ``torch.nn`` recurrent module used as a pure function of the contract parameters."""

    def __init__(self, kernel: str, input_size: int, hidden_size: int, device: Any, dtype: torch.dtype) -> None:
        module_cls, self.pack = KERNELS[kernel]
        self.module = module_cls(input_size, hidden_size, batch_first=True).to(device=device, dtype=dtype)
        self.module.requires_grad_(False)

    def __call__(self, params: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        outputs, _ = torch.func.functional_call(self.module, self.pack(params), (inputs,))
        return outputs


def run_layer(
    variant: Variant, params: dict[str, torch.Tensor], inputs: torch.Tensor, hidden_size: int, fused: bool,
    kernel_cache: dict | None = None, scan: bool = False,
) -> torch.Tensor:  # fmt: skip
    """(B, L, I) -> (B, L, H), fused when asked for and the variant has a kernel, else its linear form
    (``harness.scan``) when ``scan`` and it has one, else generic."""
    if scan and not (fused and variant.fused_kernel in KERNELS) and variant.id in LINEAR_FORMS:
        return LINEAR_FORMS[variant.id](variant, TORCH_OPS, params, inputs)
    if fused and variant.fused_kernel in KERNELS:
        cache = {} if kernel_cache is None else kernel_cache
        key = (variant.fused_kernel, inputs.shape[-1], hidden_size, inputs.device, inputs.dtype)
        if key not in cache:
            cache[key] = FusedKernel(
                variant.fused_kernel, int(inputs.shape[-1]), hidden_size, inputs.device, inputs.dtype
            )
        return cache[key](params, inputs)
    return unroll_torch(variant, params, inputs, hidden_size)
