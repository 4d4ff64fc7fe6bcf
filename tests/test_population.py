"""Population training in PyTorch: every member's result is the one its solo run gives."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.backends import torch_backend  # noqa: E402
from harness.backends.torch_population import Population  # noqa: E402
from harness.cell.batchable import batchability  # noqa: E402
from harness.cell.model import init_model_params  # noqa: E402
from harness.errors import UsageError  # noqa: E402
from harness.plugins.registry import registry  # noqa: E402
from harness.training.grouping import population_groups  # noqa: E402
from harness.training.population import train_population  # noqa: E402
from harness.training.solo import train  # noqa: E402
from harness.trials.protocol import Settings  # noqa: E402
from harness.variant import Variant  # noqa: E402
from tests.population_cases import RTOL, SMALL, EasyAdding, assert_same_result, make_trial  # noqa: E402

torch_backend.setup("cpu")


def solo(trial):
    reg = registry()
    task, cls = reg.task(trial.task), reg.variant_class(trial.variant)
    variant = cls(**{k: v for k, v in trial.hparams.items() if k in cls.hyperparameters})
    return train(trial, task, variant, lambda p: torch_backend.build_model(variant, task, trial.settings, p))


VARIANTS = sorted(registry().variants)


@pytest.mark.parametrize("variant_id", VARIANTS)
def test_every_variant_trains_in_a_population_as_it_would_alone(variant_id):
    """Three members with their own seed, learning rate, hidden size (padded where the variant allows
    it), forget bias, clipping, evaluation schedule and budget: each equals its solo run."""
    cls = registry().variant_class(variant_id)
    pads = batchability(cls()).pads
    sizes = [3, 5, 4] if pads else [4, 4, 4]
    extra = [{"forget_bias": b} for b in (1.0, "chrono", 3.0)] if "forget_bias" in cls.hyperparameters else [{}] * 3
    task = "adding" if variant_id in ("v", "np", "gru", "clockwork", "min_gru", "mut1") else "delayed_recall"
    trials = [
        make_trial(variant_id, seed=0, task=task, hidden_size=sizes[0], learning_rate=0.01, max_steps=8,
                   eval_every=1, **extra[0], **SMALL),
        make_trial(variant_id, seed=1, task=task, hidden_size=sizes[1], learning_rate=0.05, max_steps=5,
                   eval_every=2, clip_norm=0.1, **extra[1], **SMALL),
        make_trial(variant_id, seed=2, task=task, hidden_size=sizes[2], learning_rate=0.002, max_steps=8,
                   eval_every=3, clip_norm=0.0, **extra[2], **SMALL),
    ]  # fmt: skip
    assert [len(g) for g in population_groups(trials, 16)] == [3]
    results = train_population(trials, "torch", scan="off")  # the loop, as solo runs it (scans: test_scans.py)
    for member, trial in zip(results, trials):
        assert member.population == 3 and member.path == "generic" and member.steps_per_second > 0
        assert_same_result(member, solo(trial))


@pytest.mark.parametrize("task, T", [("continual_reber", 2), ("continual_adding", 3), ("associative_recall", 2)])
def test_masked_losses_train_in_a_population_as_alone(task, T):
    """Members' batches differ in length (Reber streams): padded to the longest, each loss is unchanged;
    members of other hidden sizes, learning rates and schedules, as above."""
    trials = [
        make_trial("v", seed=0, task=task, T=T, hidden_size=3, learning_rate=0.01, max_steps=6, eval_every=1,
                   **SMALL),
        make_trial("v", seed=1, task=task, T=T, hidden_size=5, learning_rate=0.05, max_steps=4, eval_every=2,
                   clip_norm=0.1, **SMALL),
    ]  # fmt: skip
    if task == "continual_reber":  # the case padding is for: the members' first batches differ in length
        firsts = [next(registry().task(task).training_stream(T, 4, t.seed)).inputs.shape[1] for t in trials]
        assert len(set(firsts)) == 2
    for member, trial in zip(train_population(trials, "torch"), trials):
        assert_same_result(member, solo(trial))


@pytest.mark.parametrize("leave_at", [0.0, 1.0])  # finished members leave the model at once, or stay in it
def test_members_that_solve_stop_at_once_and_the_others_go_on(monkeypatch, leave_at):
    monkeypatch.setitem(registry().tasks, "adding", EasyAdding)
    monkeypatch.setattr(Population, "leave_at", leave_at)
    trials = [make_trial("np", seed=1, hidden_size=4, learning_rate=lr, max_steps=16, eval_every=2, **SMALL)
              for lr in (0.003, 0.1, 0.03)]  # fmt: skip
    order = []
    results = train_population(trials, "torch", on_result=lambda t, r: order.append((trials.index(t), r.steps)))
    alone = [solo(t) for t in trials]
    for member, a in zip(results, alone):
        assert_same_result(member, a)
    assert [r.steps_to_solve for r in results] == [None, 4, 8]
    assert order == [(1, 4), (2, 8), (0, 16)]  # each reported the moment it finished


def test_a_diverging_member_is_diverged_and_its_group_is_not():
    common = dict(optimizer="sgd", hidden_size=4, max_steps=12, eval_every=3, **SMALL)
    trials = [make_trial("noaf", seed=0, learning_rate=0.01, **common),
              make_trial("noaf", seed=1, learning_rate=1e6, clip_norm=0.0, **common),
              make_trial("noaf", seed=2, learning_rate=0.02, **common)]  # fmt: skip
    results = train_population(trials, "torch")
    assert [r.status for r in results] == ["ok", "diverged", "ok"]
    assert "step" in results[1].error and results[1].steps < 12
    for member, trial in zip(results, trials):
        assert_same_result(member, solo(trial))


class SigmoidRNN(Variant):
    """h_t = σ(x W + h R + b): a padded unit's h is σ(0) = 1/2, not 0, so padding stays exact only
    because the gradient of padding is masked (else R's padded rows would learn from it)."""

    id = "sigmoid_rnn"

    def parameter_shapes(self, input_size, hidden_size):
        return {"W": (input_size, hidden_size), "R": (hidden_size, hidden_size), "b": (hidden_size,)}

    def step(self, ops, p, x, state):
        (h,) = state
        h = ops.sigmoid(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"]) + p["b"])
        return h, (h,)


def test_padding_stays_zero_and_a_padded_member_trains_as_alone():
    """The proof behind padding: padded entries start at zero and their gradient is masked, so Adam
    moves them by exactly zero, and a padded member's own entries train as they do unpadded."""
    reg = registry()
    task, variant = reg.task("adding"), SigmoidRNN()
    assert batchability(variant).pads
    hps = [Settings(hidden_size=h, learning_rate=0.05) for h in (2, 5)]
    params = [init_model_params(variant, task, hp.hidden_size, seed, lag=4) for seed, hp in enumerate(hps)]
    together, alone = Population(variant, task, hps, params), Population(variant, task, hps[:1], params[:1])
    rng = np.random.default_rng(0)
    for _ in range(5):
        batches = [task.generate(4, 3, rng) for _ in hps]
        losses = together.train_step(np.stack([b.inputs for b in batches]), np.stack([b.targets for b in batches]))
        loss = alone.train_step(batches[0].inputs[None], batches[0].targets[None])
        np.testing.assert_allclose(losses[0], loss[0], rtol=RTOL)
    padded = {k: v.detach()[0] for k, v in together.params.items()}
    assert float(padded["R"][2:, :].abs().sum()) == 0 and float(padded["R"][:, 2:].abs().sum()) == 0
    assert float(padded["b"][:, 2:].abs().sum()) == 0 and float(padded["readout.W"][2:].abs().sum()) == 0
    for name, value in alone.get_params(0).items():
        np.testing.assert_allclose(together.get_params(0)[name], value, rtol=RTOL, atol=1e-7)
    assert not np.array_equal(together.get_params(0)["R"], params[0]["R"])  # it did train


def test_groups_share_everything_but_the_members_own_settings():
    base = dict(hidden_size=8, learning_rate=0.01, **SMALL)
    trials = [
        make_trial("v", seed=0, **base),
        make_trial("v", seed=1, **{**base, "hidden_size": 4, "learning_rate": 0.1, "forget_bias": 3.0}),
        make_trial("v", seed=2, **{**base, "batch_size": 8}),  # another batch: another group
        make_trial("v", seed=3, framework="tf", **base),
        make_trial("gru", seed=0, **base),
        make_trial("v", seed=4, T=5, **base),
        make_trial("v", seed=5, **{**base, "optimizer": "sgd"}),
    ]
    groups = population_groups(trials, 16)
    assert [[trials.index(t) for t in g] for g in groups] == [[1, 0], [2], [3], [4], [5], [6]]
    assert population_groups(trials, 1) == [[t] for t in trials]
    many = [make_trial("np", seed=s, **base) for s in range(5)]
    assert [len(g) for g in population_groups(many, 2)] == [2, 2, 1]
    assert [len(g) for g in population_groups(many, 16, fused_solo={"np"})] == [1] * 5  # fused np alone
    generic = [make_trial("np", seed=s, fused=False, **base) for s in range(3)]
    assert [len(g) for g in population_groups(generic, 16, fused_solo={"np"})] == [3]
    with pytest.raises(UsageError, match="population size 0"):
        population_groups(trials, 0)


def test_clockwork_populations_share_one_hidden_size():
    """Clockwork's periods and mask depend on H: padding would change them, so it is not padding-exact."""
    assert batchability(registry().variant("clockwork")).pads is False
    trials = [make_trial("clockwork", seed=s, hidden_size=h, **SMALL) for s, h in enumerate((4, 8, 4))]
    assert [[trials.index(t) for t in g] for g in population_groups(trials, 16)] == [[0, 2], [1]]


class FirstAxisSize(Variant):
    """Reads H from the first axis of a vector: fine alone, wrong on stacked (M, 1, H) parameters."""

    id = "first_axis_size"

    def parameter_shapes(self, input_size, hidden_size):
        return {"W": (input_size, hidden_size), "b": (hidden_size,)}

    def step(self, ops, p, x, state):
        (h,) = state
        scale = ops.constant(np.full(p["b"].shape[0], 0.5), like=h)
        h = ops.tanh(ops.matmul(x, p["W"]) + p["b"] + scale * h)
        return h, (h,)


class UnitMixing(Variant):
    """Batchable, but mixes units through a split along the unit axis: padding would move them."""

    id = "unit_mixing"

    def parameter_shapes(self, input_size, hidden_size):
        return {"W": (input_size, 2 * hidden_size), "b": (hidden_size,)}

    def step(self, ops, p, x, state):
        (h,) = state
        a, b = ops.split(ops.matmul(x, p["W"]), 2)
        h = ops.tanh(a * b + p["b"] + h)
        return h, (h,)


def test_batchability_finds_steps_that_break_the_rules():
    broken = batchability(FirstAxisSize())
    assert not broken.batchable and "rule 1" in broken.reason
    mixing = batchability(UnitMixing())
    assert mixing.batchable and not mixing.pads and "rule 2" in mixing.reason
    assert all(batchability(registry().variant(v)).batchable for v in VARIANTS)


def test_a_population_of_one_is_the_solo_path():
    trial = make_trial("np", hidden_size=4, max_steps=6, eval_every=3, **SMALL)
    (result,) = train_population([trial], "torch")
    alone = solo(trial)
    assert result.path == alone.path == "fused" and result.population == 1
    np.testing.assert_equal(result.curve, alone.curve)  # NaN-aware: train entries carry no metric
    assert result.test_best == alone.test_best


def test_time_limit_stops_members_as_timeout():
    trials = [make_trial("rnn", seed=s, hidden_size=4, max_steps=50, **SMALL) for s in range(2)]
    results = train_population(trials, "torch", time_limit=0.0)
    assert [r.status for r in results] == ["timeout", "timeout"]
    assert all("time limit" in r.error and r.population == 2 for r in results)


def test_an_engine_error_fails_every_unfinished_member(monkeypatch):
    def broken(self, inputs, targets):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(Population, "train_step", broken)
    trials = [make_trial("rnn", seed=s, hidden_size=4, max_steps=5, **SMALL) for s in range(2)]
    results = train_population(trials, "torch")
    assert [r.status for r in results] == ["failed", "failed"] and "engine exploded" in results[0].error
    assert [r.population for r in results] == [2, 2]


def test_an_error_of_the_result_callback_reaches_the_caller():
    """A store that cannot write (a full disk) is the caller's failure, not the trials'."""

    calls = []

    def full_disk(trial, result):
        calls.append(result.status)
        raise OSError(28, "No space left on device")

    trials = [make_trial("rnn", seed=s, hidden_size=4, max_steps=3, **SMALL) for s in range(2)]
    with pytest.raises(OSError, match="No space left"):
        train_population(trials, "torch", on_result=full_disk)
    assert calls == ["ok"]  # not retried, and no trial was made "failed" by it
    with pytest.raises(OSError, match="No space left"):
        train_population(trials[:1], "torch", on_result=full_disk)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_is_refused_cleanly_without_a_gpu():
    reg = registry()
    task, variant = reg.task("adding"), reg.variant("rnn")
    hp = Settings(hidden_size=3)
    with pytest.raises(UsageError, match="no GPU"):
        Population(variant, task, [hp], [init_model_params(variant, task, 3, 0, lag=4)], device="cuda")


def test_one_unit_members_keep_their_matrices_apart_from_vectors():
    """A (1, 1) recurrent matrix has the stacked shape of a vector, (M, 1, 1): it must stay a matrix."""
    trials = [make_trial("rnn", seed=s, hidden_size=h, max_steps=3, fused=False, **SMALL) for s, h in enumerate((1, 1))]
    for member, trial in zip(train_population(trials, "torch"), trials):
        assert_same_result(member, solo(trial))


def _fusing_ops(steps=3, members=2, batch=4, size=3, hidden=5):
    """FusingOps on random inputs (M, B, L, I) with LSTM-like gates z, i: W, R, b (b expanded as the
    engine expands vectors)."""
    from harness.backends.torch_population import FusingOps

    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand(members, batch, steps, size, generator=gen)
    params = {f"{k}_{g}": torch.randn(members, rows, hidden, generator=gen)
              for g in "zi" for k, rows in (("W", size), ("R", hidden), ("b", 1))}  # fmt: skip
    layer = {k: v.expand(members, batch, -1) if k.startswith("b_") else v for k, v in params.items()}
    ops = FusingOps(inputs, params, {id(layer[k]): params[k] for k in layer if k.startswith("b_")})
    return ops, layer


def test_gates_are_fused_from_the_second_step_on_and_equal_the_plain_sums():
    """x_t W + h R + b of both gates is one product from t = 1 on (and a reordered sum too); the value is
    the plain sum's up to float32 rounding."""
    ops, p = _fusing_ops()
    h = torch.zeros(2, 4, 5)
    for t in range(3):
        x = ops._at(t)
        z = ops.matmul(x, p["W_z"]) + ops.matmul(h, p["R_z"]) + p["b_z"]
        i = p["b_i"] + (ops.matmul(h, p["R_i"]) + ops.matmul(x, p["W_i"]))  # the tensor on the left
        for gate, value in (("z", z), ("i", i)):
            plain = x @ p[f"W_{gate}"] + h @ p[f"R_{gate}"] + p[f"b_{gate}"]
            torch.testing.assert_close(ops.tanh(value), torch.tanh(plain), rtol=1e-6, atol=1e-6)
        if t > 0:
            assert len(ops._fused) == 2 and ops._plans[id(p["R_z"])] is ops._plans[id(p["R_i"])]
        h = ops.tanh(z) * ops.sigmoid(i)


def test_a_pending_sum_is_its_value_for_every_other_use():
    """Operators, torch functions, ops and attributes see the computed sum; a sum that is not a gate
    (here x W + b) is computed term by term in the step's order, bit for bit."""
    ops, p = _fusing_ops()
    x = ops._at(0)
    s = ops.matmul(x, p["W_z"]) + p["b_z"]
    value = torch.matmul(x, p["W_z"]) + p["b_z"]
    assert s.shape == value.shape and s.dtype == value.dtype
    pairs = [
        (1.0 - s, 1.0 - value), (s * 2.0, value * 2.0), (value * s, value * value), (-s, -value), (s[0], value[0]),
        (torch.tanh(s), torch.tanh(value)), (ops.where(s > 0, s, 0.0), torch.where(value > 0, value, 0.0)),
        (ops.concat([s, s]), torch.cat([value, value], dim=-1)),
    ]  # fmt: skip
    for got, want in pairs:
        assert torch.equal(got, want)


def test_a_gate_with_other_terms_than_at_the_first_step_is_the_plain_sum():
    """R_z met W_z and b_z at t = 0; x W_i + h R_z + b_z at t = 1 is not that gate: it is computed in the
    step's order, bit for bit."""
    ops, p = _fusing_ops()
    h = torch.rand(2, 4, 5)
    for t in range(2):
        x = ops._at(t)
        w = p["W_z"] if t == 0 else p["W_i"]
        got = (ops.matmul(x, w) + ops.matmul(h, p["R_z"]) + p["b_z"]).value()
        assert torch.equal(got, torch.matmul(x, w) + torch.matmul(h, p["R_z"]) + p["b_z"])
    assert ops._plans and not ops._fused
