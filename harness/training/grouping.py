"""Which planned trials may train together, driver side: a population is trials of one cell that differ
only in what each member keeps as its own (``MEMBER_KEYS``, the seed, and the variant's ``init_only``
hyperparameters). ``harness.run.scheduling`` makes a run's jobs from ``population_groups``;
``harness.training.population`` trains one group in a worker.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from harness.cell.batchable import batchability
from harness.cell.scan_choice import uses_scan
from harness.errors import UsageError
from harness.trials.trial import Trial, canonical
from harness.variant import Variant

#: the common hyperparameters each member keeps as its own (everything else is shared by the group)
MEMBER_KEYS = ("learning_rate", "hidden_size", "clip_norm", "max_steps", "eval_every", "validation_size", "test_size")


def variant_of(trial: Trial) -> Variant:
    """The trial's variant, built with the hyperparameters it declares (the rest of ``hparams`` is the protocol's)."""
    from harness.plugins.registry import registry

    cls = registry().variant_class(trial.variant)
    return cls(**{k: v for k, v in trial.hparams.items() if k in cls.hyperparameters})


def group_key(trial: Trial) -> tuple:
    """Trials with equal keys may train in one population. A variant that is not batchable gets a key of
    its own per trial; one that is not padding-exact shares its key only with its hidden size."""
    variant = variant_of(trial)
    ability = batchability(variant)
    if not ability.batchable:
        return ("solo", trial.id)
    if trial.framework == "tf" and trial.settings.train_lengths == "uniform" and not uses_scan(
            variant, "auto", "tf", trial.device, 2):  # fmt: skip
        # TensorFlow's population unrolls the step in Python for one length: each of up to T lengths would
        # be a trace of its own (seconds each), where a solo model's while loop traces once for all. A
        # population that runs its variant's linear form has no loop over time to unroll: it stays.
        return ("solo", trial.id)
    specs = type(variant).hyperparameters
    shared = {k: v for k, v in trial.hparams.items()
              if k not in MEMBER_KEYS and not (k in specs and specs[k].init_only)}  # fmt: skip
    if not ability.pads:
        shared["hidden_size"] = trial.settings.hidden_size
    return (trial.task, trial.length, trial.variant, trial.framework, trial.device, json.dumps(canonical(shared)))


def population_groups(trials: list[Trial], cap: int, fused_solo: Collection[str] = ()) -> list[list[Trial]]:
    """``trials`` as populations of at most ``cap`` members (``cap`` 1: every trial alone, today's path).

    ``fused_solo`` names variants whose fused kernel alone beats a population (measured with
    ``harness.diagnostics.speed``): their trials that ask for the fused path (``fused = true``) train solo.
    Groups keep the order in which their first trial appears; inside a group members are sorted by
    hidden size, so that each population pads as little as possible. The replicates of one configuration
    (``replicates = k``: the same hyperparameters, seeds ``c + r * SEED_STRIDE``) stay in one population
    wherever they fit in ``cap`` (a configuration with more replicates than ``cap`` fills whole
    populations first), so that replicates differ by their seed alone, not by their population's
    company; with one replicate per configuration this is plain chunking."""
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise UsageError(f"population size {cap!r} is not allowed; it must be an integer >= 1 (1 trains solo)")
    if cap == 1:
        return [[t] for t in trials]
    groups: dict[tuple, list[Trial]] = {}
    for t in trials:
        alone = t.variant in fused_solo and t.settings.fused
        groups.setdefault(("fused", t.id) if alone else group_key(t), []).append(t)
    out = []
    for members in groups.values():
        members = sorted(members, key=lambda t: t.settings.hidden_size)
        out.extend(_pack_replicates(members, cap))
    return out


def _pack_replicates(members: list[Trial], cap: int) -> list[list[Trial]]:
    """``members`` in order as chunks of at most ``cap``, never splitting a configuration's replicates
    (trials alike but for the replicate r of their seed) that fit in one chunk."""
    from harness.suites.suite import split_seed

    configs: dict[tuple, list[Trial]] = {}
    for t in members:
        configs.setdefault((split_seed(t.seed)[0], json.dumps(canonical(t.hparams))), []).append(t)
    chunks: list[list[Trial]] = []
    current: list[Trial] = []
    for replicates in configs.values():
        for piece in (replicates[i : i + cap] for i in range(0, len(replicates), cap)):
            if len(current) + len(piece) > cap:
                chunks.append(current)
                current = []
            current = current + piece
    return chunks + [current] if current else chunks
