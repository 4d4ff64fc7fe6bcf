"""Executors: run jobs and hand back each trial's result as it finishes.

A job is a list of trials that train together as one population (``harness.training.population``; a job of one
trial trains solo), sent to a worker as a ``harness.training.train_job.TrainJob``. Every executor has the same
interface, ``run(jobs, on_result, claim=None, on_progress=None)``, and the same guarantees; the runner does
not know which one runs. ``LocalPool`` (here) runs worker processes on this machine
(``harness.workers.worker.WorkerProcess``), each dedicated to one framework and holding one intra-op thread;
``harness.execution.dask_cluster.DaskPool`` places the same workers on a Dask cluster. A free worker takes the
next job of its framework; when its framework has nothing left it is replaced by a worker of the other one. A
worker that dies costs only the members of its job that had not finished (recorded ``failed`` with the exit
reason) and is replaced; results a dying worker sent before it died are kept. The time limit is per job: a
population times its unfinished members out itself between steps (``timeout``); a job still running
``POPULATION_GRACE`` seconds after that (a step that never returns), or a solo trial past the limit, has its
worker killed and its unfinished members recorded ``timeout``.

A framework that cannot start here (not installed, no GPU for ``--device cuda``, workers dying on import)
stops the run with ``FrameworkUnavailable``, recording nothing for its trials: they were never tried, so a
later run must still do them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path

from harness.errors import UsageError
from harness.training.solo import ResultCallback, TrialResult, failed
from harness.training.train_job import TrainJob
from harness.trials.trial import Trial
from harness.workers.worker import START_TIMEOUT, WorkerProcess

ClaimCallback = Callable[[Trial], bool]
ProgressCallback = Callable[[Trial, int, str, float, float], None]  # trial, step, split, loss, metric
MAX_START_FAILURES = 3  # workers of one framework dying in a row before they are ready
POPULATION_GRACE = 30.0  # seconds past the time limit before a population's worker is killed


class FrameworkUnavailable(UsageError):
    """A framework's workers cannot start here (not installed, no GPU for --device cuda, crashing on
    import). Its trials are not recorded: the run stops, keeping what finished, and says why."""


@dataclass
class Slot:
    """One worker process and what it is doing."""

    framework: str
    worker: WorkerProcess
    gpu: str | None = None  # the GPU it is pinned to (CUDA_VISIBLE_DEVICES), if any
    # the members of its job that have not finished, by id; None once the worker said the job is done
    # (only then may it take the next: a "done" arriving after a new job was sent would be misread)
    job: dict[str, Trial] | None = None
    size: int = 1  # how many trials its job had (the population size every member records)
    started: float = 0.0  # when its job was sent, or (not ready yet) when the process started

    @property
    def ready(self) -> bool:
        return self.worker.ready


def job_message(job: list[Trial], time_limit: float, scan: str = "auto") -> TrainJob:
    """The ``TrainJob`` a worker gets for ``job``."""
    return TrainJob(job[0].framework, tuple(job), time_limit, scan)


class LocalPool:
    """Worker processes on this machine, at most ``workers`` at a time. With ``gpus`` (``--device cuda``:
    the visible GPUs' indices) each worker is pinned to one of them (``CUDA_VISIBLE_DEVICES``), the
    least used; ``--workers-per-gpu K`` makes ``workers`` K times their number. ``logs`` is a folder that
    receives each worker's output (``<framework>-<n>.log``)."""

    def __init__(self, workers: int, device: str = "cpu", time_limit: float = 600.0, gpus: list[str] | None = None,
                 logs: str | Path | None = None, scan: str = "auto") -> None:  # fmt: skip
        self.workers = max(1, int(workers))
        self.device, self.time_limit, self.scan = device, float(time_limit), scan
        self.gpus = list(gpus or [])
        self.logs = Path(logs) if logs else None
        self.slots: list[Slot] = []
        self.environments: dict[str, dict] = {}
        self.start_failures: dict[str, int] = {}  # workers of a framework that died before ready
        self.claim: ClaimCallback | None = None
        self.on_progress: ProgressCallback | None = None
        self.started_count = 0

    # --- worker lifecycle ---------------------------------------------------------------------------
    def _start(self, framework: str) -> Slot:
        gpu = min(self.gpus, key=lambda g: sum(s.gpu == g for s in self.slots)) if self.gpus else None
        env = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {}
        self.started_count += 1
        log = None
        if self.logs is not None:
            self.logs.mkdir(parents=True, exist_ok=True)
            log = self.logs / f"{framework}-{self.started_count}.log"
        return Slot(framework, WorkerProcess(framework, self.device, log=log, env=env), gpu, started=time.monotonic())

    @staticmethod
    def _stop(slot: Slot, kill: bool = False) -> None:
        slot.worker.stop(kill)

    def describe(self) -> str:
        """'2 worker process(es)', '8 worker process(es) on 4 GPU(s) (0,1,2,3)'."""
        gpus = f" on {len(self.gpus)} GPU(s) ({','.join(self.gpus)})" if self.gpus else ""
        return f"{self.workers} worker process(es){gpus}"

    def shutdown(self, kill: bool = False) -> None:
        for slot in self.slots:
            self._stop(slot, kill)
        self.slots = []

    # --- scheduling ---------------------------------------------------------------------------------
    def run(self, jobs: list[list[Trial]], on_result: ResultCallback, claim: ClaimCallback | None = None,
            on_progress: ProgressCallback | None = None) -> None:  # fmt: skip
        """Run every job (a list of trials of one framework); ``on_result`` is called in this process as each
        trial finishes, ``on_progress`` at each of a trial's evaluations. ``claim``, when given, is asked
        for each trial just before its job goes to a worker; a trial it refuses (another driver has it) is
        dropped from this run."""
        self.claim, self.on_progress = claim, on_progress
        pending: dict[str, deque[list[Trial]]] = {}
        for job in jobs:
            pending.setdefault(job[0].framework, deque()).append(job)
        try:
            self._loop(pending, on_result)
        finally:
            self.shutdown(kill=True)

    def _pick_framework(self, pending: dict[str, deque]) -> str | None:
        """The framework a new worker should serve: the one with most queued work per worker serving it."""
        serving = {f: sum(s.framework == f for s in self.slots) for f in pending}
        candidates = [f for f, q in pending.items() if q]
        if not candidates:
            return None
        return max(candidates, key=lambda f: (len(pending[f]) / (1 + serving[f]), f))

    def _assign(self, slot: Slot, pending: dict[str, deque]) -> None:
        """Send the worker the next job of its framework, with the members ``claim`` grants."""
        queue = pending[slot.framework]
        while queue:
            job = [t for t in queue.popleft() if self.claim is None or self.claim(t)]
            if job:
                break
        else:
            return
        try:
            slot.worker.send(job_message(job, self.time_limit, self.scan))
        except (BrokenPipeError, OSError):  # it died since it said ready: the job goes back first in line
            queue.appendleft(job)  # (still claimed by us: the claims are asked again, and granted)
            return
        slot.job, slot.size, slot.started = {t.id: t for t in job}, len(job), time.monotonic()

    def _fill(self, pending: dict[str, deque]) -> None:
        """Start workers up to the pool size and give every ready, idle worker a job of its framework.
        A ready worker whose framework has nothing left is stopped; the loop below starts one of the
        other framework if there is work for it."""
        for slot in list(self.slots):
            if slot.job is None and slot.ready and not pending.get(slot.framework):
                self.slots.remove(slot)
                self._stop(slot)
        while len(self.slots) < self.workers:
            framework = self._pick_framework(pending)
            queued = sum(len(q) for q in pending.values())
            busy_or_starting = sum(s.job is not None or not s.ready for s in self.slots)
            if framework is None or busy_or_starting >= queued:
                break
            self.slots.append(self._start(framework))
        for slot in self.slots:
            if slot.ready and slot.job is None and pending.get(slot.framework):
                self._assign(slot, pending)

    def _loop(self, pending: dict[str, deque], on_result: ResultCallback) -> None:
        while any(pending.values()) or any(s.job is not None for s in self.slots):
            self._fill(pending)
            by_conn = {s.worker.conn: s for s in self.slots}
            by_sentinel = {s.worker.sentinel: s for s in self.slots}
            ready = wait(list(by_conn) + list(by_sentinel), timeout=1.0)
            for obj in ready:
                if obj in by_conn:
                    self._receive(by_conn[obj], pending, on_result)
            for obj in ready:
                slot = by_sentinel.get(obj)
                if slot is not None and slot in self.slots and not slot.worker.process.is_alive():
                    self._replace_dead(slot, pending, on_result)
            self._enforce_time_limit(pending, on_result)

    def _receive(self, slot: Slot, pending: dict[str, deque], on_result: ResultCallback) -> None:
        try:
            message = slot.worker.receive()
        except (EOFError, OSError):
            return  # the sentinel tells us it died
        self._handle(slot, message, on_result)

    def _drain(self, slot: Slot, on_result: ResultCallback) -> None:
        """Take every result a worker sent before it died or was stopped: members that finished are kept."""
        while slot.job is not None:
            try:
                if not slot.worker.conn.poll():
                    return
                message = slot.worker.receive()
            except (EOFError, OSError):
                return
            self._handle(slot, message, on_result)

    def _handle(self, slot: Slot, message: tuple, on_result: ResultCallback) -> None:
        kind = message[0]
        if kind == "ready":  # (WorkerProcess.receive has marked it ready)
            self.start_failures[slot.framework] = 0
            self.environments[slot.framework] = message[1]
        elif kind == "broken":  # the framework cannot load here: nothing of it can run
            self.slots.remove(slot)
            self._stop(slot, kill=True)
            raise FrameworkUnavailable(f"framework {slot.framework!r} cannot run here: {message[1]}")
        elif kind == "event" and message[1][0] == "result" and slot.job and message[1][1] in slot.job:
            _, trial_id, result = message[1]
            on_result(slot.job.pop(trial_id), TrialResult(**result))
        elif kind == "event" and message[1][0] == "progress" and slot.job and self.on_progress is not None:
            _, trial_id, step, split, loss, metric = message[1]
            if trial_id in slot.job:
                self.on_progress(slot.job[trial_id], step, split, loss, metric)
        elif kind == "done" and slot.job is not None:  # members without a result are never silently dropped
            self._fail_job(slot, failed(f"the worker's job ended without a result for this trial: {message[1]}"),
                           on_result)  # fmt: skip

    def _replace_dead(self, slot: Slot, pending: dict[str, deque], on_result: ResultCallback) -> None:
        self.slots.remove(slot)
        self._drain(slot, on_result)
        self._stop(slot, kill=True)
        reason = slot.worker.reason()
        if slot.job is not None:
            self._fail_job(slot, failed(f"{reason} while running this trial"), on_result)
        elif not slot.ready:
            self._start_failed(slot.framework, reason)

    def _start_failed(self, framework: str, reason: str) -> None:
        """A worker died (or hung) before it was ready; a few in a row mean the framework cannot start,
        and retrying for ever would hang the run."""
        self.start_failures[framework] = self.start_failures.get(framework, 0) + 1
        if self.start_failures[framework] >= MAX_START_FAILURES:
            raise FrameworkUnavailable(
                f"{MAX_START_FAILURES} {framework} workers in a row died while starting (last: {reason})"
            )

    def _enforce_time_limit(self, pending: dict[str, deque], on_result: ResultCallback) -> None:
        now = time.monotonic()
        for slot in list(self.slots):
            if not slot.ready and now - slot.started > START_TIMEOUT:
                self.slots.remove(slot)
                self._stop(slot, kill=True)
                self._start_failed(slot.framework, f"not ready after {START_TIMEOUT:.0f} s")
                continue
            if slot.job is not None and now - slot.started > self._deadline(slot):
                if slot.worker.conn.poll():  # a result arrived just in time: take it, do not kill it
                    self._receive(slot, pending, on_result)
                    continue
                self.slots.remove(slot)
                self._drain(slot, on_result)
                self._stop(slot, kill=True)
                if slot.job is not None:
                    timeout = failed(f"trial exceeded its time limit of {self.time_limit:.0f} s", status="timeout")
                    self._fail_job(slot, timeout, on_result)

    def _deadline(self, slot: Slot) -> float:
        """Seconds a job may run before its worker is killed. A population times its own members out
        between steps (its clock starts once the worker has set it up), so the kill waits a grace period
        longer: it is for a step that never returns. A solo trial is killed at the limit."""
        return self.time_limit + (POPULATION_GRACE if slot.size > 1 else 0.0)

    @staticmethod
    def _fail_job(slot: Slot, result: TrialResult, on_result: ResultCallback) -> None:
        """The same failure for every unfinished member of the slot's job, each with the job's size."""
        for trial in slot.job.values():
            on_result(trial, replace(result, population=slot.size))
        slot.job = None
