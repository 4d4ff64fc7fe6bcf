"""The task catalogue (docs/tasks.md): shapes, exact layouts, seeding, split disjointness, baselines, metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.task import Task
from tasks.adding import Adding
from tasks.adding_hs97 import AddingHS97
from tasks.associative_recall import AssociativeRecall
from tasks.continual_adding import ContinualAdding
from tasks.continual_reber import ContinualReber
from tasks.copy import Copy
from tasks.delayed_recall import DelayedRecall
from tasks.selective_copy import SelectiveCopy
from tasks.state_tracking import CycleNavigation, Parity
from tasks.temporal_order import TemporalOrder
from tasks.variable_copy import VariableCopy

ALL_TASKS: list[type[Task]] = [
    Adding, Copy, DelayedRecall, AddingHS97, TemporalOrder, VariableCopy, ContinualAdding, ContinualReber,
    Parity, CycleNavigation, AssociativeRecall, SelectiveCopy,
]  # fmt: skip
LENGTHS = {
    "adding": [2, 3, 10, 25], "copy": [1, 2, 7], "delayed_recall": [1, 2, 9],
    "adding_hs97": [4, 5, 20, 33], "temporal_order": [10, 11, 25], "variable_copy": [1, 2, 7],
    "continual_adding": [2, 3, 10], "continual_reber": [1, 2, 5],
    "parity": [1, 2, 17], "cycle_navigation": [1, 2, 17], "associative_recall": [1, 2, 9], "selective_copy": [8, 9, 30],
}  # fmt: skip
VARIABLE_LENGTH = {"continual_reber"}  # seq_len(T) is the expected length; each batch pads to its own
BIG = 20000  # sample size of the measured baselines


def within(measured: float, expected: float, std: float, n: int = BIG) -> bool:
    """``measured`` is within 5 standard errors of ``expected`` (a per-sample ``std``, ``n`` samples)."""
    return abs(measured - expected) <= 5 * std / math.sqrt(n)


def bernoulli_std(p: float) -> float:
    return math.sqrt(p * (1 - p))


def perfect_outputs(task: Task, targets: np.ndarray, length: int) -> np.ndarray:
    """The readout of a perfect model: the target at the last step (MSE), a huge logit on the right class;
    under a mask the target at every step (MSE), a huge logit of the right sign on every output (BCE)."""
    outputs = np.zeros((len(targets), length, task.output_size), dtype=np.float32)
    if task.loss_at == "mask":
        values = targets[..., : task.output_size]
        outputs[:] = values if task.loss == "mse" else np.where(values > 0.5, 50.0, -50.0)
    elif task.loss == "mse":
        outputs[:, -1, 0] = targets
    elif task.loss_at == "last":
        outputs[np.arange(len(targets)), -1, targets] = 50.0
    else:
        outputs[:] = 50.0 * np.eye(task.output_size, dtype=np.float32)[targets]
    return outputs


def sequence_keys(inputs: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in inputs}


# --- registry --------------------------------------------------------------------------------------
def test_registry_discovers_the_core_tasks() -> None:
    assert {"adding", "copy", "delayed_recall"} <= set(registry().tasks)


def test_registry_discovers_the_optional_tasks() -> None:
    assert {"adding_hs97", "temporal_order", "variable_copy"} <= set(registry().tasks)


def test_registry_discovers_the_state_tracking_and_recall_tasks() -> None:
    assert {"parity", "cycle_navigation", "associative_recall", "selective_copy"} <= set(registry().tasks)


def test_registry_discovers_the_continual_tasks() -> None:
    assert {"continual_reber", "continual_adding"} <= set(registry().tasks)


# --- every task ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL_TASKS, ids=lambda c: c.id)
def test_shapes_and_dtypes(cls: type[Task]) -> None:
    task = cls()
    for T in LENGTHS[task.id]:
        batch = task.batch(T, 5, seed=0)
        L = batch.inputs.shape[1]
        assert L == task.seq_len(T) or task.id in VARIABLE_LENGTH
        assert batch.inputs.shape == (5, L, task.input_size) and batch.inputs.dtype == np.float32
        if task.loss_at == "mask":
            assert batch.targets.shape == (5, L, task.output_size + 1) and batch.targets.dtype == np.float32
            assert set(np.unique(batch.targets[..., -1])) == {0.0, 1.0}  # a mask: some steps read, some not
        elif task.loss == "mse":
            assert batch.targets.shape == (5,) and batch.targets.dtype == np.float32
        else:
            assert batch.targets.shape == ((5,) if task.loss_at == "last" else (5, L))
            assert batch.targets.dtype == np.int64
            assert batch.targets.min() >= 0 and batch.targets.max() < task.output_size


@pytest.mark.parametrize("cls", ALL_TASKS, ids=lambda c: c.id)
def test_same_seed_same_batch_other_seed_other_batch(cls: type[Task]) -> None:
    task = cls()
    T = LENGTHS[task.id][-1]
    a, b, c = task.batch(T, 16, seed=3), task.batch(T, 16, seed=3), task.batch(T, 16, seed=4)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("cls", ALL_TASKS, ids=lambda c: c.id)
def test_fixed_sets_are_stable_and_disjoint_from_training(cls: type[Task]) -> None:
    task = cls()
    T = 20  # long enough that two independent draws practically never coincide
    validation, test = task.fixed_set("validation", T, 128), task.fixed_set("test", T, 128)
    again = task.fixed_set("validation", T, 128)
    np.testing.assert_array_equal(validation.inputs, again.inputs)
    np.testing.assert_array_equal(validation.targets, again.targets)
    held_out = sequence_keys(validation.inputs) | sequence_keys(test.inputs)
    assert not sequence_keys(validation.inputs) & sequence_keys(test.inputs)
    for seed in range(5):
        stream = task.training_stream(T, 32, seed)
        for _ in range(3):
            assert not sequence_keys(next(stream).inputs) & held_out


@pytest.mark.parametrize("cls", ALL_TASKS, ids=lambda c: c.id)
def test_perfect_outputs_score_perfectly_and_solve(cls: type[Task]) -> None:
    task = cls()
    T = LENGTHS[task.id][-1]
    batch = task.batch(T, 64, seed=1)
    m = task.metrics(perfect_outputs(task, batch.targets, batch.inputs.shape[1]), batch.targets)
    assert m["loss"] == pytest.approx(0.0, abs=1e-9)
    assert m[task.metric] == (1.0 if task.higher_is_better else pytest.approx(0.0, abs=1e-12))
    assert task.solved(m)


@pytest.mark.parametrize("cls", ALL_TASKS, ids=lambda c: c.id)
def test_baseline_has_every_metric_and_is_not_solved(cls: type[Task]) -> None:
    task = cls()
    T = LENGTHS[task.id][-1]
    batch = task.batch(T, 4, seed=0)
    keys = set(task.metrics(perfect_outputs(task, batch.targets, batch.inputs.shape[1]), batch.targets))
    baseline = task.baseline(T)
    assert set(baseline) == keys and {"loss", task.metric} <= keys
    assert not task.solved(baseline)


@pytest.mark.parametrize("cls", ALL_TASKS, ids=lambda c: c.id)
def test_lengths_below_the_minimum_and_bad_batch_sizes_are_refused(cls: type[Task]) -> None:
    task = cls()
    for bad in (task.min_length - 1, 0, -3, 2.5, True, "10"):
        with pytest.raises(UsageError):
            task.batch(bad, 4, seed=0)
    with pytest.raises(UsageError):
        task.generate(task.min_length - 1, 4, np.random.default_rng(0))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UsageError):
            task.batch(task.min_length, bad, seed=0)
    assert len(task.batch(task.min_length, 1, seed=0)) == 1


# --- adding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [2, 3, 10, 25])
def test_adding_structure(T: int) -> None:
    batch = Adding().batch(T, 256, seed=0)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    assert values.min() >= 0.0 and values.max() < 1.0
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = T // 2
    assert (markers[:, :half].sum(axis=1) == 1).all() and (markers[:, half:].sum(axis=1) == 1).all()
    np.testing.assert_array_equal(batch.targets, (values * markers).sum(axis=1, dtype=np.float32))


def test_adding_markers_cover_each_half_uniformly() -> None:
    markers = Adding().batch(10, 5000, seed=2).inputs[..., 1]
    counts = markers.sum(axis=0)
    assert (counts > 0).all()  # every position of each half is used
    np.testing.assert_allclose(counts, 1000, atol=5 * math.sqrt(1000))


def test_adding_baseline_measured() -> None:
    task = Adding()
    batch = task.batch(10, BIG, seed=5)
    outputs = np.ones((BIG, 10, 1), dtype=np.float32)  # always predict 1
    m = task.metrics(outputs, batch.targets)
    std = math.sqrt(1 / 15 - 1 / 36)  # of (S - 1)^2, S - 1 triangular on [-1, 1]
    assert within(m["mse"], task.baseline(10)["mse"], std) and m["loss"] == m["mse"]
    assert task.baseline(10)["mse"] == pytest.approx(1 / 6)


# --- copy ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 7])
def test_copy_structure(T: int) -> None:
    batch = Copy().batch(T, 64, seed=0)
    inputs, targets = batch.inputs, batch.targets
    assert set(np.unique(inputs)) == {0.0, 1.0} and (inputs.sum(axis=-1) == 1).all()  # one-hot rows
    symbols = inputs.argmax(axis=-1)
    data = symbols[:, :10]
    assert data.max() <= 7
    assert (symbols[:, 10 : T + 9] == 8).all() and (symbols[:, T + 10 :] == 8).all()
    assert (symbols[:, T + 9] == 9).all() and (symbols == 9).sum() == 64  # delimiter at T + 9 only
    assert (targets[:, : T + 10] == 8).all()
    np.testing.assert_array_equal(targets[:, T + 10 :], data)


@pytest.mark.parametrize("cls", [Copy, VariableCopy], ids=lambda c: c.id)
def test_copy_memoryless_baseline_measured(cls: type[Copy]) -> None:
    task, T, n = cls(), 5, BIG // 10
    batch = task.batch(T, n, seed=6)
    recall = batch.targets != 8
    # blank with certainty off the recall steps, uniform over the 8 data symbols on them
    outputs = np.where(recall[..., None], np.r_[np.zeros(8), -1e4], np.r_[np.full(8, -1e4), 0.0])
    m, expected = task.metrics(outputs, batch.targets), task.baseline(T)
    assert m["loss"] == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)
    assert m["loss"] == pytest.approx(expected["loss"], rel=1e-12)
    assert within(m["recall_accuracy"], 1 / 8, bernoulli_std(1 / 8), 10 * n)  # argmax ties: symbol 0
    assert expected["recall_accuracy"] == 1 / 8
    assert expected["accuracy"] == pytest.approx((T + 10 + 10 / 8) / (T + 20))
    assert within(m["accuracy"], expected["accuracy"], bernoulli_std(1 / 8) * 10 / (T + 20), 10 * n)


def test_copy_metrics_split_recall_from_the_rest() -> None:
    task, T = Copy(), 3
    batch = task.batch(T, 8, seed=0)
    outputs = perfect_outputs(task, batch.targets, T + 20)
    outputs[:, -10:] = np.roll(outputs[:, -10:], 1, axis=-1)  # every recall step wrong, the rest right
    m = task.metrics(outputs, batch.targets)
    assert m["recall_accuracy"] == 0.0 and m["accuracy"] == pytest.approx((T + 10) / (T + 20))


# --- variable copy ---------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 7])
def test_variable_copy_structure(T: int) -> None:
    batch = VariableCopy().batch(T, 500, seed=0)
    inputs, targets = batch.inputs, batch.targets
    assert inputs.shape[1] == T + 20 and (inputs.sum(axis=-1) == 1).all()
    symbols = inputs.argmax(axis=-1)
    assert ((symbols == 9).sum(axis=1) == 1).all()
    delays = (symbols == 9).argmax(axis=1) - 9
    assert delays.min() == 1 and delays.max() == T  # both ends of [1, T] drawn in 500 sequences
    steps = np.arange(T + 20)
    for row in range(len(symbols)):
        d = delays[row]
        recall = (steps >= d + 10) & (steps < d + 20)
        np.testing.assert_array_equal(targets[row, recall], symbols[row, :10])
        assert (targets[row, ~recall] == 8).all() and (symbols[row, 10:][steps[10:] != d + 9] == 8).all()


def test_variable_copy_at_full_delay_is_copy() -> None:
    batch = VariableCopy().batch(1, 4, seed=0)  # T = 1: the only delay is 1
    copy = Copy().batch(1, 4, seed=0)
    np.testing.assert_array_equal(batch.inputs, copy.inputs)
    np.testing.assert_array_equal(batch.targets, copy.targets)


# --- delayed recall --------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 9])
def test_delayed_recall_structure(T: int) -> None:
    batch = DelayedRecall().batch(T, 128, seed=0)
    inputs = batch.inputs
    assert set(np.unique(inputs)) == {0.0, 1.0}
    symbols = inputs[..., :8]
    assert (symbols[:, : T + 1].sum(axis=-1) == 1).all() and (symbols[:, T + 1] == 0).all()
    assert (inputs[:, 0, 8] == 1).all() and inputs[:, 1:, 8].sum() == 0  # marker only at step 0
    assert (inputs[:, T + 1, 9] == 1).all() and inputs[:, : T + 1, 9].sum() == 0  # cue only at the end
    np.testing.assert_array_equal(batch.targets, symbols[:, 0].argmax(axis=-1))


def test_delayed_recall_uniform_baseline_measured() -> None:
    task = DelayedRecall()
    batch = task.batch(5, BIG, seed=7)
    m = task.metrics(np.zeros((BIG, 7, 8), dtype=np.float32), batch.targets)
    assert m["loss"] == pytest.approx(math.log(8), rel=1e-12) == task.baseline(5)["loss"]
    assert within(m["accuracy"], task.baseline(5)["accuracy"], bernoulli_std(1 / 8))


# --- adding, 1997 form -----------------------------------------------------------------------------
@pytest.mark.parametrize("T", [4, 5, 20, 33, 100])
def test_adding_hs97_structure(T: int) -> None:
    batch = AddingHS97().batch(T, 400, seed=0)
    values, markers = batch.inputs[..., 0], batch.inputs[..., 1]
    L = T + T // 10
    starts = (markers != 0).argmax(axis=1)  # the first pair is marked -1 (or 1): the padding ends there
    before = np.arange(L)[None, :] < starts[:, None]
    assert (values[before] == 0).all() and (markers[before] == 0).all()
    assert set(L - starts) == set(range(T, L + 1))  # every length in [T, T + T/10] is drawn
    assert values.min() >= -1 and values.max() < 1 and set(np.unique(markers)) <= {-1.0, 0.0, 1.0}
    assert (markers[:, -1] == -1).all() and ((markers == 1).sum(axis=1) == 2).all()
    rows = np.arange(len(values))
    first_marked = markers[rows, starts] == 1
    assert (markers[rows[~first_marked], starts[~first_marked]] == -1).all()
    assert (values[rows[first_marked], starts[first_marked]] == 0).all()
    assert ((markers == -1).sum(axis=1) == 2 - first_marked).all()
    position = np.arange(L)[None, :] - starts[:, None]
    marked = np.where(markers == 1, position, -1)
    assert (marked.max(axis=1) < T // 2).all() and (np.sort(marked, axis=1)[:, -2] >= 0).all()
    assert (np.where(markers == 1, position, L).min(axis=1) < 10).all()  # X1 among the first ten
    x_sum = (values * (markers == 1)).sum(axis=1, dtype=np.float32)
    np.testing.assert_allclose(batch.targets, 0.5 + x_sum / 4, rtol=0, atol=1e-6)


@pytest.mark.parametrize("T", [20, 100])
def test_adding_hs97_baseline_measured(T: int) -> None:
    task = AddingHS97()
    batch = task.batch(T, BIG, seed=8)
    m = task.metrics(np.full((BIG, task.seq_len(T), 1), 0.5, dtype=np.float32), batch.targets)
    expected = task.baseline(T)
    # the squared error (S/4)^2 has a standard deviation below 0.05
    assert within(m["mse"], expected["mse"], 0.05) and m["loss"] == m["mse"]
    assert within(m["success_rate"], expected["success_rate"], bernoulli_std(expected["success_rate"]))


def test_adding_hs97_baseline_formula() -> None:
    q = 1 / 10 + (9 / 10) / 49  # T = 100: P(X1 at the first pair) + P(X2 there)
    expected = AddingHS97().baseline(100)
    assert expected["mse"] == pytest.approx((2 - q) / 48) == expected["loss"]
    assert expected["success_rate"] == pytest.approx((1 - q) * (0.16 - 0.16**2 / 4) + q * 0.16)


def test_adding_hs97_success_counts_errors_below_0_04() -> None:
    task = AddingHS97()
    targets = np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
    outputs = np.zeros((4, 4, 1))
    outputs[:, -1, 0] = [0.5, 0.539, 0.461, 0.55]
    assert task.metrics(outputs, targets)["success_rate"] == 0.75


# --- temporal order --------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [10, 11, 25, 100])
def test_temporal_order_structure(T: int) -> None:
    batch = TemporalOrder().batch(T, 400, seed=0)
    inputs, L = batch.inputs, T + T // 10
    assert set(np.unique(inputs)) == {0.0, 1.0} and set(np.unique(inputs.sum(axis=-1))) <= {0.0, 1.0}
    present = inputs.sum(axis=-1) == 1
    starts = L - present.sum(axis=1)
    assert ((np.arange(L)[None, :] < starts[:, None]) == ~present).all()  # the padding is a prefix
    assert set(L - starts) == set(range(T, L + 1))
    symbols = np.where(present, inputs.argmax(axis=-1), -1)
    rows = np.arange(len(symbols))
    assert (symbols[rows, starts] == 6).all() and (symbols[:, -1] == 7).all()
    assert ((symbols == 6).sum(axis=1) == 1).all() and ((symbols == 7).sum(axis=1) == 1).all()
    relevant = (symbols == 4) | (symbols == 5)
    assert (relevant.sum(axis=1) == 2).all()
    position = np.where(relevant, np.arange(L)[None, :] - starts[:, None], -1)
    t1, t2 = np.sort(position, axis=1)[:, -2], position.max(axis=1)
    assert t1.min() >= T // 10 and t1.max() <= T // 5 and t2.min() >= T // 2 and t2.max() <= T // 2 + T // 10
    if T == 100:  # the paper's setting
        assert (t1.min(), t1.max(), t2.min(), t2.max()) == (10, 20, 50, 60)
    first, second = symbols[rows, starts + t1], symbols[rows, starts + t2]
    np.testing.assert_array_equal(batch.targets, 2 * (first == 5) + (second == 5))
    assert set(np.unique(batch.targets)) == {0, 1, 2, 3}


def test_temporal_order_uniform_baseline_measured() -> None:
    task = TemporalOrder()
    batch = task.batch(10, BIG, seed=9)
    m = task.metrics(np.zeros((BIG, 11, 4), dtype=np.float32), batch.targets)
    assert m["loss"] == pytest.approx(math.log(4), rel=1e-12) == task.baseline(10)["loss"]
    assert within(m["accuracy"], 1 / 4, bernoulli_std(1 / 4))


# --- the success rules, from docs/tasks.md ------------------------------------------------------------------
#: (task, metric, threshold, higher is better): docs/tasks.md's "Solved" line of each task
SOLVED_RULES = [
    (Adding, "mse", 0.01, False),  # test MSE < 0.01
    (Copy, "recall_accuracy", 0.99, True),  # recall accuracy >= 0.99
    (VariableCopy, "recall_accuracy", 0.99, True),
    (DelayedRecall, "accuracy", 0.99, True),  # test accuracy >= 0.99
    (AddingHS97, "success_rate", 0.99, True),  # optional task: its docstring's rule
    (TemporalOrder, "accuracy", 0.99, True),
    (ContinualAdding, "mse", 0.01, False),  # test MSE over the episode ends < 0.01
    (Parity, "final_accuracy", 0.99, True),  # the state tracking and recall tasks: >= 0.99 each
    (CycleNavigation, "final_accuracy", 0.99, True),
    (AssociativeRecall, "query_accuracy", 0.99, True),
    (SelectiveCopy, "recall_accuracy", 0.99, True),
]  # continual_reber needs two metrics: tests/test_continual_tasks.py


@pytest.mark.parametrize("cls, metric, threshold, higher", SOLVED_RULES, ids=[c.id for c, *_ in SOLVED_RULES])
def test_solved_exactly_at_the_specified_threshold(cls: type[Task], metric: str, threshold: float, higher: bool):
    task = cls()
    assert (task.metric, task.higher_is_better) == (metric, higher)
    near = threshold * 1e-3  # just either side of the threshold: a moved threshold flips one of them
    inside, outside = (threshold + near, threshold - near) if higher else (threshold - near, threshold + near)
    assert task.solved({metric: inside, "loss": 0.0})
    assert not task.solved({metric: outside, "loss": 0.0})
    assert task.solved({metric: threshold, "loss": 0.0}) is higher  # >= for accuracies, < for MSE


@pytest.mark.parametrize("T", [3, 40])
def test_delayed_recall_distractors_are_uniform_over_all_eight_symbols(T: int) -> None:
    batch = DelayedRecall().batch(T, 4000, seed=3)
    distractors = batch.inputs[:, 1 : T + 1, :8].argmax(axis=-1).ravel()
    counts = np.bincount(distractors, minlength=8)
    n = len(distractors)
    assert len(counts) == 8 and (counts > 0).all(), counts
    # each symbol's share within 5 standard deviations of 1/8
    assert all(within(c / n, 1 / 8, bernoulli_std(1 / 8), n) for c in counts), counts / n
