"""``DaskPool``: the executor that places the harness's workers on a Dask cluster (``--executor dask``).

Without ``scheduler`` it starts a ``dask.distributed.LocalCluster`` of ``workers`` processes (one thread
each) on this machine; with ``scheduler="tcp://HOST:8786"`` it submits to a running cluster whose
workers were started by ``dask worker``, dask-jobqueue (Slurm, PBS) or the Dask Kubernetes operator,
with rnn-bench installed in their environment (docs/cluster.md).

Guarantees, the same as ``harness.execution.local.LocalPool``'s:

* **The driver alone writes the store.** A Dask task trains one job (a population, ``harness.training.train_job.
  TrainJob``) and sends back each member's result; ``on_result`` runs here, in the driver.
* **A worker process never imports both frameworks.** A Dask worker process imports neither: it runs
  each job in a child process of the job's framework (``harness.workers.worker.WorkerProcess``, kept for the
  next job of that framework), so one Dask worker can serve PyTorch and TensorFlow jobs alike.
* **Results as they happen.** Each member's result and each evaluation point is sent to the driver the
  moment it exists (Dask worker events, ``log_event``/``subscribe_topic``), so a finished member is stored
  even if its Dask worker is lost later; the task's return value repeats the results (events are not
  guaranteed delivery), and duplicates are dropped.
* **Lost workers.** A Dask worker that dies (a node lost, a job killed by the batch system) costs its
  job's unfinished members one attempt: they are submitted again, up to ``retries`` times, then
  recorded ``failed`` with the reason; the run goes on. (The local cluster's scheduler gives up on a task
  at its first lost worker, ``allowed-failures = 0``, so that ``retries`` is the one count; a cluster you
  started applies its own ``distributed.scheduler.allowed-failures`` first.) A trial that kills its own
  framework process (a crash in the step) is recorded ``failed`` without a retry, as locally.
* **Time limits.** A job past ``time_limit`` (plus ``POPULATION_GRACE`` for a population, which times
  its members out itself) has its framework process killed and its unfinished members recorded
  ``timeout``.
* **The scheduler's loss.** When a running cluster's scheduler stops answering (it died, the network
  dropped), the driver waits up to ``grace`` seconds (``--scheduler-grace``) for one to answer at the same
  address again, connecting anew; then it submits again every job still in flight (their futures died
  with the scheduler; this costs no retry), and the run goes on. Otherwise it stops with
  ``SchedulerLost`` (exit code 75, "try again later"): every finished trial is stored, the claims are
  released, and the same command resumes once a scheduler is back. A local cluster's scheduler lives in
  this process: its loss ends the run at once the same way.
* **Placement.** ``resources`` (``{"GPU": 1}``) is asked of the scheduler for every job, so GPU work goes
  only to workers started with ``--resources GPU=1``.
* **Claims.** ``claim`` is asked for a job's members just before the job is submitted; at most one job per
  worker thread is in flight, so other drivers sharing the store can still take the rest, and a lost
  worker costs an attempt only to the job it was running (Dask counts every task assigned to a lost
  worker; its own queuing, ``worker-saturation``, does not hold these tasks back).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import traceback
import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.execution import local
from harness.execution.local import ClaimCallback, FrameworkUnavailable, ProgressCallback
from harness.training.solo import ResultCallback, TrialResult, failed
from harness.training.train_job import TrainJob
from harness.trials.trial import Trial
from harness.workers.worker import WorkerError, WorkerProcess, children_ignore_stop_signals

TOPIC = "rnn-bench"
DEFAULT_GRACE = 60.0  # seconds a lost scheduler may take to come back (--scheduler-grace)


class SchedulerLost(UsageError):
    """The Dask scheduler stopped answering for longer than the grace period. Finished trials are stored,
    the rest were never recorded: the same command resumes (exit 75, EX_TEMPFAIL: try again later)."""

    exit_code = 75


class _SchedulerGone(Exception):
    """Raised inside the loop the moment the client finds itself without a scheduler."""

# --- the Dask worker's side ---------------------------------------------------------------------------------
DAEMONIC = ("this Dask worker is a daemonic process, which may not start the framework processes rnn-bench "
            "runs jobs in: start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False (docs/cluster.md)")
# (framework, device, thread) -> this Dask worker's child: one per thread, since a Dask worker with several
# threads runs several jobs at once, and two jobs must never share one child's pipe
_PROCESSES: dict[tuple[str, str, int], WorkerProcess] = {}


def _log_path(framework: str, logs: str | None) -> Path:
    """``<logs>/<framework>-<dask worker pid>.log`` (the run's log folder, where this node can write it: the
    driver's machine, a shared file system), else the Dask worker's own local directory."""
    from distributed import get_worker

    if logs:
        try:
            Path(logs).mkdir(parents=True, exist_ok=True)
            return Path(logs) / f"{framework}-{os.getpid()}.log"
        except OSError:
            pass
    return Path(get_worker().local_directory) / f"rnn-bench-{framework}.log"


def _process_for(framework: str, device: str, logs: str | None) -> WorkerProcess:
    """This Dask worker's process of ``framework``: started on first use, again when it died, and anew for a
    new run (its output then goes to the new run's log folder)."""
    log = str(_log_path(framework, logs))
    key = (framework, device, threading.get_ident())
    process = _PROCESSES.get(key)
    if process is not None and (not process.process.is_alive() or process.log != log):
        process.stop()
        process = None
    if process is None:
        process = _PROCESSES[key] = WorkerProcess(framework, device, log=log)
    return process


def run_on_dask_worker(job: TrainJob, device: str, deadline: float | None, topic: str,
                       logs: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A Dask task: run ``job`` in this Dask worker's process of the job's framework. Returns ``{"results":
    {trial_id: result dict}, "environment": ..., "error": None | (kind, message)}`` where ``kind`` is
    ``"unavailable"`` (the framework cannot load here), ``"timeout"`` or ``"died"`` (the framework process
    died: the trial crashed it)."""
    from distributed import get_worker

    worker = get_worker()
    results: dict[str, dict] = {}

    def forward(event: tuple) -> None:
        if event[0] == "result":
            results[event[1]] = event[2]
        worker.log_event(topic, {"event": list(event)})

    if multiprocessing.current_process().daemon:
        return {"results": {}, "environment": {}, "error": ("unavailable", DAEMONIC)}
    process = _process_for(job.framework, device, logs)
    try:
        process.call(job, timeout=deadline, on_event=forward)
    except WorkerError as e:
        _PROCESSES.pop((job.framework, device, threading.get_ident()), None)
        return {"results": results, "environment": process.environment, "error": (e.kind, str(e))}
    except Exception:  # our own bug, not a lost worker: said, never retried
        return {"results": results, "environment": process.environment, "error": ("failed", traceback.format_exc())}
    return {"results": results, "environment": process.environment, "error": None}


def _worker_resources(dask_scheduler: Any) -> dict[str, dict]:
    """Run on the scheduler: each worker's resources (every worker, whatever the Dask version)."""
    return {address: dict(ws.resources) for address, ws in dask_scheduler.workers.items()}


# --- the driver's side --------------------------------------------------------------------------------------
@dataclass
class Submitted:
    """A job in flight: its members without a result yet, its size, and its attempts so far."""

    framework: str
    members: dict[str, Trial]
    size: int
    attempt: int = 1
    lost: list[str] = field(default_factory=list)  # why each earlier attempt was lost


class DaskPool:
    """Run jobs on a Dask cluster: a local one of ``workers`` processes, or the one at ``scheduler``."""

    def __init__(self, workers: int, device: str = "cpu", time_limit: float = 600.0, scheduler: str | None = None,
                 resources: dict[str, float] | None = None, retries: int = 1,
                 logs: str | Path | None = None, scan: str = "auto", grace: float = DEFAULT_GRACE,
                 security: Any = None) -> None:  # fmt: skip
        if retries < 0:
            raise UsageError(f"--retries {retries} is impossible; it must be 0 or more")
        self.grace = float(grace)
        self.security = security  # distributed.Security for a tls:// scheduler (harness.execution.cluster_security)
        self.workers, self.device, self.time_limit = max(1, int(workers)), device, float(time_limit)
        self.scheduler, self.resources, self.retries = scheduler, dict(resources or {}), int(retries)
        self.logs = Path(logs) if logs else None
        self.scan = scan  # --scan, for each TrainJob
        self.environments: dict[str, dict] = {}
        self.topic = f"{TOPIC}-{uuid.uuid4().hex[:8]}"
        self.client = self.cluster = None

    # --- the cluster ----------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Start the local cluster, or connect to the scheduler (``UsageError`` when none answers)."""
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            # The scheduler lives in this process: a task whose worker dies fails at once (retries is the one
            # count), and its workers, restarted ones too, are non-daemonic so that they can start the
            # framework processes jobs run in. Set for this process's life: the nanny reads it at each restart.
            dask.config.set({"distributed.scheduler.allowed-failures": 0, "distributed.worker.daemon": False})
            # Ctrl-C reaches the whole process group; the driver handles it (keeps what finished, closes the
            # cluster): its workers start ignoring it, so they print no traceback of it. (Not SIGTERM: Dask
            # stops its own processes with it.)
            with children_ignore_stop_signals({signal.SIGINT}):
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, resources=self.resources or None,
                                            silence_logs=logging.ERROR)  # fmt: skip
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout="10s", heartbeat_interval="1s", security=self.security)
            except ValueError as e:  # not an address: "foo", "tcp://host" without its port, "http://..."
                raise UsageError(f"--scheduler {self.scheduler!r} is not a scheduler address ({e}); give "
                                 "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786") from e
            except OSError as e:
                raise UsageError(f"--scheduler {self.scheduler}: no Dask scheduler answers there ({e}); start one "
                                 "with 'dask scheduler' or leave --scheduler out for a local cluster") from e
            self._check_resources()
        self._log_to_file()

    def _check_resources(self) -> None:
        """Refuse ``resources`` that no worker of a running cluster offers: its jobs would wait for ever. (A
        cluster with no worker yet, one that is still scaling up, is given the benefit of the doubt.)"""
        offered = list(self.client.run_on_scheduler(_worker_resources).values())
        if offered and self.resources and not any(all(r.get(k, 0) >= v for k, v in self.resources.items())
                                                  for r in offered):  # fmt: skip
            have = sorted({k for r in offered for k in r}) or ["none"]
            self.shutdown()
            wanted = ",".join(f"{k}={v:g}" for k, v in self.resources.items())
            raise UsageError(f"--resources {wanted}: no worker of the cluster at {self.scheduler} offers that "
                             f"(its workers' resources: {', '.join(have)}); start workers with "
                             f"'dask worker {self.scheduler} --resources {wanted}' (docs/cluster.md)")

    def _log_to_file(self) -> None:
        """Dask's own log lines (a worker restarted, a task failed) go to ``dask.log`` in the run's log folder,
        not between the progress bar's lines; we say what matters in each trial's error."""
        if self.logs is None:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.logs / "dask.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        # Dask's logging configuration gives some child loggers (distributed.client: its reconnect errors)
        # console handlers of their own: theirs go, and they pass their lines up to the two roots
        names = [n for n in list(logging.root.manager.loggerDict) if n.split(".")[0] in ("distributed", "dask")]
        for name in sorted({"distributed", "dask", *names}):
            logger = logging.getLogger(name)
            for old in [h for h in logger.handlers if isinstance(h, logging.StreamHandler)]:
                logger.removeHandler(old)  # Dask's console handler, or an earlier run's file
            if name in ("distributed", "dask"):
                logger.addHandler(handler)
                logger.propagate = False
            else:
                logger.propagate = True
        self._log_handler = handler

    def shutdown(self) -> None:
        handler, self._log_handler = getattr(self, "_log_handler", None), None
        if handler is not None:  # this run's dask.log: closed, so that runs in one process do not pile them up
            for name in ("distributed", "dask"):
                logging.getLogger(name).removeHandler(handler)
            handler.close()
        self._close_client()

    def _close_client(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def slots(self) -> int:
        """Jobs the cluster can run at once: its workers' threads (at least 1, for a cluster still starting)."""
        return max(1, sum(self.client.nthreads().values()))  # (scheduler_info() lists only 5 workers in some versions)

    def describe(self) -> str:
        if self.scheduler:
            return f"the Dask cluster at {self.scheduler} ({self.slots()} worker thread(s) now)"
        return f"a local Dask cluster of {self.workers} worker(s)"

    # --- scheduling -----------------------------------------------------------------------------------------
    def run(self, jobs: list[list[Trial]], on_result: ResultCallback, claim: ClaimCallback | None = None,
            on_progress: ProgressCallback | None = None) -> None:  # fmt: skip
        """Run every job; ``on_result`` / ``on_progress`` are called in this process (see the module docstring)."""
        if self.client is None:
            self.connect()
        events: queue.Queue = queue.Queue()
        self.client.subscribe_topic(self.topic, lambda event: events.put(event[1]))
        try:
            self._loop(list(jobs), on_result, claim, on_progress, events)
        finally:
            if self._connected():
                self.client.unsubscribe_topic(self.topic)
            self._close_quietly()
            self.shutdown()  # the log handler (the client is closed already)

    def _deadline(self, size: int) -> float:
        return self.time_limit + (local.POPULATION_GRACE if size > 1 else 0.0)

    def _submit(self, members: list[Trial], size: int) -> Any:
        job = local.job_message(members, self.time_limit, self.scan)
        return self.client.submit(run_on_dask_worker, job, self.device, self._deadline(size), self.topic,
                                  str(self.logs) if self.logs else None, pure=False, resources=self.resources or None,
                                  key=f"rnn-bench-{uuid.uuid4().hex}")  # fmt: skip

    def _loop(self, pending: list[list[Trial]], on_result: ResultCallback, claim: ClaimCallback | None,
              on_progress: ProgressCallback | None, events: queue.Queue) -> None:  # fmt: skip
        flight: dict[Any, Submitted] = {}
        by_trial: dict[str, Submitted] = {}
        while pending or flight:
            try:
                self._step(pending, flight, by_trial, on_result, claim, on_progress, events)
            except Exception as e:  # noqa: BLE001 (what a lost connection raises depends on where it is noticed)
                if not isinstance(e, _SchedulerGone) and self._connected():
                    raise  # our own error, with a scheduler still there
                self._take_events(events, by_trial, on_result, on_progress)  # results that made it before
                self._reconnect(f"{type(e).__name__}: {e}".splitlines()[0], events)
                stranded = list(flight.values())
                flight.clear()
                for sub in stranded:  # their futures died with the scheduler: again, costing no retry
                    if sub.members:
                        flight[self._submit(list(sub.members.values()), sub.size)] = sub

    def _step(self, pending: list[list[Trial]], flight: dict, by_trial: dict[str, Submitted],
              on_result: ResultCallback, claim: ClaimCallback | None, on_progress: ProgressCallback | None,
              events: queue.Queue) -> None:  # fmt: skip
        """Submit what the cluster has room for, wait a second for a job to end, and take what arrived."""
        from distributed import wait

        if not self._connected():  # noticed at once (the scheduler's connection closed), not after a timeout
            raise _SchedulerGone("the client lost its scheduler")
        while pending and len(flight) < self.slots():
            members = [t for t in pending.pop(0) if claim is None or claim(t)]
            if members:
                sub = Submitted(members[0].framework, {t.id: t for t in members}, len(members))
                try:
                    future = self._submit(members, len(members))
                except Exception:
                    pending.insert(0, members)  # claimed, not sent: after a reconnect, again (claims are ours)
                    raise
                flight[future] = sub
                by_trial.update(dict.fromkeys(sub.members, sub))
        try:
            done = wait(list(flight), timeout=1.0, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        if not self._connected():
            raise _SchedulerGone("the client lost its scheduler")
        self._take_events(events, by_trial, on_result, on_progress)
        for future in done:
            self._finished(future, flight.pop(future), flight, by_trial, on_result)

    def _connected(self) -> bool:
        return self.client is not None and self.client.status == "running"

    def _reconnect(self, why: str, events: queue.Queue) -> None:
        """Connect anew to a running cluster's scheduler within ``grace`` seconds, or raise ``SchedulerLost``."""
        import time

        from distributed import Client

        deadline = time.monotonic() + (self.grace if self.scheduler else 0.0)
        where = self.scheduler or "the local cluster"
        self._close_quietly()
        while time.monotonic() < deadline:
            try:
                self.client = Client(self.scheduler, timeout="5s", heartbeat_interval="1s", security=self.security)
            except OSError:
                time.sleep(1.0)
                continue
            self.client.subscribe_topic(self.topic, lambda event: events.put(event[1]))
            return
        waited = f"; none answered there for {self.grace:g} s (--scheduler-grace)" if self.scheduler else ""
        raise SchedulerLost(f"the Dask scheduler at {where} was lost ({why}){waited}")

    def _close_quietly(self) -> None:
        """Close a client (and a local cluster) whose scheduler is gone, without its errors; the log stays."""
        try:
            self._close_client()
        except Exception:  # noqa: BLE001 (closing what is already broken)
            self.client = self.cluster = None

    def _take_events(self, events: queue.Queue, by_trial: dict[str, Submitted], on_result: ResultCallback,
                     on_progress: ProgressCallback | None) -> None:  # fmt: skip
        while True:
            try:
                message = events.get_nowait()
            except queue.Empty:
                return
            event = message.get("event", [])
            sub = by_trial.get(event[1]) if len(event) > 1 else None
            if sub is None or event[1] not in sub.members:
                continue  # a member already stored (its result came twice), or another run's
            if event[0] == "result":
                self._store(sub, event[1], event[2], by_trial, on_result)
            elif event[0] == "progress" and on_progress is not None:
                on_progress(sub.members[event[1]], *event[2:])

    @staticmethod
    def _store(sub: Submitted, trial_id: str, result: dict, by_trial: dict[str, Submitted],
               on_result: ResultCallback) -> None:  # fmt: skip
        trial = sub.members.pop(trial_id)
        by_trial.pop(trial_id, None)
        on_result(trial, TrialResult(**result))

    def _finished(self, future: Any, sub: Submitted, flight: dict, by_trial: dict[str, Submitted],
                  on_result: ResultCallback) -> None:  # fmt: skip
        """A task ended: store what it returned; fail, time out or resubmit the members still without a result."""
        try:
            answer = future.result()
        except Exception as e:  # the Dask worker was lost (KilledWorker), or the cluster went away: not the
            # trial's fault (run_on_dask_worker returns every error of its own)
            # The scheduler, not a worker: nothing is charged to these trials. We never cancel a future, so a
            # cancelled one died with a scheduler the client may already have reconnected to by itself.
            if not self._connected() or isinstance(e, CancelledError):
                flight[future] = sub
                raise _SchedulerGone(str(e)) from e
            self._lost(sub, f"{type(e).__name__}: {e}", flight, by_trial, on_result)
            return
        if answer["environment"]:
            self.environments.setdefault(sub.framework, answer["environment"])
        for trial_id, result in answer["results"].items():
            if trial_id in sub.members:
                self._store(sub, trial_id, result, by_trial, on_result)
        if not sub.members:
            return
        kind, message = answer["error"] or ("died", "the job ended without a result for these members")
        if kind == "unavailable":
            raise FrameworkUnavailable(message)
        status = "timeout" if kind == "timeout" else "failed"
        reason = (f"trial exceeded its time limit of {self.time_limit:.0f} s" if kind == "timeout"
                  else f"{message} while running this trial")  # fmt: skip
        self._fail(sub, failed(reason, status=status), by_trial, on_result)

    def _lost(self, sub: Submitted, why: str, flight: dict, by_trial: dict[str, Submitted],
              on_result: ResultCallback) -> None:  # fmt: skip
        sub.lost.append(why.splitlines()[0])
        if not sub.members:
            return
        if sub.attempt <= self.retries:
            retry = Submitted(sub.framework, dict(sub.members), sub.size, sub.attempt + 1, sub.lost)
            flight[self._submit(list(retry.members.values()), sub.size)] = retry
            by_trial.update(dict.fromkeys(retry.members, retry))
            return
        reason = (f"the Dask worker running this trial was lost {len(sub.lost)} time(s) (--retries "
                  f"{self.retries}); last: {sub.lost[-1]}")  # fmt: skip
        self._fail(sub, failed(reason), by_trial, on_result)

    @staticmethod
    def _fail(sub: Submitted, result: TrialResult, by_trial: dict[str, Submitted], on_result: ResultCallback) -> None:
        for trial_id in list(sub.members):
            trial = sub.members.pop(trial_id)
            by_trial.pop(trial_id, None)
            on_result(trial, replace(result, population=sub.size))

