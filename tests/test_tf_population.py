"""Population training in TensorFlow: every member's result is the one its solo TensorFlow run gives."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("TensorFlow (and Keras 3) is not installed: pip install -e '.[tf]'", allow_module_level=True)

from harness.backends import tf_backend  # noqa: E402
from harness.plugins.registry import registry  # noqa: E402
from harness.training.grouping import population_groups  # noqa: E402
from harness.training.population import train_population  # noqa: E402
from harness.training.solo import train  # noqa: E402
from tests.population_cases import SMALL, EasyAdding, assert_same_result, make_trial  # noqa: E402

tf_backend.setup("cpu")
pytestmark = pytest.mark.tf


def solo(trial):
    reg = registry()
    task, cls = reg.task(trial.task), reg.variant_class(trial.variant)
    variant = cls(**{k: v for k, v in trial.hparams.items() if k in cls.hyperparameters})
    return train(trial, task, variant, lambda p: tf_backend.build_model(variant, task, trial.settings, p))


def check_variant(variant_id, task="adding"):
    """Two members of their own seed, learning rate, hidden size (where padding is exact), forget bias,
    clipping, schedule and budget, against their solo TensorFlow runs."""
    from harness.cell.batchable import batchability

    cls = registry().variant_class(variant_id)
    sizes = (3, 5) if batchability(cls()).pads else (4, 4)
    bias = [{"forget_bias": b} for b in (1.0, "chrono")] if "forget_bias" in cls.hyperparameters else [{}, {}]
    trials = [
        make_trial(variant_id, seed=0, task=task, framework="tf", hidden_size=sizes[0], learning_rate=0.01,
                   max_steps=6, eval_every=1, **bias[0], **SMALL),
        make_trial(variant_id, seed=1, task=task, framework="tf", hidden_size=sizes[1], learning_rate=0.05,
                   max_steps=4, eval_every=2, clip_norm=0.1, **bias[1], **SMALL),
    ]  # fmt: skip
    assert [len(g) for g in population_groups(trials, 16)] == [2]
    for member, trial in zip(train_population(trials, "tf", scan="off"), trials):  # the loop, as solo runs it
        assert member.population == 2 and member.path == "generic"
        assert_same_result(member, solo(trial))


def test_a_padded_population_trains_as_its_members_alone():
    check_variant("v")


@pytest.mark.parametrize("task, T", [("continual_reber", 1), ("continual_adding", 2), ("associative_recall", 2)])
def test_masked_losses_train_in_a_population_as_alone(task, T):
    """Members' batches differ in length (Reber streams): padded to the longest, each loss is unchanged.
    One budget for both members, so that the step is traced for one member count only (seconds each)."""
    trials = [make_trial("v", seed=s, task=task, T=T, framework="tf", hidden_size=h, learning_rate=lr, max_steps=4,
                         eval_every=2, **SMALL) for s, h, lr in ((0, 3, 0.01), (1, 5, 0.05))]  # fmt: skip
    for member, trial in zip(train_population(trials, "tf"), trials):
        assert_same_result(member, solo(trial))


@pytest.mark.slow
@pytest.mark.parametrize("variant_id", sorted(registry().variants))
def test_every_variant_trains_in_a_population_as_it_would_alone(variant_id):
    check_variant(variant_id, "adding" if variant_id in ("v", "np", "gru", "clockwork", "mut1") else "delayed_recall")


def test_solved_and_diverged_members_leave_and_the_others_are_unchanged(monkeypatch):
    monkeypatch.setitem(registry().tasks, "adding", EasyAdding)
    common = dict(framework="tf", optimizer="sgd", hidden_size=4, max_steps=10, eval_every=2, **SMALL)
    trials = [make_trial("noaf", seed=1, learning_rate=0.05, **common),
              make_trial("noaf", seed=0, learning_rate=1e6, clip_norm=0.0, **common),
              make_trial("noaf", seed=2, learning_rate=0.005, **common)]  # fmt: skip
    results = train_population(trials, "tf")
    assert [r.status for r in results] == ["ok", "diverged", "ok"]
    assert results[0].steps_to_solve is not None and results[0].steps < 10 and results[2].steps == 10
    for member, trial in zip(results, trials):
        assert_same_result(member, solo(trial))


def test_cuda_is_refused_cleanly_without_a_visible_gpu():
    from harness.backends.tf_population import Population
    from harness.cell.model import init_model_params
    from harness.errors import UsageError
    from harness.trials.protocol import Settings

    reg = registry()
    task, variant = reg.task("adding"), reg.variant("rnn")
    with pytest.raises(UsageError, match="no GPU"):
        Population(variant, task, [Settings(hidden_size=3)], [init_model_params(variant, task, 3, 0, lag=4)],
                   device="cuda")  # fmt: skip


@pytest.mark.parametrize("leave_at", [0.0, 1.0])  # finished members leave the model at once, or stay in it
def test_members_that_solve_stop_at_once_and_the_others_go_on(monkeypatch, leave_at):
    from harness.backends.tf_population import Population

    monkeypatch.setitem(registry().tasks, "adding", EasyAdding)
    monkeypatch.setattr(Population, "leave_at", leave_at)
    trials = [make_trial("np", seed=1, framework="tf", hidden_size=h, learning_rate=lr, max_steps=16, eval_every=2,
                         **SMALL) for h, lr in ((4, 0.003), (3, 0.1), (4, 0.03))]  # fmt: skip
    results = train_population(trials, "tf")
    for member, trial in zip(results, trials):
        assert_same_result(member, solo(trial))
    assert results[1].steps_to_solve is not None and results[1].steps < results[0].steps


def make_population(sizes=(3, 5, 4), lrs=(0.01, 0.05, 0.002), clips=(1.0, 0.1, 0.0), length=4):
    from harness.backends.tf_population import Population
    from harness.cell.model import init_model_params
    from harness.trials.protocol import Settings

    reg = registry()
    task, variant = reg.task("adding"), reg.variant("v")
    hparams = [Settings(hidden_size=h, learning_rate=lr, clip_norm=c) for h, lr, c in zip(sizes, lrs, clips)]
    params = [init_model_params(variant, task, h, seed, lag=length) for seed, h in enumerate(sizes)]
    return Population(variant, task, hparams, params), task


def test_keep_shrinks_every_member_variable_in_place_and_keeps_the_predictor_traced():
    model, task = make_population()
    batch = task.training_stream(4, 2, 0)
    for _ in range(2):
        b = next(batch)
        model.train_step(np.stack([b.inputs] * 3), np.stack([b.targets] * 3))
    inputs = task.fixed_set("validation", 4, 8).inputs
    before = model.predict([2, 0], inputs)
    params = {slot: model.get_params(slot) for slot in (0, 2)}
    state = {k: v.numpy() for k, v in model.slots["m"].items()}
    variables = dict(model.params)
    predictor = model._predictors[tuple(inputs.shape[1:])]
    traces = predictor.experimental_get_tracing_count()

    model.keep([2, 0])
    assert all(model.params[k] is v for k, v in variables.items())  # the same variables, fewer rows
    assert model.lr_t.numpy().tolist() == [0.002, 0.01] and model.clip_t.numpy().tolist() == [0.0, 1.0]
    for k, v in model.slots["m"].items():
        np.testing.assert_array_equal(v.numpy(), state[k][[2, 0]])
    for new, old in ((0, 2), (1, 0)):
        assert set(model.get_params(new)) == set(params[old])
        for k, value in params[old].items():
            np.testing.assert_array_equal(model.get_params(new)[k], value)
    np.testing.assert_array_equal(model.predict([0, 1], inputs), before)
    assert predictor.experimental_get_tracing_count() == traces
    b = next(batch)
    assert model.train_step(np.stack([b.inputs] * 2), np.stack([b.targets] * 2)).shape == (2,)
    assert model._train.experimental_get_tracing_count() == 2  # one trace per member count


def test_members_leave_once_the_steps_left_repay_a_new_member_count():
    model, task = make_population()  # max_steps 1000 (the default) for all three
    assert model.leave_at == 1.0  # nothing measured: stay
    batch = next(task.training_stream(4, 2, 0))
    for _ in range(2):
        model.train_step(np.stack([batch.inputs] * 3), np.stack([batch.targets] * 3))
    assert model.traced == {3} and model.new_count_seconds > 0 and model.step_seconds > 0
    model.new_count_seconds, model.step_seconds = 3.0, 0.03  # a trace costs 100 steps
    assert model.leave_at == pytest.approx(2 * 100 / 998)  # each step saves half a member's share
    model.steps_done = 900
    assert model.leave_at > 1  # too few steps left: never leave
    model.keep([1])
    model.max_steps[:] = 900
    assert model.leave_at == 1.0  # no step left
