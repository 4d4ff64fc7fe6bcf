"""What a worker runs (``harness.workers.worker``): the ``Job`` protocol and the context a job sees.

A job is a small picklable value naming the one framework whose backend its process must have loaded
(``framework``; ``None``: no backend, although the job may import PyTorch, never TensorFlow) and a ``run``
method executed inside that process. ``run(context)`` returns the job's answer (sent back when the job
ends) and may ``context.emit(event)`` along the way (sent back at once: a trial's result, a progress
point). The same job runs unchanged under every executor: a local worker process
(``harness.execution.local.LocalPool``) or a Dask worker's child process (``harness.execution.dask_cluster``).

Each job lives beside the code it runs, and the worker knows only this protocol, so nothing the worker
imports imports back:

* ``harness.training.train_job.TrainJob``: train a population of trials;
* ``harness.diagnostics.parity.ParityJob``: cross-framework cases;
* ``harness.diagnostics.speed.SpeedJob``: milliseconds per training step;
* ``harness.diagnostics.roofline.FlopJob`` and ``MatmulJob``: a step's FLOPs, this machine's matrix-product GFLOP/s;
* ``harness.diagnostics.preflight.PreflightJob``: each variant's contract problems, before a run touches the store;
* ``harness.diagnostics.probes.ProbeJob``: the report's gradient-flow probe;
* ``harness.report.drawing.FigureJob`` and ``harness.analysis.importance.ImportanceJob``: a report's figures
  and its hyperparameter importance, in helper processes beside the report's own.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Emit = Callable[[tuple], None]


@dataclass
class JobContext:
    """What a job sees of its process: the framework's backend (set up once, when the process started;
    ``None`` for a job of no framework), the device, and ``emit`` to send an event back now."""

    backend: Any
    device: str
    emit: Emit


class Job(Protocol):
    """A picklable value a worker of ``framework`` runs: ``run(context)`` gives the job's answer."""

    @property
    def framework(self) -> str | None: ...

    def run(self, context: JobContext) -> Any: ...


def guarded(compute: Callable[[], dict]) -> dict:
    """One case's answer, or its traceback: a failing case must not cost the others."""
    try:
        return compute()
    except Exception:
        return {"error": traceback.format_exc()}
