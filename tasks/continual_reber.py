"""The embedded Reber grammar as a continual stream (Hochreiter & Schmidhuber 1997, exp. 1; Gers,
Schmidhuber & Cummins 2000): docs/tasks.md `continual_reber`."""

from __future__ import annotations

import math

import numpy as np

from harness.task import Batch, Task, masked_step_losses

SYMBOLS = "BTPSXVE"  # one-hot in this channel order
B, T_, P, S, X, V, E = range(7)
END = 7  # the inner string's state after its final E
#: the Reber grammar: (symbol, next state) of each state's two branches, each taken with probability 1/2;
#: states 0 and 6 have one branch (written twice)
BRANCHES = np.array([
    [(B, 1), (B, 1)],
    [(T_, 2), (P, 3)],
    [(S, 2), (X, 4)],
    [(T_, 3), (V, 5)],
    [(X, 3), (S, 6)],
    [(P, 4), (V, 6)],
    [(E, END), (E, END)],
])  # fmt: skip
#: the legal next symbols in each state 1..6 (row 0 unused: the inner B is never a "next" state)
LEGAL = np.zeros((END, 7), dtype=np.float32)
for _state in range(1, END):
    LEGAL[_state, BRANCHES[_state, :, 0]] = 1.0
HELD_OUT_FACTOR = 10  # a validation or test stream holds 10 T
PAD_MULTIPLE = 16  # a batch is padded to a multiple of this many steps: few distinct shapes to trace
MEAN_STRING = 12  # expected steps of one embedded string (4 + the Reber string's 8; docs/tasks.md)
STRING_STD = 3.34  # their standard deviation (measured over 200,000 strings)


class ContinualReber(Task):
    """Predict the legal next symbols of an endless embedded Reber stream.

    Definition (7 input channels, symbols ``B T P S X V E`` one-hot in that order; T >= 1):

    * a Reber string walks ``BRANCHES`` from state 0 to its final E, each branch with probability 1/2;
      an embedded string is B, an outer symbol o (T or P, each with probability 1/2), a Reber string,
      o again, E;
    * a training sequence is T embedded strings concatenated (no reset, no marker besides the symbols);
      a validation or test stream holds 10 T. Sequences of one batch are right-padded with zero inputs
      to the longest (rounded up to a multiple of 16 steps);
    * targets (float32, (B, L, 8), ``loss_at = "mask"``): channels 0-6 the set of legal next symbols at
      each step (after an inner E that set is {o}; after a string's final E it is {B}, the next
      string's), channel 7 the mask: 1 on every real step, 0 on the padding.

    Loss: binary cross-entropy of the 7 sigmoid outputs, averaged over outputs and real steps. A step is
    right when exactly its legal symbols score above 1/2 (logit > 0). Metrics: ``outer_accuracy`` (the
    share of right steps among the steps after an inner E, the only steps whose legal set is {T} or {P}:
    the prediction that needs the outer symbol; primary) and ``symbol_accuracy`` (over all real steps).
    Solved: both >= 0.99. Baseline: a model that knows the grammar but not o (``baseline``).
    """

    id = "continual_reber"
    name = "Continual embedded Reber grammar"
    reference = "Hochreiter & Schmidhuber 1997, exp. 1; Gers, Schmidhuber & Cummins 2000"
    input_size = 7
    output_size = 7
    loss = "binary_cross_entropy"
    loss_at = "mask"
    metric = "outer_accuracy"
    higher_is_better = True
    solved_threshold = 0.99
    min_length = 1

    def seq_len(self, T: int) -> int:
        """The typical length of a padded training batch (each batch has its own; this one sizes cost
        estimates): the mean stream, 12 T, plus two standard deviations (about the longest of 32 streams)
        plus half the padding multiple. Measured means of 50 batches of 32: 84, 150, 282 at T = 5, 10, 20."""
        T = self.check_length(T)
        return round(MEAN_STRING * T + 2 * STRING_STD * math.sqrt(T) + PAD_MULTIPLE / 2)

    def generate(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        return reber_streams(self.check_length(T), batch_size, rng)

    def generate_held_out(self, T: int, batch_size: int, rng: np.random.Generator) -> Batch:
        return reber_streams(HELD_OUT_FACTOR * self.check_length(T), batch_size, rng)

    def solved(self, metrics: dict[str, float]) -> bool:
        return bool(metrics["outer_accuracy"] >= self.solved_threshold
                    and metrics["symbol_accuracy"] >= self.solved_threshold)  # fmt: skip

    def baseline(self, T: int) -> dict[str, float]:
        """Knowing the grammar state but not o: every step right except those after an inner E, where it
        gives T and P probability 1/2 each (the least cross-entropy without o) and is right half the
        time when it must choose. One step in 12 is such a step (the expected string length), so:
        loss = (2 ln 2 / 7) / 12, outer accuracy 1/2, symbol accuracy 1 - 1/24."""
        self.check_length(T)
        return {
            "loss": 2 * math.log(2) / 7 / MEAN_STRING,
            "outer_accuracy": 0.5,
            "symbol_accuracy": 1 - 0.5 / MEAN_STRING,
        }

    def metrics(self, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
        targets = np.asarray(targets)
        per_step, mask = masked_step_losses(self.loss, outputs, targets)
        real = mask > 0
        legal = targets[..., :7] > 0.5
        right = ((np.asarray(outputs) > 0) == legal).all(axis=-1)
        outer = real & (legal.sum(axis=-1) == 1) & (legal[..., T_] | legal[..., P])
        return {
            "loss": float(per_step[real].mean()),
            "outer_accuracy": float(right[outer].mean()),
            "symbol_accuracy": float(right[real].mean()),
        }


def reber_strings(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` Reber strings walked side by side: symbols (count, K) left-aligned, -1 after each string's
    end, and the state each symbol leads to (END after the final E)."""
    state = np.zeros(count, dtype=np.int64)
    symbols, states = [], []
    while (state != END).any():
        bit = rng.integers(0, 2, size=count)
        alive = state != END
        branch = BRANCHES[np.where(alive, state, 0), bit]
        symbols.append(np.where(alive, branch[:, 0], -1))
        state = np.where(alive, branch[:, 1], END)
        states.append(state)
    return np.stack(symbols, axis=1), np.stack(states, axis=1)


def embedded_strings(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` embedded strings: symbols (count, K + 4) left-aligned, -1 after each string, and the legal
    next symbols after each symbol (count, K + 4, 7)."""
    outer = np.where(rng.integers(0, 2, size=count) == 0, T_, P)
    inner, states = reber_strings(count, rng)
    rows, n = np.arange(count), (inner >= 0).sum(axis=1)
    width = inner.shape[1] + 4
    symbols = np.full((count, width), -1, dtype=np.int64)
    legal = np.zeros((count, width, 7), dtype=np.float32)
    symbols[:, 0], legal[:, 0, [T_, P]] = B, 1.0  # after B: either outer symbol
    symbols[:, 1], legal[:, 1, B] = outer, 1.0  # after o: the inner B
    symbols[:, 2:-2] = inner
    legal[:, 2:-2] = LEGAL[np.minimum(states, END - 1)] * (states < END)[..., None]
    legal[rows, 1 + n, outer] = 1.0  # after the inner E: o, the one prediction that needs memory
    symbols[rows, 2 + n], legal[rows, 2 + n, E] = outer, 1.0  # after the second o: E
    symbols[rows, 3 + n], legal[rows, 3 + n, B] = E, 1.0  # after the final E: the next string's B
    return symbols, legal


def reber_streams(strings: int, batch_size: int, rng: np.random.Generator) -> Batch:
    """``batch_size`` streams of ``strings`` embedded strings each, right-padded to a common length."""
    symbols, legal = embedded_strings(batch_size * strings, rng)  # stream b: strings b·n .. b·n + n - 1
    present = symbols >= 0
    lengths = present.sum(axis=1).reshape(batch_size, strings).sum(axis=1)
    length = -(-int(lengths.max()) // PAD_MULTIPLE) * PAD_MULTIPLE
    real = np.arange(length)[None, :] < lengths[:, None]
    inputs = np.zeros((batch_size, length, 7), dtype=np.float32)
    targets = np.zeros((batch_size, length, 8), dtype=np.float32)
    # boolean indexing runs in row-major order on both sides: stream b's strings, in order, fill its
    # first lengths[b] steps
    inputs[real] = np.eye(7, dtype=np.float32)[symbols[present]]
    targets[real, :7] = legal[present]
    targets[real, 7] = 1.0
    return Batch(inputs, targets)
