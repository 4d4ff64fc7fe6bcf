"""Trials in a worker process. A worker serves one framework for its whole life (TensorFlow and
PyTorch never share a process) with one intra-op thread; parallelism comes from running several.

Messages over the pipe (parent -> worker): a job, ``(time_limit, [trial JSON, ...])`` (one population,
``harness.population``; one trial trains solo), or None to stop.
(worker -> parent): ("ready", environment) once, then ("result", trial_id, TrialResult as dict) for each
member of a job as it finishes.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from multiprocessing.connection import Connection

THREAD_VARIABLES = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
    "KMP_BLOCKTIME": "0",
}  # fmt: skip


def run_job(trials: list, framework: str, device: str, time_limit: float | None, send: Callable) -> None:
    """Train one job, a population of trials of one cell (``harness.population``; a job of one trains
    solo), calling ``send(trial, result)`` as each member finishes, its code fingerprints filled in.
    Every failure of a trial becomes its result; only ``send``'s own failure (the pipe) is raised."""
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
        send(trial, result)
        sent.add(trial.id)

    try:
        train_population(trials, framework, device, on_result=finished, time_limit=time_limit)
    except (BrokenPipeError, OSError):  # the pipe: the runner is gone or stopped us
        raise
    except Exception as e:  # what the population could not turn into results (a plugin broken only here)
        for trial in trials:
            if trial.id not in sent:
                finished(trial, replace(failed(e), population=len(trials)))


def _exit_when_orphaned(parent: int) -> None:
    """If the runner dies (even by SIGKILL), stop: nobody would store our result."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def worker_main(framework: str, device: str, conn: Connection, parent: int) -> None:
    # Ctrl-C reaches the whole process group: the runner handles it (keeps what finished, kills us).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(THREAD_VARIABLES)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    from harness.backends import load_backend
    from harness.trial import Trial

    try:
        backend = load_backend(framework)
        backend.setup(device)
        conn.send(("ready", backend.environment()))
    except Exception as e:
        conn.send(("broken", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        time_limit, texts = message
        trials = [Trial.from_json(text) for text in texts]

        def send(trial: Trial, result) -> None:
            conn.send(("result", trial.id, asdict(result)))

        try:
            run_job(trials, framework, device, time_limit, send)
        except (BrokenPipeError, OSError):
            return
