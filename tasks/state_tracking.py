"""State tracking: the running parity of a bit string and the position on a cycle (Delétang et al. 2023,
"Neural Networks and the Chomsky Hierarchy"; both regular languages): docs/tasks.md `parity`,
`cycle_navigation`.

A cell solves them only if its state can hold a count modulo 2 (or 5) and update it at every step,
exactly: Grazzi et al. 2025 show that a linear recurrence whose transition has only positive
eigenvalues (Mamba's, mLSTM's, the min cells') cannot represent parity at any length.

Both tasks read a label at every step, so they share their targets and metrics: a label per step
(int64, (B, T)), cross-entropy averaged over the steps, ``final_accuracy`` (the last step's label, per
sequence; primary) and ``step_accuracy`` (every step).
"""

from __future__ import annotations

import math

import numpy as np

from harness.task import Batch, Task, softmax_cross_entropy

CYCLE = 5  # positions on the cycle of ``cycle_navigation``
MOVES = np.array([0, 1, -1])  # the actions stay, +1, −1, in their input channels' order


def running_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Cross-entropy averaged over every step, the last step's accuracy and every step's accuracy."""
    targets = np.asarray(targets, dtype=np.int64)
    correct = np.asarray(outputs).argmax(axis=-1) == targets
    return {
        "loss": float(softmax_cross_entropy(outputs, targets).mean()),
        "final_accuracy": float(correct[:, -1].mean()),
        "step_accuracy": float(correct.mean()),
    }


def position_distributions(T: int) -> np.ndarray:
    """(T, 5): the probability of each position on the cycle after steps 1..T of uniform actions."""
    p = np.zeros(CYCLE)
    p[0] = 1.0
    rows = []
    for _ in range(T):
        p = (p + np.roll(p, 1) + np.roll(p, -1)) / 3.0  # stay, +1 and −1, each with probability 1/3
        rows.append(p)
    return np.array(rows)


class StateTracking(Task):
    """What ``parity`` and ``cycle_navigation`` share: L = T, a label at every step, their metrics."""

    loss = "cross_entropy"
    loss_at = "all"
    metric = "final_accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 1

    def seq_len(self, T: int) -> int:
        return self.check_length(T)

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        return running_metrics(outputs, targets)


class Parity(StateTracking):
    """The running parity of a bit string.

    Definition (L = T, T >= 1): inputs (T, 2), the bits b_1..b_T one-hot (channel 0 is the bit 0), each
    uniform over {0, 1}. Target at every step t (int64, (B, T)): (b_1 + … + b_t) mod 2 (2 classes).
    Loss: softmax cross-entropy averaged over all B × T steps. Metrics: ``final_accuracy`` (the last
    step; primary, solved >= 0.99) and ``step_accuracy``. Baseline (a strategy that ignores the inputs:
    every label is a fair coin): both accuracies 0.5, loss ln 2. A cell that reads only the current bit
    knows the first label (it is b_1), so at T = 1 it solves the task; from T = 2 on the final label is
    still a fair coin to it.
    """

    id = "parity"
    name = "Parity"
    reference = "Delétang et al. 2023"
    input_size = 2
    output_size = 2

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        bits = rng.integers(0, 2, size=(batch_size, T))
        return Batch(np.eye(2, dtype=np.float32)[bits], np.cumsum(bits, axis=1) % 2)

    def baseline(self, T: int) -> dict[str, float]:
        self.check_length(T)
        return {"loss": math.log(2), "final_accuracy": 0.5, "step_accuracy": 0.5}


class CycleNavigation(StateTracking):
    """An agent's position on a cycle of 5, after a string of moves.

    Definition (L = T, T >= 1): inputs (T, 3), actions one-hot in the channel order stay, +1, −1, each
    uniform; the agent starts at position 0. Target at every step (int64, (B, T)): the position after
    that step's action, (a_1 + … + a_t) mod 5 (5 classes). Loss: softmax cross-entropy averaged over
    all steps. Metrics: ``final_accuracy`` (primary, solved >= 0.99) and ``step_accuracy``.
    Baseline (a strategy that ignores the actions but knows t): predict the most likely position after
    t uniform moves, p_t, computed exactly (``position_distributions``): ``final_accuracy`` max p_T (1/3
    at T = 1, about 0.2 from T = 20), ``step_accuracy`` the mean of max p_t over the steps, and loss the
    mean entropy of p_t (the cross-entropy of predicting p_t itself). A cell that reads only the current
    action does better by one step (max p_{T−1}): 1.0 at T = 1, within 0.001 of max p_T from T = 10.
    """

    id = "cycle_navigation"
    name = "Cycle navigation"
    reference = "Delétang et al. 2023"
    input_size = 3
    output_size = CYCLE

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        T = self.check_length(T)
        actions = rng.integers(0, 3, size=(batch_size, T))
        positions = np.cumsum(MOVES[actions], axis=1) % CYCLE
        return Batch(np.eye(3, dtype=np.float32)[actions], positions.astype(np.int64))

    def baseline(self, T: int) -> dict[str, float]:
        p = position_distributions(self.check_length(T))
        entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
        return {
            "loss": float(entropy.mean()),
            "final_accuracy": float(p[-1].max()),
            "step_accuracy": float(p.max(axis=1).mean()),
        }
