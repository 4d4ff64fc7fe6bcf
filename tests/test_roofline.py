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


def test_the_rate_is_the_products_flops_over_the_time_per_product(monkeypatch):
    """A fake backend whose product takes 10 ms on a fake clock: 2·M·m·k·n per 10 ms, whatever the batching."""
    import harness.backends
    import harness.diagnostics.roofline as roofline

    now = [0.0]
    calls: list[int] = []

    class FakeBackend:
        @staticmethod
        def setup(device):
            pass

        @staticmethod
        def matmul(members, m, k, n, device="cpu"):
            def products(repeats):
                calls.append(repeats)
                now[0] += 0.01 * repeats

            return products

    monkeypatch.setattr(harness.backends, "load_backend", lambda framework: FakeBackend)
    monkeypatch.setattr(roofline, "clock_for", lambda device: lambda: now[0])
    rate = roofline.matmul_gflops("torch", (2, 10, 20, 30))
    assert rate == pytest.approx(2 * 2 * 10 * 20 * 30 / 0.01 / 1e9)
    # a warm-up, a batch of 1 (10 ms, too short to time), then batches of 4 products (40 ms)
    assert calls == [1, 1, 4] + [4] * roofline.BATCHES


def test_the_step_shape_is_the_lstm_recurrent_product_of_the_population():
    from harness.diagnostics.roofline import step_shape

    assert step_shape(0, 32, 8) == (1, 32, 8, 32) and step_shape(16, 32, 8) == (16, 32, 8, 32)


def test_a_fused_row_counts_its_generic_path_and_a_scan_row_its_scan():
    from harness.cli.speed import _flop_case

    row = {"variant": "rnn", "population": 1, "hidden_size": 4, "path": "fused"}
    assert _flop_case(row) == ("rnn", 0, 4, False)
    scan = {**row, "variant": "min_gru", "population": 2, "path": "population-scan"}
    assert _flop_case(scan) == ("min_gru", 2, 4, True)


@needs_torch
def test_matmul_timing_in_torch_gives_a_rate_a_core_can_reach():
    from harness.diagnostics.roofline import matmul_gflops

    assert 0 < matmul_gflops("torch", (2, 4, 4, 16)) < 1e4  # GFLOP/s
