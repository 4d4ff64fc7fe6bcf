"""The state tracking and recall tasks (docs/tasks.md: parity, cycle_navigation, associative_recall,
selective_copy): each batch decoded from its one-hot inputs by a reader of our own, its targets derived
again step by step from the definition, and its baseline measured."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import UsageError
from harness.losses import masked_cross_entropy
from tasks.associative_recall import AssociativeRecall
from tasks.selective_copy import SelectiveCopy
from tasks.state_tracking import CycleNavigation, Parity


def decode(inputs: np.ndarray) -> np.ndarray:
    """The symbol of every step of one-hot inputs (B, L, C), after checking that each step is one-hot."""
    assert set(np.unique(inputs)) <= {0.0, 1.0}
    assert (inputs.sum(axis=-1) == 1).all(), "a step without exactly one channel set"
    return inputs.argmax(axis=-1)


@pytest.mark.parametrize("T", [1, 2, 31])
def test_parity_targets_are_the_running_parity_of_the_decoded_bits(T):
    batch = Parity().batch(T, 64, seed=T)
    bits = decode(batch.inputs)
    for row, labels in zip(bits, batch.targets):
        count = 0
        for t, bit in enumerate(row):
            count += int(bit)  # channel 0 is the bit 0
            assert labels[t] == count % 2
    assert 0.4 < bits.mean() < 0.6  # each bit a fair coin


@pytest.mark.parametrize("T", [1, 2, 31])
def test_cycle_navigation_targets_walk_the_cycle_from_zero(T):
    batch = CycleNavigation().batch(T, 64, seed=T)
    actions = decode(batch.inputs)
    for row, labels in zip(actions, batch.targets):
        position = 0
        for t, action in enumerate(row):
            position = (position + {0: 0, 1: 1, 2: -1}[int(action)]) % 5  # stay, +1, −1
            assert labels[t] == position
    assert set(np.unique(actions)) == {0, 1, 2}


def test_cycle_navigations_baseline_is_the_most_likely_position_measured():
    task, T, n = CycleNavigation(), 20, 40000
    baseline = task.baseline(T)
    assert 0.2 <= baseline["final_accuracy"] < 0.21  # about 1/5 for T >= 20, as the definition says
    assert task.baseline(1)["final_accuracy"] == pytest.approx(1 / 3)
    finals = task.batch(T, n, seed=5).targets[:, -1]
    measured = np.bincount(finals, minlength=5) / n
    assert abs(measured.max() - baseline["final_accuracy"]) < 5 * math.sqrt(0.2 * 0.8 / n)
    # the loss of predicting each step's position distribution is its entropy, and no memoryless guess does better
    uniform_loss = math.log(5)
    assert baseline["loss"] < uniform_loss and baseline["step_accuracy"] > 0.2


@pytest.mark.parametrize("T", [1, 5])
@pytest.mark.parametrize("keys, pairs", [(16, 4), (4, 4), (8, 1)])
def test_associative_recall_answers_each_query_with_its_pairs_value(T, keys, pairs):
    task = AssociativeRecall(keys=keys, pairs=pairs)
    batch = task.batch(T, 32, seed=keys + pairs)
    symbols = decode(batch.inputs)
    assert symbols.shape[1] == task.seq_len(T) == 3 * pairs + T
    blank = 2 * keys
    for row, target in zip(symbols, batch.targets):
        pairs_seen = {}
        for p in range(pairs):
            key, value = int(row[2 * p]), int(row[2 * p + 1])
            assert 0 <= key < keys and keys <= value < 2 * keys and key not in pairs_seen  # distinct keys
            pairs_seen[key] = value - keys
        assert (row[2 * pairs : 2 * pairs + T] == blank).all()
        queries = row[2 * pairs + T :]
        assert sorted(int(q) for q in queries) == sorted(pairs_seen)  # every key asked once
        for t in range(len(row)):
            read = target[t, -1] == 1.0
            assert read == (t >= 2 * pairs + T)
            if read:
                assert target[t, :keys].argmax() == pairs_seen[int(row[t])] and target[t, :keys].sum() == 1
            else:
                assert not target[t].any()


def test_associative_recall_queries_come_in_a_random_order_and_values_repeat():
    batch = AssociativeRecall().batch(3, 2000, seed=0)
    symbols = decode(batch.inputs)
    keys_in_order, queries = symbols[:, 0:8:2], symbols[:, -4:]
    assert (queries != keys_in_order).any(axis=1).mean() > 0.9  # 1 − 1/24 of sequences are shuffled
    values = symbols[:, 1:8:2]
    assert (np.array([len(set(v)) for v in values]) < 4).any()  # values are drawn with replacement


def test_associative_recall_refuses_impossible_sizes_by_name():
    with pytest.raises(UsageError, match="pairs=5 needs as many distinct keys, but keys=4"):
        AssociativeRecall(keys=4, pairs=5)
    with pytest.raises(UsageError, match="keys=0"):
        AssociativeRecall(keys=0)
    task = AssociativeRecall(keys=8, pairs=2)
    assert (task.input_size, task.output_size, task.baseline(4)["query_accuracy"]) == (17, 8, 1 / 8)


def test_associative_recall_scores_only_the_queries():
    task = AssociativeRecall()
    batch = task.batch(6, 256, seed=2)
    outputs = np.zeros((256, task.seq_len(6), task.keys))
    outputs[..., 0] = 1.0  # always value 0: right exactly where the answer is 0
    labels = batch.targets[..., :-1].argmax(-1)[batch.targets[..., -1] == 1]
    m = task.metrics(outputs, batch.targets)
    assert m["query_accuracy"] == pytest.approx((labels == 0).mean())
    uniform = task.metrics(np.zeros_like(outputs), batch.targets)
    assert uniform["loss"] == pytest.approx(math.log(task.keys))  # no memory: ln K, the baseline's loss
    assert masked_cross_entropy(np.zeros_like(outputs), batch.targets) == pytest.approx(math.log(16))


@pytest.mark.parametrize("T", [8, 9, 40])
def test_selective_copy_recalls_the_scattered_tokens_in_order(T):
    batch = SelectiveCopy().batch(T, 64, seed=T)
    symbols = decode(batch.inputs)
    assert symbols.shape[1] == T + 9
    for row, target in zip(symbols, batch.targets):
        data = [int(s) for s in row[:T] if s < 8]
        assert len(data) == 8 and (row[:T] != 9).all() and row[T] == 9 and (row[T + 1 :] == 8).all()
        assert list(target[T + 1 :]) == data and (target[: T + 1] == 8).all()


def test_selective_copy_positions_are_spread_over_the_whole_delay():
    T, n = 40, 4000
    symbols = decode(SelectiveCopy().batch(T, n, seed=1).inputs)[:, :T]
    per_position = (symbols < 8).mean(axis=0)  # each position holds a token with probability N / T
    assert np.all(np.abs(per_position - 8 / T) < 5 * math.sqrt(0.2 * 0.8 / n))
