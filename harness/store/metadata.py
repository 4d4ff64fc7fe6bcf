"""What a report needs to know of variants and tasks besides the trials themselves, as plain records: each
variant's name, reference, family, aliases and rank in the catalogue's order, and each task's name,
metric, direction, trivial baseline and success threshold at each dependency length T.

A run writes these records into the store when it starts (``Store.start_run``), taken from the code it
runs (``for_suite``); a report reads them back (``Store.metadata``). So a store reports with the names,
order and thresholds of the code that produced it, also where the suite file or a plugin's file is gone.
``complete`` fills in what a store lacks (a store written before stores recorded metadata, opened
read-only) from the code here, and lists what it filled so that the report can say so.

Nothing of ours is imported at import time (the store and the analysis use these records); only
``from_registry`` imports the registry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VariantMeta:
    """One variant as a report shows it. ``catalogue_rank``: its place in the catalogue's order (lower
    first; equal ranks are ordered by id; None, unknown, after every ranked one)."""

    id: str
    name: str = ""
    reference: str = ""
    family: str = "other"
    catalogue_rank: int | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskMeta:
    """One task at one dependency length T: its primary metric and direction, the trivial (memoryless)
    baseline's score on that metric (None when unknown), and the success threshold (a trial is solved
    when its metric is below it, or at least it when higher is better; None when unknown)."""

    task: str
    length: int
    name: str
    metric: str
    higher_is_better: bool
    baseline: float | None
    threshold: float | None
    reference: str = ""

    def solved_rule(self) -> str:
        """'mse < 0.05', 'accuracy ≥ 0.99', or '' when the threshold is unknown."""
        if self.threshold is None:
            return ""
        return f"{self.metric} {'≥' if self.higher_is_better else '<'} {self.threshold:g}"


@dataclass
class Metadata:
    """Variant and task records by id and by (task, T); ``from_code``: which of them came from the code
    here rather than from the store, e.g. ``["variant 'v'", "task 'adding' (T = 10)"]``."""

    variants: dict[str, VariantMeta] = field(default_factory=dict)
    tasks: dict[tuple[str, int], TaskMeta] = field(default_factory=dict)
    from_code: list[str] = field(default_factory=list)

    def ranks(self) -> dict[str, int]:
        """variant id -> catalogue rank, for the variants whose rank is known."""
        return {v: m.catalogue_rank for v, m in self.variants.items() if m.catalogue_rank is not None}

    def aliases(self) -> dict[str, str]:
        """Every id and alias -> its variant id."""
        out = {a: v for v, m in self.variants.items() for a in m.aliases}
        out.update({v: v for v in self.variants})
        return out

    def task(self, task: str) -> list[TaskMeta]:
        """The records of one task, by T."""
        return [m for (t, _), m in sorted(self.tasks.items()) if t == task]


def variant_order(variants: Iterable[str], ranks: dict[str, int] | None = None) -> list[str]:
    """``variants`` by rank (unranked ones last), then by id."""
    ranks = ranks or {}
    return sorted(set(variants), key=lambda v: (ranks.get(v, math.inf), v))


def from_registry(variants: Iterable[str], task_lengths: Iterable[tuple[str, int]]) -> Metadata:
    """The records of the code here for those variants and (task, T) the registry knows; the others are
    left out. A registry that cannot load (two plugin files claiming one id) knows nothing."""
    from harness.errors import UsageError
    from harness.plugins.catalogue import catalogue_rank
    from harness.plugins.registry import registry

    try:
        reg = registry()
    except UsageError:
        return Metadata()
    meta = Metadata()
    for vid in variants:
        cls = reg.variants.get(vid)
        if cls is not None:
            meta.variants[vid] = VariantMeta(vid, cls.name or vid, cls.reference or "", cls.family or "other",
                                             catalogue_rank(vid), tuple(cls.aliases))  # fmt: skip
    for task, T in task_lengths:
        if reg.knows_task(task):
            meta.tasks[(task, int(T))] = _task_meta(task, reg.task(task), int(T))
    return meta


def _task_meta(name: str, task: Any, T: int) -> TaskMeta:
    """The record of ``task`` at T under its ``name`` (its id, with its parameters where it has any)."""
    baseline = task.baseline(T).get(task.metric)
    finite = baseline is not None and math.isfinite(float(baseline))
    shown = task.name or task.id
    if name != task.id:  # associative_recall[pairs=2]: "Multi-query associative recall (pairs=2)"
        shown = f"{shown} ({name[len(task.id) + 1:-1]})"
    return TaskMeta(
        name, T, shown, task.metric, bool(task.higher_is_better),
        float(baseline) if finite else None, float(task.solved_threshold), task.reference or "",
    )  # fmt: skip


def for_suite(suite: Any) -> Metadata:
    """The records of a suite's variants and of its tasks at each of its lengths (``harness.suites.suite.Suite``)."""
    return from_registry(suite.variants, [(t, T) for t in suite.tasks for T in suite.lengths[t]])


def complete(meta: Metadata, variants: Iterable[str], task_lengths: Iterable[tuple[str, int]]) -> Metadata:
    """``meta`` with the variants and (task, T) it lacks filled in from the code here where it knows them;
    each one filled is listed in ``from_code``."""
    missing_v = sorted(set(variants) - set(meta.variants))
    missing_t = sorted({(t, int(T)) for t, T in task_lengths} - set(meta.tasks))
    if not missing_v and not missing_t:
        return meta
    found = from_registry(missing_v, missing_t)
    filled = Metadata({**meta.variants, **found.variants}, {**meta.tasks, **found.tasks}, list(meta.from_code))
    filled.from_code += [f"variant {v!r}" for v in sorted(found.variants)]
    filled.from_code += [f"task {t!r} (T = {T})" for t, T in sorted(found.tasks)]
    return filled
