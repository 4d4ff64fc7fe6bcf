"""The typed jobs a worker runs (``harness.worker``): the only things the harness runs in a child process.

A job is a small picklable value naming the one framework whose backend its process must have loaded
(``framework``; ``None``: no backend, although the job may import PyTorch, never TensorFlow) and a ``run``
method executed inside that process. ``run(context)`` returns the job's answer (sent back when the job
ends) and may ``context.emit(event)`` along the way (sent back at once: a trial's result, a progress
point). The same job runs unchanged under every executor: a local worker process
(``harness.executors.LocalPool``) or a Dask worker's child process (``harness.dask_executor``).

* ``TrainJob``: train a population of trials (one trial trains solo); emits ``("result", trial_id,
  result_dict)`` as each member finishes and ``("progress", trial_id, step, "validation", loss, metric)``
  at each of its evaluations. Every failure of a trial becomes its result; it returns nothing.
* ``ParityJob``: cross-framework cases (``harness.parity``): layer outputs and gradients, short trainings,
  parameter transfers; returns one dict per case (``{"error": traceback}`` for a case that raised).
* ``SpeedJob``: milliseconds per training step (``harness.speed.step_ms``) for each case.
* ``PreflightJob``: each variant's contract problems (``harness.check``), before a run touches the store.
* ``ProbeJob``: the report's gradient-flow probe (``harness.probes``).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

Emit = Callable[[tuple], None]


@dataclass
class JobContext:
    """What a job sees of its process: the framework's backend (set up once, when the process started;
    ``None`` for a job of no framework), the device, and ``emit`` to send an event back now."""

    backend: Any
    device: str
    emit: Emit


@dataclass(frozen=True)
class TrainJob:
    """Train ``trials`` (JSON texts of ``harness.trial.Trial``, one population) within ``time_limit`` seconds."""

    framework: str
    trials: tuple[str, ...]
    time_limit: float | None = None

    def run(self, context: JobContext) -> None:
        from harness.trial import Trial

        train_job([Trial.from_json(text) for text in self.trials], self.framework, context, self.time_limit)


@dataclass(frozen=True)
class ParityJob:
    """``cases`` of one ``kind`` (``harness.parity.CASES``) in ``framework``."""

    framework: str
    kind: str
    cases: tuple[dict, ...]

    def run(self, context: JobContext) -> list[dict]:
        from harness.parity import run_cases

        return run_cases(context.backend, self.framework, self.kind, list(self.cases))


@dataclass(frozen=True)
class SpeedJob:
    """``harness.speed.step_ms(framework, **case)`` for each case; ``{"ms": ...}`` or ``{"error": ...}`` each."""

    framework: str
    cases: tuple[dict, ...]

    def run(self, context: JobContext) -> list[dict]:
        from harness.speed import step_ms

        return [_guarded(lambda c=case: {"ms": step_ms(self.framework, **c)}) for case in self.cases]


@dataclass(frozen=True)
class PreflightJob:
    """The contract problems of each variant (``harness.check.contract_problems``, then under PyTorch
    autograd where PyTorch is installed): ``{variant_id: [problem, ...]}``. Runs the variants' own code,
    so a step that exits, crashes or hangs costs this process, not the driver."""

    variant_ids: tuple[str, ...]
    variant_hparams: dict = field(default_factory=dict)
    framework: None = None

    def run(self, context: JobContext) -> dict[str, list[str]]:
        from harness.check import preflight_problems

        return preflight_problems(list(self.variant_ids), self.variant_hparams)


@dataclass(frozen=True)
class ProbeJob:
    """The gradient-flow probe (``harness.probes.probe``) for ``spec``; it loads PyTorch itself and says in
    its answer's ``error`` when it cannot."""

    spec: dict
    framework: None = None

    def run(self, context: JobContext) -> dict:
        from harness.probes import probe

        return probe(self.spec)


Job = TrainJob | ParityJob | SpeedJob | PreflightJob | ProbeJob


def _guarded(compute: Callable[[], dict]) -> dict:
    """One case's answer, or its traceback: a failing case must not cost the others."""
    try:
        return compute()
    except Exception:
        return {"error": traceback.format_exc()}


def train_job(trials: list, framework: str, context: JobContext, time_limit: float | None) -> None:
    """Train one population of trials (``harness.population``), emitting each member's result, its code
    fingerprints filled in, as it finishes and each validation point as it is scored. Every failure of a
    trial becomes its result; only ``emit``'s own failure (the connection to the driver) is raised."""
    from harness.fingerprint import code_of
    from harness.population import train_population
    from harness.registry import registry
    from harness.training import failed

    try:
        reg = registry()
        code = code_of(reg.variant_class(trials[0].variant), reg.tasks[trials[0].task])
    except Exception:  # an unknown or broken plugin: train_population reports it as each trial's failure
        code = {}
    sent: set[str] = set()

    def finished(trial, result) -> None:
        result.code = code
        context.emit(("result", trial.id, asdict(result)))
        sent.add(trial.id)

    def scored(trial, step: int, loss: float, metric: float) -> None:
        context.emit(("progress", trial.id, int(step), "validation", float(loss), float(metric)))

    try:
        train_population(trials, framework, context.device, on_result=finished, time_limit=time_limit,
                         on_progress=scored)  # fmt: skip
    except (BrokenPipeError, OSError, EOFError):  # the connection: the driver is gone or stopped us
        raise
    except Exception as e:  # what the population could not turn into results (a plugin broken only here)
        for trial in trials:
            if trial.id not in sent:
                finished(trial, replace(failed(e), population=len(trials)))
