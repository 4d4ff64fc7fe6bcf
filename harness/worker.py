"""One trial in a worker process. A worker serves one framework for its whole life (TensorFlow and
PyTorch never share a process) with one intra-op thread; parallelism comes from running several.

Messages over the pipe (parent -> worker): a trial as JSON, or None to stop.
(worker -> parent): ("ready", environment) once, then ("result", trial_id, TrialResult as dict).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import asdict
from multiprocessing.connection import Connection
from types import ModuleType

THREAD_VARIABLES = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
    "KMP_BLOCKTIME": "0",
}  # fmt: skip


def run_trial(trial, backend: ModuleType):
    """Train one trial with ``backend``; every failure becomes a result, never an exception."""
    from harness.registry import registry
    from harness.training import failed, train

    code: dict[str, str] = {}
    try:
        reg = registry()
        task = reg.task(trial.task)
        variant_cls = reg.variant_class(trial.variant)
        code = code_of(variant_cls, type(task))
        variant = variant_cls(**{k: v for k, v in trial.hparams.items() if k in variant_cls.hyperparameters})
        build = lambda p: backend.build_model(variant, task, trial.hparams, p, trial.device)  # noqa: E731
        result = train(trial, task, variant, build)
    except Exception as e:  # a broken variant or backend must cost one trial, not the run
        result = failed(e)
    result.code = code
    return result


def code_of(variant_cls: type, task_cls: type) -> dict[str, str]:
    """The code fingerprints of what this process runs for a trial (``harness.fingerprint``)."""
    from harness.fingerprint import fingerprint_class

    return {"variant": fingerprint_class(variant_cls), "task": fingerprint_class(task_cls)}


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
        trial = Trial.from_json(message)
        result = run_trial(trial, backend)
        try:
            conn.send(("result", trial.id, asdict(result)))
        except (BrokenPipeError, OSError):
            return
