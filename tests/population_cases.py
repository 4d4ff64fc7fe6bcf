"""Shared by the population tests of both frameworks: trials, and what "the same result" means."""

from __future__ import annotations

import math

from harness.plugins.registry import registry
from harness.trials.protocol import check_hparams
from harness.trials.trial import Trial

RTOL = 1e-5  # float32 rounding, the bound for a member against its solo run
SMALL = dict(batch_size=4, validation_size=8, test_size=8)


def make_trial(variant_id, seed=0, task="adding", T=4, framework="torch", **hp) -> Trial:
    cls = registry().variant_class(variant_id)
    variant = cls(**{k: v for k, v in hp.items() if k in cls.hyperparameters})
    hparams = check_hparams({k: v for k, v in hp.items() if k not in cls.hyperparameters})
    hparams.update(variant.hparams)
    return Trial(task, T, variant.id, framework, "cpu", hparams, seed)


def close(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= RTOL * abs(b)


def assert_same_result(member, alone):
    """Everything stored of a trial agrees, numbers to float32 rounding."""
    assert (member.status, member.steps, member.best_step, member.steps_to_solve, member.solved) == (
        alone.status, alone.steps, alone.best_step, alone.steps_to_solve, alone.solved)  # fmt: skip
    assert [(s, split) for s, split, _, _ in member.curve] == [(s, split) for s, split, _, _ in alone.curve]
    for (_, _, loss_a, metric_a), (_, _, loss_b, metric_b) in zip(member.curve, alone.curve):
        assert close(loss_a, loss_b) and close(metric_a, metric_b), (member.curve, alone.curve)
    for key in ("validation", "test_best", "test_last"):
        got, want = getattr(member, key), getattr(alone, key)
        assert set(got) == set(want) and all(close(got[k], want[k]) for k in want), (key, got, want)
    assert sorted(member.test_lengths) == sorted(alone.test_lengths)
    for L, want in alone.test_lengths.items():
        assert all(close(member.test_lengths[L][k], want[k]) for k in want), (L, member.test_lengths[L], want)
    assert member.param_count == alone.param_count


class EasyAdding(registry().tasks["adding"]):
    """Adding with a threshold small models reach within a few steps: members solve at different steps."""

    solved_threshold = 0.3
