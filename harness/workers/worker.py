"""The framework-isolated worker: the one way the harness runs framework code in a child process.

A ``WorkerProcess`` is a fresh interpreter (multiprocessing ``spawn``: no framework state inherited) that
serves one framework for its whole life — TensorFlow and PyTorch never share a process — with one
intra-op thread (parallelism comes from running several). It loads that framework's backend once, says
``ready``, then runs jobs (``harness.workers.job``) one at a time. Every executor places this worker:
``harness.execution.local.LocalPool`` on this machine, ``harness.execution.dask_cluster`` inside Dask workers;
the parity checks, speed measurements, the contract preflight and the gradient-flow probe use it through
``Workers`` and ``WorkerProcess.call``.

Messages over the pipe. Parent -> worker: a job, or None to stop. Worker -> parent: ``("ready",
environment)`` once (or ``("broken", why)`` when the framework cannot load, and it exits); then for each
job any number of ``("event", event)`` (what the job emits) and one ``("done", answer)``.

A worker whose parent dies (even by SIGKILL) exits within a second: nobody would store its results.
Its stdout and stderr (TensorFlow's start-up lines, warnings) go to ``log`` when one is given, so they do
not break into the driver's progress bar; a worker that dies has the end of its log quoted in the reason.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from harness.trials.protocol import FRAMEWORKS
from harness.workers.job import Job, JobContext

THREAD_VARIABLES = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
    "KMP_BLOCKTIME": "0",
}  # fmt: skip
SHIELDED = {signal.SIGINT, signal.SIGTERM}  # what a worker leaves to the driver (``serve``)
START_TIMEOUT = 300.0  # seconds a worker may take to import its framework and say ready
LOG_TAIL = 1500  # characters of a dead worker's log quoted in the reason


class WorkerError(RuntimeError):
    """A worker could not start (``kind`` "unavailable": its framework cannot load, or it was not ready in
    time), overran a job's time ("timeout"), or died ("died"); the message says why."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


# --- the child side -----------------------------------------------------------------------------------------
def _exit_when_orphaned(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _redirect_output(log: str) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so C++ logging too) to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)


class _Unreadable:
    """Stands in for a job whose message could not be unpickled: running it answers the error. The
    message was read whole, so the worker serves the next job as usual."""

    def __init__(self, error: str) -> None:
        self.error = error

    def run(self, context: JobContext) -> dict:
        return {"error": self.error}


def serve(framework: str | None, device: str, conn: Connection, parent: int, log: str | None,
          env: dict[str, str]) -> None:  # fmt: skip
    """The worker process's main: load ``framework``'s backend, say ready, run jobs until told to stop."""
    # Ctrl-C and a SIGTERM to the process group (a terminal, a batch system ending the job) reach us too: the
    # driver handles them (keeps what finished, stops us). Ignored since the spawn (``children_ignore_stop_signals``).
    for stop_signal in SHIELDED:
        signal.signal(stop_signal, signal.SIG_IGN)
    os.environ.update(THREAD_VARIABLES)
    os.environ.update(env)
    if log:
        _redirect_output(log)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    try:
        backend, environment = None, {}
        if framework is not None:
            from harness.backends import load_backend

            backend = load_backend(framework)
            backend.setup(device)
            environment = backend.environment()
        conn.send(("ready", environment))
    except Exception as e:
        conn.send(("broken", f"{type(e).__name__}: {e}"))
        return
    context = JobContext(backend, device, lambda event: conn.send(("event", event)))
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the pipe: the driver is gone
        try:  # apart from the read, so an OSError while unpickling (a module that cannot load) is answered
            job = pickle.loads(message)
        except Exception as e:  # a job this process cannot unpickle (its class not importable here): say it
            job = _Unreadable(f"the worker could not read its job: {type(e).__name__}: {e}")
        if job is None:
            return
        try:
            answer = job.run(context)
        except (BrokenPipeError, EOFError, OSError):
            return  # the pipe: the driver is gone or stopped us
        except Exception as e:  # a job's own bug: say it, keep serving
            answer = {"error": f"{type(e).__name__}: {e}"}
        try:
            conn.send(("done", answer))
        except (BrokenPipeError, OSError):
            return


# --- the parent side ----------------------------------------------------------------------------------------
@contextmanager
def children_ignore_stop_signals(signals: frozenset[int] | set[int] = SHIELDED) -> Iterator[None]:
    """Processes started inside this block ignore ``SHIELDED`` from their first instruction: a Ctrl-C in the
    second a worker spends importing numpy and its framework (before ``serve`` ignores it) would print a
    ``KeyboardInterrupt`` traceback from each starting worker. An ignored signal is inherited across fork
    and exec (the spawn resets a blocked mask: measured, a worker started with the signals blocked was
    killed by SIGINT), so this process ignores them for the block: a Ctrl-C or SIGTERM arriving in that
    time (milliseconds for a worker; the seconds a local Dask cluster takes to start) is lost. Handlers
    are restored with the signals blocked, so none can interrupt the restore half-way. Only the main
    thread may change handlers; elsewhere (a report's helper started from a thread) children start
    unshielded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    handlers = {s: signal.signal(s, signal.SIG_IGN) for s in signals}
    try:
        yield
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a signal held back meanwhile is delivered now


def exit_reason(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"worker process was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"worker process was killed by signal {-code}"
    return f"worker process exited with code {code}"


class WorkerProcess:
    """One worker process of ``framework`` (``None``: no framework) on ``device``, started at once.

    ``env`` is added to the child's environment (``CUDA_VISIBLE_DEVICES`` pins a worker to one GPU);
    ``log`` receives its output. ``ready`` turns true when its ``("ready", environment)`` arrives (``poll``
    / ``call`` read it); ``call`` runs one job synchronously."""

    def __init__(self, framework: str | None, device: str = "cpu", log: str | Path | None = None,
                 env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.framework, self.device = framework, device
        self.log = str(log) if log else None
        self.ready, self.environment = False, {}
        self.started = time.monotonic()
        context = mp.get_context("spawn")
        self.conn, child = context.Pipe()
        # inherited by the child before it imports numpy or a framework
        os.environ.update(THREAD_VARIABLES)
        self.process = context.Process(
            target=serve, args=(framework, device, child, os.getpid(), self.log, dict(env or {})), daemon=True,
            name=f"rnn-bench-{framework or 'harness'}",
        )  # fmt: skip
        with children_ignore_stop_signals():
            self.process.start()
        child.close()

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def send(self, job: Job) -> None:
        self.conn.send(job)

    def receive(self) -> tuple:
        """The next message; the ``ready`` handshake is taken here. Raises ``EOFError`` when it died."""
        message = self.conn.recv()
        if message[0] == "ready":
            self.ready, self.environment = True, message[1]
        return message

    def reason(self) -> str:
        """Why it died (exit code or signal), with the end of its log when it has one."""
        reason = exit_reason(self.process)
        tail = self.log_tail()
        return f"{reason}; the end of its log ({self.log}):\n{tail}" if tail else reason

    def log_tail(self) -> str:
        if not self.log:
            return ""
        try:
            text = Path(self.log).read_text(errors="replace")
        except OSError:
            return ""
        return text[-LOG_TAIL:].strip()

    def call(self, job: Job, timeout: float | None = None, on_event: Callable[[tuple], None] | None = None) -> Any:
        """Run ``job`` and return its answer, passing its events to ``on_event``. Raises ``WorkerError`` when
        the framework cannot load, the process dies, or (then it is killed) the job overruns ``timeout``
        seconds (the start-up has ``START_TIMEOUT`` of its own)."""
        self.wait_ready()
        self.send(job)
        return self.answer(timeout, on_event)

    def answer(self, timeout: float | None = None, on_event: Callable[[tuple], None] | None = None) -> Any:
        """Wait for the answer of the job sent last (``send``; the ``ready`` handshake, if still to come, is
        taken on the way) and return it, as ``call`` does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._next(deadline, f"the job did not finish within {timeout} s", "timeout")
            if message[0] == "event" and on_event is not None:
                on_event(message[1])
            elif message[0] == "done":
                return message[1]

    def wait_ready(self) -> None:
        """Wait for the ``ready`` handshake (``environment`` is then set). Raises ``WorkerError``."""
        deadline = self.started + START_TIMEOUT
        while not self.ready:
            message = self._next(deadline, f"the worker was not ready after {START_TIMEOUT:.0f} s", "unavailable")
            if message[0] == "broken":
                self.stop(kill=True)
                raise WorkerError(f"framework {self.framework!r} cannot run here: {message[1]}", "unavailable")

    def _next(self, deadline: float | None, overrun: str, kind: str) -> tuple:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([self.conn, self.sentinel], timeout=left)
            if self.conn in ready:
                try:
                    return self.receive()
                except (EOFError, OSError):
                    # the pipe closed: the worker exited (a closed pipe polls readable for ever, so
                    # waiting on it again would spin)
                    self.process.join(timeout=10)
                    if self.process.is_alive():
                        self.stop(kill=True)
                    raise WorkerError(self.reason(), "died" if self.ready else "unavailable") from None
            if not ready:
                self.stop(kill=True)
                raise WorkerError(overrun, kind)
            if not self.process.is_alive() and not self.conn.poll():
                self.process.join()
                raise WorkerError(self.reason(), "died" if self.ready else "unavailable")

    def stop(self, kill: bool = False) -> None:
        """Ask it to stop (or kill it); wait for it to exit."""
        if self.process.is_alive():
            if kill:
                self.process.kill()
            else:
                try:
                    self.conn.send(None)
                except (BrokenPipeError, OSError):
                    self.process.kill()
            self.process.join(timeout=10)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
        self.conn.close()


class Workers:
    """One worker process per framework, reused across calls (a context manager): importing TensorFlow
    costs seconds, so the parity checks, ``rnn-bench check`` and the speed measurements keep theirs.

    ``run({framework: job})`` sends each framework its job at once, so the processes work in parallel,
    and returns ``{framework: answer}``. Raises ``WorkerError`` when a process cannot start or dies."""

    def __init__(self, frameworks: tuple[str, ...] = FRAMEWORKS, device: str = "cpu") -> None:
        self.device = device
        self.processes = {fw: WorkerProcess(fw, device) for fw in frameworks}

    def run(self, jobs: dict[str, Job]) -> dict[str, Any]:
        missing = sorted(set(jobs) - set(self.processes))
        if missing:
            raise ValueError(f"these workers run {sorted(self.processes)}, not {missing}")
        for fw in jobs:
            self.processes[fw].wait_ready()
        for fw, job in jobs.items():
            self.processes[fw].send(job)
        return {fw: self.processes[fw].answer() for fw in jobs}

    def close(self) -> None:
        for process in self.processes.values():
            process.stop()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

