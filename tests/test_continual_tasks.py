"""The continual tasks against their definitions (docs/tasks.md `continual_reber`, `continual_adding`):
grammar validity of every generated string, the legal-next-symbol targets, the embedded outer symbol,
the episode layout, the masks and the trivial baselines. The grammar here is written out again from the
definition (a regular expression and a walk of the automaton), not taken from the generator."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from harness.task import Batch, masked_loss, pad_steps, stack_batches
from tasks.continual_adding import ContinualAdding
from tasks.continual_reber import ContinualReber

SYMBOLS = "BTPSXVE"
#: the Reber grammar of the definition: state -> {symbol: next state}
REBER = {0: {"B": 1}, 1: {"T": 2, "P": 3}, 2: {"S": 2, "X": 4}, 3: {"T": 3, "V": 5}, 4: {"X": 3, "S": 6},
         5: {"P": 4, "V": 6}, 6: {"E": "end"}}  # fmt: skip
#: the same grammar as a regular expression: from state 3 the walk loops T* V P X back to 3, and leaves
#: through V V or V P S; from 4 it leaves through S or X back to 3
FROM_3 = "(?:T*VPX)*T*V(?:V|PS)"
REBER_STRING = f"B(?:TS*X(?:S|X{FROM_3})|P{FROM_3})E"
EMBEDDED = f"B([TP]){REBER_STRING}\\1E"  # the same outer symbol after the Reber string


# --- continual_reber: helpers ----------------------------------------------------------------------
def streams(batch) -> list[str]:
    """Each stream's symbols as a string, from the one-hot inputs of its real (masked) steps."""
    real = batch.targets[..., 7] == 1
    return ["".join(SYMBOLS[i] for i in batch.inputs[b, real[b]].argmax(axis=-1)) for b in range(len(batch))]


def legal_after_each_symbol(stream: str) -> list[set[str]]:
    """Walk the embedded grammar over ``stream``: the legal next symbols after each of its symbols;
    an illegal symbol fails the assertion."""
    out, phase, outer, state = [], "B", "", 0
    for c in stream:
        if phase == "B":
            assert c == "B"
            phase, legal = "outer", {"T", "P"}
        elif phase == "outer":
            assert c in "TP"
            outer, state, phase, legal = c, 0, "inner", {"B"}
        elif phase == "inner":
            state = REBER[state][c]
            phase, legal = ("outer again", {outer}) if state == "end" else ("inner", set(REBER[state]))
        elif phase == "outer again":
            assert c == outer
            phase, legal = "E", {"E"}
        else:
            assert c == "E"
            phase, legal = "B", {"B"}
        out.append(legal)
    assert phase == "B", "the stream ends inside an embedded string"
    return out


def right_outputs(targets: np.ndarray) -> np.ndarray:
    """Logits that are right at every step: +20 on the legal symbols, -20 on the others."""
    return np.where(targets[..., :7] > 0.5, 20.0, -20.0)


def outer_steps(targets: np.ndarray) -> np.ndarray:
    """The steps after an inner E, found from the definition: their legal set is {T} or {P} alone."""
    legal = targets[..., :7] > 0.5
    return (targets[..., 7] == 1) & (legal.sum(axis=-1) == 1) & (legal[..., 1] | legal[..., 2])


# --- continual_reber -------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 3, 10])
def test_every_string_of_every_stream_is_an_embedded_reber_string_and_there_are_T_of_them(T):
    for batch, strings in ((ContinualReber().batch(T, 64, seed=0), T),
                           (ContinualReber().fixed_set("test", T, 8), 10 * T)):  # fmt: skip
        for stream in streams(batch):
            assert re.fullmatch(f"(?:{EMBEDDED}){{{strings}}}", stream), stream


def test_targets_are_the_legal_next_symbols_and_the_outer_symbol_comes_back():
    batch = ContinualReber().batch(5, 32, seed=1)
    for b, stream in enumerate(streams(batch)):
        legal = legal_after_each_symbol(stream)
        got = [{SYMBOLS[i] for i in np.flatnonzero(row)} for row in batch.targets[b, : len(stream), :7]]
        assert got == legal
        # after each inner E the only legal symbol is the outer symbol seen right after that string's B
        outer_at = [m.start(1) for m in re.finditer(EMBEDDED, stream)]
        after_inner_e = [t for t, s in enumerate(legal) if len(s) == 1 and s <= {"T", "P"}]
        assert len(after_inner_e) == len(outer_at) == 5
        assert all(legal[t] == {stream[o]} for t, o in zip(after_inner_e, outer_at))
        assert np.flatnonzero(outer_steps(batch.targets[b])).tolist() == after_inner_e


def test_streams_are_padded_with_zeros_and_an_unread_mask_to_a_multiple_of_16_steps():
    batch = ContinualReber().batch(4, 64, seed=2)
    inputs, targets = batch.inputs, batch.targets
    assert inputs.shape[1] % 16 == 0 and targets.shape == (*inputs.shape[:2], 8)
    assert inputs.dtype == targets.dtype == np.float32
    real = targets[..., 7] == 1
    lengths = real.sum(axis=1)
    assert (real == (np.arange(inputs.shape[1]) < lengths[:, None])).all()  # the real steps come first
    assert inputs.shape[1] - 16 < lengths.max() <= inputs.shape[1]
    assert len(set(lengths)) > 1  # streams differ in length
    assert (inputs[real].sum(axis=-1) == 1).all() and (inputs[~real] == 0).all() and (targets[~real] == 0).all()


def test_branches_and_outer_symbols_are_drawn_with_probability_one_half_and_strings_average_12_steps():
    batch = ContinualReber().batch(50, 100, seed=3)
    text = "".join(streams(batch))
    strings = [m.group(0) for m in re.finditer(EMBEDDED, text)]
    assert len(strings) == 5000 and sum(map(len, strings)) == len(text)
    n = len(strings)
    for share in (sum(s[1] == "T" for s in strings) / n, sum(s[3] == "T" for s in strings) / n):
        assert abs(share - 0.5) < 5 * 0.5 / math.sqrt(n)  # the outer symbol, the inner first branch
    mean = len(text) / n  # 4 + the Reber string's 8 (docs/tasks.md)
    assert abs(mean - 12) < 0.2  # the string length's standard deviation is ~3.3: 0.2 is 4 standard errors


def test_perfect_outputs_solve_and_wrong_outer_predictions_cost_only_the_outer_accuracy():
    task = ContinualReber()
    batch = task.batch(6, 16, seed=4)
    outputs = right_outputs(batch.targets)
    m = task.metrics(outputs, batch.targets)
    assert m["outer_accuracy"] == m["symbol_accuracy"] == 1.0 and m["loss"] < 1e-8 and task.solved(m)
    outer = outer_steps(batch.targets)
    outputs[outer] = -outputs[outer]  # every outer prediction wrong, everything else right
    m = task.metrics(outputs, batch.targets)
    real = batch.targets[..., 7] == 1
    assert m["outer_accuracy"] == 0.0 and m["symbol_accuracy"] == pytest.approx(1 - outer.sum() / real.sum())


def test_a_step_is_right_only_when_exactly_the_legal_symbols_score_above_one_half():
    task = ContinualReber()
    batch = task.batch(2, 4, seed=5)
    outputs = right_outputs(batch.targets)
    outputs[0, 0, 6] = 0.0  # one illegal symbol at exactly 1/2: not above it, still right
    assert task.metrics(outputs, batch.targets)["symbol_accuracy"] == 1.0
    outputs[0, 0, 6] = 0.01  # just above 1/2: the step is wrong
    real = (batch.targets[..., 7] == 1).sum()
    assert task.metrics(outputs, batch.targets)["symbol_accuracy"] == pytest.approx(1 - 1 / real)


def test_solved_needs_both_accuracies():
    task = ContinualReber()
    assert task.solved({"outer_accuracy": 0.99, "symbol_accuracy": 0.99, "loss": 0.0})
    assert not task.solved({"outer_accuracy": 0.989, "symbol_accuracy": 1.0, "loss": 0.0})
    assert not task.solved({"outer_accuracy": 1.0, "symbol_accuracy": 0.989, "loss": 0.0})
    assert (task.metric, task.higher_is_better, task.solved_threshold) == ("outer_accuracy", True, 0.99)


def test_reber_baseline_measured_knows_the_grammar_but_not_the_outer_symbol():
    task = ContinualReber()
    batch = task.batch(20, 500, seed=6)  # 10,000 embedded strings
    outer = outer_steps(batch.targets)
    unsure = right_outputs(batch.targets)
    unsure[outer, 1:3] = 0.0  # T and P at probability 1/2 after each inner E: the least cross-entropy
    guess_t = right_outputs(batch.targets)
    guess_t[outer, 1], guess_t[outer, 2] = 20.0, -20.0  # a decision: always T
    expected = task.baseline(20)
    assert expected == pytest.approx({"loss": math.log(2) / 42, "outer_accuracy": 0.5, "symbol_accuracy": 23 / 24})
    share = outer.sum() / (batch.targets[..., 7] == 1).sum()
    assert share == pytest.approx(1 / 12, rel=0.02)
    assert task.metrics(unsure, batch.targets)["loss"] == pytest.approx(expected["loss"], rel=0.02)
    m = task.metrics(guess_t, batch.targets)
    assert abs(m["outer_accuracy"] - 0.5) < 5 * 0.5 / math.sqrt(10_000)
    assert m["symbol_accuracy"] == pytest.approx(expected["symbol_accuracy"], abs=0.003)
    assert not task.solved(expected)


def test_the_reber_loss_is_the_binary_cross_entropy_over_outputs_and_real_steps():
    batch = ContinualReber().batch(3, 4, seed=7)
    outputs = np.random.default_rng(0).normal(size=(*batch.targets.shape[:2], 7))
    real = batch.targets[..., 7] == 1
    y, p = batch.targets[..., :7][real], 1 / (1 + np.exp(-outputs[real]))
    direct = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    assert ContinualReber().metrics(outputs, batch.targets)["loss"] == pytest.approx(direct, rel=1e-12)
    assert masked_loss("binary_cross_entropy", outputs, batch.targets) == pytest.approx(direct, rel=1e-12)


# --- continual_adding ------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [2, 3, 10])
def test_continual_adding_is_adding_episodes_end_to_end_read_at_each_episode_end(T):
    task = ContinualAdding()
    for batch, episodes in ((task.batch(T, 64, seed=0), 8), (task.fixed_set("validation", T, 8), 80)):
        n = len(batch)
        assert batch.inputs.shape == (n, episodes * T, 2) and batch.targets.shape == (n, episodes * T, 2)
        values, markers = batch.inputs[..., 0].reshape(n, episodes, T), batch.inputs[..., 1].reshape(n, episodes, T)
        targets = batch.targets.reshape(n, episodes, T, 2)
        assert values.min() >= 0 and values.max() < 1 and set(np.unique(markers)) <= {0.0, 1.0}
        half = T // 2  # one marker in each half of every episode, and nothing marks the episodes
        assert (markers[..., :half].sum(axis=-1) == 1).all() and (markers[..., half:].sum(axis=-1) == 1).all()
        assert (targets[..., -1, 1] == 1).all() and (targets[..., :-1, :] == 0).all()  # read at the end only
        np.testing.assert_array_equal(targets[..., -1, 0], (values * markers).sum(axis=-1, dtype=np.float32))


def test_continual_adding_markers_cover_each_half_of_an_episode_uniformly():
    markers = ContinualAdding().batch(10, 625, seed=1).inputs[..., 1].reshape(-1, 10)  # 5000 episodes
    np.testing.assert_allclose(markers.sum(axis=0), 1000, atol=5 * math.sqrt(1000))


def test_continual_adding_metric_reads_only_the_episode_ends_and_its_baseline_is_one_sixth():
    task = ContinualAdding()
    batch = task.batch(6, 2500, seed=2)  # 20,000 episodes
    outputs = np.ones((*batch.targets.shape[:2], 1))  # always 1
    m = task.metrics(outputs, batch.targets)
    std = math.sqrt(1 / 15 - 1 / 36)  # of (S - 1)^2, S - 1 triangular on [-1, 1] (as adding's)
    assert abs(m["mse"] - 1 / 6) <= 5 * std / math.sqrt(20_000) and m["loss"] == m["mse"]
    assert task.baseline(6) == {"loss": 1 / 6, "mse": 1 / 6} and not task.solved(task.baseline(6))
    ends = batch.targets[..., 1] == 1
    outputs[~ends] = 123.0  # anything off the episode ends does not count
    assert task.metrics(outputs, batch.targets) == m
    assert masked_loss("mse", outputs, batch.targets) == pytest.approx(m["mse"], rel=1e-12)
    perfect = batch.targets[..., :1].astype(np.float64)
    assert task.metrics(perfect, batch.targets)["mse"] == 0.0 and task.solved({"mse": 0.0099, "loss": 0.0})
    assert not task.solved({"mse": 0.01, "loss": 0.0})


def test_held_out_streams_are_ten_times_as_long_as_training_sequences():
    assert ContinualAdding().fixed_set("test", 5, 2).inputs.shape[1] == 10 * ContinualAdding().seq_len(5) == 400
    held_out = ContinualReber().fixed_set("validation", 2, 4)
    assert all(len(re.findall(EMBEDDED, s)) == 20 for s in streams(held_out))


# --- padding (harness.task) ------------------------------------------------------------------------
def test_stack_batches_pads_shorter_streams_with_zero_inputs_and_an_unread_mask():
    task = ContinualReber()
    short, long = task.batch(1, 2, seed=0), task.batch(6, 2, seed=0)
    inputs, targets = stack_batches([short, long])
    L = long.inputs.shape[1]
    assert inputs.shape == (2, 2, L, 7) and targets.shape == (2, 2, L, 8)
    n = short.inputs.shape[1]
    np.testing.assert_array_equal(inputs[0, :, :n], short.inputs)
    assert (inputs[0, :, n:] == 0).all() and (targets[0, :, n:] == 0).all()
    np.testing.assert_array_equal(targets[1], long.targets)
    outputs = np.random.default_rng(0).normal(size=(2, 2, L, 7))
    assert task.metrics(outputs[0], targets[0]) == task.metrics(outputs[0, :, :n], short.targets)  # never read


def test_only_masked_targets_pad():
    batch = Batch(np.zeros((2, 5, 2), np.float32), np.zeros(2, np.float32))  # adding: targets (B,)
    assert pad_steps(batch, 5) is batch
    with pytest.raises(ValueError, match="only masked targets"):
        pad_steps(batch, 7)
