"""The distance to the machine's limit (harness.diagnostics.roofline): the FLOP count of a training step
against a hand count, and the matrix-product timings behind the roofline columns of ``rnn-bench speed``."""

from __future__ import annotations

import importlib.util

import pytest

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs PyTorch")


def tanh_rnn_step_flops(T: int, B: int, I: int, H: int, O: int) -> int:
    """The products of one training step of the tanh RNN, h_t = tanh(W x_t + U h_{t-1} + b), read out at every
    step, y_t = V h_t: forward 2BIH + 2BH² + 2BHO per step; backward the weights' gradients of all three and
    the inputs' gradients of U and V (x needs none), so 2BIH + 4BH² + 4BHO; less the gradient through
    h_0 = 0, which nothing needs (2BH²)."""
    return T * (4 * B * I * H + 6 * B * H * H + 6 * B * H * O) - 2 * B * H * H


@needs_torch
@pytest.mark.parametrize("T, B, H", [(3, 2, 4), (5, 2, 4), (3, 4, 4), (3, 2, 8)])
def test_the_count_of_a_tanh_rnn_step_is_its_hand_count(T, B, H):
    from harness.diagnostics.roofline import step_flops

    # adding: 2 inputs, 1 output; the solo generic path (the count never uses a fused kernel)
    assert step_flops("rnn", 0, T=T, batch=B, hidden=H) == tanh_rnn_step_flops(T, B, 2, H, 1)


@needs_torch
def test_a_population_count_is_per_trial():
    from harness.diagnostics.roofline import step_flops

    assert step_flops("gru", 2, T=3, batch=2, hidden=4) == step_flops("gru", 4, T=3, batch=2, hidden=4)


@needs_torch
def test_matmul_timing_gives_a_positive_rate_for_the_step_shape():
    from harness.diagnostics.roofline import matmul_gflops, step_shape

    assert step_shape(0, 32, 8) == (1, 32, 8, 32) and step_shape(16, 32, 8) == (16, 32, 8, 32)
    rate = matmul_gflops("torch", step_shape(2, 4, 4))
    assert 0 < rate < 1e4  # GFLOP/s: anything a CPU core can do
