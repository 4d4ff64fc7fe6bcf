"""The training job: one population of trials, trained inside a worker (``harness.workers.job``).

``TrainJob`` emits ``("result", trial_id, result_dict)`` as each member finishes and ``("progress",
trial_id, step, "validation", loss, metric)`` at each of its evaluations. Every failure of a trial becomes
its result; it returns nothing.

The job crosses to the worker as typed values: ``Trial`` dataclasses whose protocol settings the worker
reads as ``Settings`` (``Trial.settings``), checked again on arrival, so a job built by another process
(a Dask client, an older driver) trains nothing it has not checked; a bad setting is that trial's
failure, named.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from harness.trials.trial import Trial
from harness.workers.job import JobContext


@dataclass(frozen=True)
class TrainJob:
    """Train ``trials`` (one population, ``harness.training.grouping``) within ``time_limit`` seconds."""

    framework: str
    trials: tuple[Trial, ...]
    time_limit: float | None = None
    scan: str = "auto"  # --scan: whether a variant with a linear form runs it (harness.cell.scan_choice)

    def run(self, context: JobContext) -> None:
        train_job(list(self.trials), self.framework, context, self.time_limit, self.scan)


def train_job(trials: list[Trial], framework: str, context: JobContext, time_limit: float | None,
              scan: str = "auto") -> None:  # fmt: skip
    """Train one population of trials (``harness.training.population``), emitting each member's result, its code
    fingerprints filled in, as it finishes and each validation point as it is scored. Every failure of a
    trial becomes its result; only ``emit``'s own failure (the connection to the driver) is raised."""
    from harness.plugins.fingerprint import code_of
    from harness.plugins.registry import registry
    from harness.training.population import train_population
    from harness.training.solo import failed

    try:
        reg = registry()
        code = code_of(reg.variant_class(trials[0].variant), reg.task_class(trials[0].task))
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
                         on_progress=scored, scan=scan)  # fmt: skip
    except (BrokenPipeError, OSError, EOFError):  # the connection: the driver is gone or stopped us
        raise
    except Exception as e:  # what the population could not turn into results (a plugin broken only here)
        for trial in trials:
            if trial.id not in sent:
                finished(trial, replace(failed(e), population=len(trials)))
