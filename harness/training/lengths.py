"""Length generalisation (Delétang et al. 2023; docs/tasks.md, "Length generalisation"): training at
lengths up to T, testing beyond it.

* Training lengths. ``train_lengths = "fixed"``: every batch at T, as always. ``"uniform"``: the batch of
  step s has the length T_s drawn uniformly from {L_min, ..., T} (L_min the task's ``min_length``),
  one length per batch. The draws T_1, T_2, ... are one fixed schedule per (task's L_min, T), drawn
  in blocks of ``SCHEDULE_BLOCK`` steps, block b from ``SeedSequence(DATA_SEED, spawn_key=(LENGTH_KEY,
  b))``: every trial of a task and T sees the same
  length at the same step, so a population's members share each step's length and stack without
  padding, and two replicates differ in their data and weights, not in their schedule (as they share
  the test set). The batch itself comes from the trial's own training stream (``harness.task``).
* Test lengths. ``test_lengths`` (multiples m of T) adds a test set at each length m·T, drawn from
  ``SeedSequence(DATA_SEED, spawn_key=(TEST_KEY, m·T))``: one fixed set per length, the same for every
  trial, and none of them the test set at T (which stays the one every trial is scored on).
* Score (Delétang's): the mean of the primary metric over the test lengths beyond T,

      generalisation = (1 / |M|) Σ_{m in M} metric(m·T)

  at the best validation checkpoint; ``None`` where a trial has no ladder.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from itertools import count

import numpy as np

from harness.task import DATA_SEED, Batch, Task, data_rng
from harness.trials.protocol import Settings

#: spawn keys of the two fixed streams this module adds (harness.task uses 0, 1 and 2 for its splits)
LENGTH_KEY, TEST_KEY = 3, 4
#: draws of the length schedule made at once (a trial longer than this draws the next block)
SCHEDULE_BLOCK = 4096


def longer_lengths(T: int, settings: Settings) -> list[int]:
    """The lengths beyond T at which a trial is tested: m·T for each multiple m of ``test_lengths``."""
    return [m * T for m in settings.test_lengths]


def length_schedule(shortest: int, T: int, steps: int) -> np.ndarray:
    """The training lengths of steps 1..``steps`` under ``"uniform"``: each uniform on {shortest, ..., T}."""
    blocks = -(-steps // SCHEDULE_BLOCK)
    return np.concatenate([_schedule_block(shortest, T, b) for b in range(blocks)])[:steps]


@cache
def _schedule_block(shortest: int, T: int, block: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence(DATA_SEED, spawn_key=(LENGTH_KEY, block)))
    drawn = rng.integers(shortest, T + 1, size=SCHEDULE_BLOCK)
    drawn.flags.writeable = False  # cached: shared by every trial of this (shortest, T)
    return drawn


def training_stream(task: Task, T: int, settings: Settings, seed: int) -> Iterator[Batch]:
    """A trial's endless training batches: ``task.training_stream`` under ``"fixed"``; under ``"uniform"``
    the batch of step s at the schedule's length T_s, from the same per-seed stream."""
    if settings.train_lengths == "fixed":
        yield from task.training_stream(T, settings.batch_size, seed)
        return
    rng = data_rng("train", seed)
    for block in count():
        for length in _schedule_block(task.min_length, T, block):
            yield task.generate(int(length), settings.batch_size, rng)


def longer_test_set(task: Task, length: int, size: int) -> Batch:
    """The fixed test set at ``length`` beyond a trial's T (its own seed, the same for every trial)."""
    rng = np.random.default_rng(np.random.SeedSequence(DATA_SEED, spawn_key=(TEST_KEY, int(length))))
    return task.generate_held_out(task.check_length(length), size, rng)


def generalisation(metric: str, by_length: Mapping[int, Mapping[str, float]]) -> float | None:
    """Delétang's score: the mean of ``metric`` over the lengths beyond T (``by_length`` holds only those);
    None when there are none."""
    values = [float(m[metric]) for m in by_length.values() if metric in m]
    return float(np.mean(values)) if values else None


def mean_sequence_length(task: Task, T: int, settings: Settings) -> float:
    """The mean length of a training sequence: ``seq_len(T)``, or its mean over {L_min, ..., T} under
    ``"uniform"`` (what a step costs on average, for estimates)."""
    if settings.train_lengths == "fixed":
        return float(task.seq_len(T))
    return float(np.mean([task.seq_len(L) for L in range(task.min_length, T + 1)]))
