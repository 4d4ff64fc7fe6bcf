"""Population training: several planned trials of one cell trained as one computation.

Trials that share variant, task, length, framework, device and training protocol differ only in what
is each member's own: seed (its data stream and initial weights), learning rate, hidden size, gradient
clipping, step budget, evaluation schedule and set sizes, and the variant's ``init_only``
hyperparameters (the forget-gate bias). A backend's population engine stacks their parameters along a
leading member axis (``harness.cell.stacking``) and runs the variant's unchanged ``step`` once per time step
for all of them, with one optimiser step for all; the protocol of ``harness.training.solo.train`` (data,
evaluation, early stopping, divergence, checkpoints) is kept per member by ``solo.Member``, the
bookkeeping solo training uses too, so every member's
``TrialResult`` is the one its solo run gives, up to float32 rounding. A solved, diverged or finished
member is reported at once and leaves the computation; a NaN in one member marks only that member.

Entry point: ``train_population(trials, framework, device)`` trains one group (planned by
``harness.training.grouping.population_groups``). A group of one, a variant that breaks ``harness.cell.batchable``'s
rules, or a framework without a population engine runs today's solo path.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.cell.scan_choice import uses_scan
from harness.task import Batch, Task, stack_batches
from harness.training.grouping import group_key, variant_of
from harness.training.solo import EVAL_BATCH, Member, ResultCallback, TrialResult, failed, train
from harness.trials.trial import Trial

#: the population engine of each framework (a framework missing here trains its groups solo)
ENGINES = {"torch": "harness.backends.torch_population", "tf": "harness.backends.tf_population"}

ValidationCallback = Callable[[Trial, int, float, float], None]  # trial, step, validation loss, metric (worker side)
Scored = Callable[[Trial, int, dict[str, float]], None]


def metrics_of(model: Any, task: Task, slots: list[int], inputs: np.ndarray, targets: np.ndarray) -> list[dict]:
    """``harness.training.solo.evaluate`` for several members at once (the same chunks of ``EVAL_BATCH``)."""
    chunks = [model.predict(slots, inputs[i : i + EVAL_BATCH]) for i in range(0, len(inputs), EVAL_BATCH)]
    outputs = np.concatenate(chunks, axis=1)
    return [{k: float(v) for k, v in task.metrics(outputs[j], targets).items()} for j in range(len(slots))]


def train_population(
    trials: list[Trial], framework: str, device: str = "cpu", on_result: ResultCallback | None = None,
    time_limit: float | None = None, on_progress: ValidationCallback | None = None, scan: str = "auto",
) -> list[TrialResult]:  # fmt: skip
    """Train one group of ``population_groups`` as one computation; the results in the order of ``trials``.

    Each result is the ``TrialResult`` the trial's solo ``harness.training.solo.train`` gives (to float32
    rounding), with ``population`` the group's size. ``on_result(trial, result)`` is called the moment a
    member finishes (solved, diverged, out of steps), so it can be stored at once. A member still
    training after ``time_limit`` seconds is a ``timeout``. ``on_progress(trial, step, loss, metric)`` is
    called at each validation point of a member (its learning curve as it grows). Never raises for a
    numerical failure; an error of the engine or the variant becomes a ``failed`` result for every member
    not yet finished. ``scan`` (``auto``, ``on``, ``off``): whether a variant with a linear form runs it
    (``harness.cell.scan_choice``).
    """
    from harness.backends import load_backend

    if len({group_key(t) for t in trials}) > 1:
        raise ValueError("these trials do not form one population (see population_groups): "
                         + ", ".join(t.label() for t in trials))  # fmt: skip
    backend = load_backend(framework)
    results: dict[int, TrialResult] = {}

    def report(index: int, result: TrialResult) -> None:
        results[index] = result
        if on_result is not None:
            try:
                on_result(trials[index], result)
            except BaseException as e:  # the caller's own failure (a full disk): not the trials'
                raise _CallbackFailed() from e

    def scored(trial: Trial, step: int, metrics: dict[str, float]) -> None:
        if on_progress is not None:
            try:
                on_progress(trial, step, metrics["loss"], metrics[_metric(trial)])
            except BaseException as e:  # the caller's own failure (the pipe to the driver)
                raise _CallbackFailed() from e

    engine_name = ENGINES.get(framework)
    try:
        if len(trials) == 1 or engine_name is None:
            for k, t in enumerate(trials):
                report(k, _solo(t, backend, scored, scan))
        else:
            _together(trials, engine_name, device, report, time_limit, scored, scan)
    except _CallbackFailed as e:
        raise e.__cause__ from None
    return [results[k] for k in range(len(trials))]


class _CallbackFailed(Exception):
    """``on_result`` raised: its error goes to the caller as it was, never into a trial's result."""


def _metric(trial: Trial) -> str:
    from harness.plugins.registry import registry

    return registry().task(trial.task).metric


def _together(trials: list[Trial], engine_name: str, device: str, report: Callable[[int, TrialResult], None],
              time_limit: float | None, scored: Scored, scan: str) -> None:  # fmt: skip
    reported: set[int] = set()

    def tracked(index: int, result: TrialResult) -> None:
        reported.add(index)
        report(index, result)

    try:
        _train_together(trials, importlib.import_module(engine_name), device, tracked, time_limit, scored, scan)
    except _CallbackFailed:
        raise
    except Exception as e:  # a broken variant or engine costs this group, not the run
        for k in range(len(trials)):
            if k not in reported:
                result = failed(e)
                result.population = len(trials)
                report(k, result)


def _solo(trial: Trial, backend: Any, scored: Scored, scan: str) -> TrialResult:
    from harness.plugins.registry import registry

    try:
        task, variant, settings = registry().task(trial.task), variant_of(trial), trial.settings
        scans = uses_scan(variant, scan, trial.framework, trial.device, 1)

        def build(params: dict) -> Any:
            return backend.build_model(variant, task, settings, params, trial.device, scans)

        return train(trial, task, variant, build, on_eval=lambda step, metrics: scored(trial, step, metrics))
    except _CallbackFailed:
        raise
    except Exception as e:
        return failed(e)


def _train_together(trials: list[Trial], engine: Any, device: str, report: Callable[[int, TrialResult], None],
                    time_limit: float | None, scored: Scored, scan: str) -> None:  # fmt: skip
    from harness.plugins.registry import registry

    started = time.perf_counter()
    task = registry().task(trials[0].task)
    members = [Member(t, task, variant_of(t), len(trials), started) for t in trials]
    for m in members:
        m.on_scored = lambda step, metrics, trial=m.trial: scored(trial, step, metrics)
    settings, params = [m.settings for m in members], [m.params for m in members]
    variant = variant_of(trials[0])
    scans = uses_scan(variant, scan, trials[0].framework, device, len(trials))
    model = engine.Population(variant, task, settings, params, device, scan=scans)
    for m in members:
        m.result.path = model.path
    slots: list[int | None] = list(range(len(members)))  # each model slot's member; None once it finished
    evaluate(model, task, members, slots, list(range(len(slots))), 0)
    step, warm = 0, False
    while True:
        retire(model, members, slots, report)
        if all(k is None for k in slots):
            return
        if leave(model, slots):
            slots = [k for k in slots if k is not None]
            warm = False  # a smaller model allocates (and traces) again
        live = [(slot, k) for slot, k in enumerate(slots) if k is not None]
        if time_limit is not None and time.perf_counter() - started > time_limit:
            for _, k in live:
                msg = f"trial exceeded its time limit of {time_limit:.0f} s (in a population of {len(trials)})"
                result = failed(msg, status="timeout")
                result.population = len(trials)
                report(k, result)
            return
        step += 1
        inputs, targets = batches(members, slots)
        t0 = time.perf_counter()
        losses = model.train_step(inputs, targets)
        seconds = time.perf_counter() - t0 if warm else None  # as train: warm-up steps are not speed
        warm = True
        due = [slot for slot, k in live if members[k].trained(step, float(losses[slot]), seconds)]
        evaluate(model, task, members, slots, due, step)


def batches(members: list[Member], slots: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Each live member's next batch from its own stream; zeros in the slots of finished members (they
    draw nothing, so no stream moves for them; what their slot computes reaches no other member).
    Batches of different lengths (a task whose sequences vary, ``loss_at = "mask"``) are right-padded
    to the longest, which changes no member's loss (``harness.task.stack_batches``)."""
    drawn = {slot: next(members[k].stream) for slot, k in enumerate(slots) if k is not None}
    some = next(iter(drawn.values()))
    empty = Batch(np.zeros_like(some.inputs), np.zeros_like(some.targets))
    return stack_batches([drawn.get(s, empty) for s in range(len(slots))])


def evaluate(model: Any, task: Task, members: list[Member], slots: list[int | None], due: list[int],
             step: int) -> None:  # fmt: skip
    """Score the members in the slots ``due`` on their validation sets; members sharing a set share the
    forward."""
    by_size: dict[int, list[int]] = {}
    for slot in due:
        by_size.setdefault(members[slots[slot]].settings.validation_size, []).append(slot)
    for group in by_size.values():
        validation = members[slots[group[0]]].validation
        scores = metrics_of(model, task, group, validation.inputs, validation.targets)
        for slot, m in zip(group, scores):
            members[slots[slot]].scored(step, m, lambda slot=slot: model.get_params(slot))


def retire(model: Any, members: list[Member], slots: list[int | None],
           report: Callable[[int, TrialResult], None]) -> None:  # fmt: skip
    """Finish and report the members that are done; their slots become ``None``."""
    for slot, k in enumerate(slots):
        if k is not None and members[k].done:
            report(k, finish(model, members[k], slot))
            slots[slot] = None


def leave(model: Any, slots: list[int | None]) -> bool:
    """Drop the finished members' slots from the model when that pays: once they are at least the
    engine's ``leave_at`` fraction of its slots (0 in PyTorch, where shrinking costs nothing; in
    TensorFlow a fraction computed from the measured cost of retracing for a new member count against
    the steps left). True when the model shrank."""
    dead = sum(k is None for k in slots)
    if not dead or dead < getattr(model, "leave_at", 0.0) * len(slots):
        return False
    model.keep([slot for slot, k in enumerate(slots) if k is not None])
    return True


def finish(model: Any, member: Member, slot: int) -> TrialResult:
    """The member's final result, its test metrics computed in its slot of the model."""

    def test_metrics(test: Batch) -> dict[str, float]:
        return metrics_of(model, member.task, [slot], test.inputs, test.targets)[0]

    return member.finish(test_metrics, lambda params: model.set_params(slot, params))
