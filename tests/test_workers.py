"""The worker process and the Job protocol (harness.workers): every job crosses the process boundary by
pickle, and a job the worker cannot read is answered with an error instead of killing the worker."""

from __future__ import annotations

import operator
import os
import pickle
import signal
from dataclasses import dataclass

import pytest

from harness.diagnostics.parity import ParityJob
from harness.diagnostics.plugin_imports import PluginImportJob
from harness.diagnostics.preflight import PreflightJob
from harness.diagnostics.probes import ProbeJob
from harness.diagnostics.speed import SpeedJob
from harness.training.train_job import TrainJob
from harness.trials.trial import Trial
from harness.workers.job import JobContext
from harness.workers.worker import WorkerError, WorkerProcess


@dataclass(frozen=True)
class EchoJob:
    """Answers its word: the smallest job, for a worker of no framework."""

    word: str
    framework: None = None

    def run(self, context: JobContext) -> str:
        return self.word


@dataclass(frozen=True)
class ExitJob:
    """Ends its worker process with ``code``, as a crash in native code would."""

    code: int
    framework: None = None

    def run(self, context: JobContext) -> None:
        os._exit(self.code)


class UnreadableJob:
    """Pickles fine here, fails to unpickle in the worker (the reduction divides by zero there)."""

    framework = None

    def __reduce__(self):
        return operator.truediv, (1, 0)


class MissingFileJob:
    """Unpickling it opens a file that does not exist: an OSError while reading the job, not a closed pipe."""

    framework = None

    def __reduce__(self):
        return open, ("/nonexistent/rnn-bench/job",)


def every_job():
    trial = Trial("adding", 10, "v", "torch", "cpu", {"hidden_size": 4}, seed=0)
    return [
        TrainJob("torch", (trial,), time_limit=60.0),
        ParityJob("tf", "cell", ({"variant": "v", "hidden_size": 4},)),
        SpeedJob("torch", ({"variant": "v", "batch_size": 2},)),
        PreflightJob(("v", "gru"), {"v": {"hidden_size": 4}}),
        ProbeJob({"variants": ["v"], "task": "adding", "length": 10}),
        PluginImportJob("/plugins/mycell.py"),
    ]


@pytest.mark.parametrize("job", every_job(), ids=lambda job: type(job).__name__)
def test_every_job_survives_the_pickle_a_worker_receives(job):
    back = pickle.loads(pickle.dumps(job))
    assert type(back) is type(job) and back == job
    assert back.framework in (None, "torch", "tf") and callable(back.run)


def test_a_job_the_worker_cannot_read_is_answered_with_an_error_and_the_worker_serves_on():
    worker = WorkerProcess(None)
    try:
        answer = worker.call(UnreadableJob(), timeout=60)
        assert "could not read its job" in answer["error"] and "ZeroDivisionError" in answer["error"]
        assert worker.call(EchoJob("still here"), timeout=60) == "still here"
        answer = worker.call(MissingFileJob(), timeout=60)  # an OSError is not the pipe closing
        assert "could not read its job" in answer["error"] and "FileNotFoundError" in answer["error"]
        assert worker.call(EchoJob("and here"), timeout=60) == "and here"
    finally:
        worker.stop()


def test_a_worker_that_dies_during_a_call_is_reported_with_its_exit_code_not_waited_on():
    """The closed pipe of a dead worker polls readable for ever: ``call`` must say it died, not spin."""
    worker = WorkerProcess(None)
    try:
        assert worker.call(EchoJob("ready"), timeout=60) == "ready"
        with pytest.raises(WorkerError, match="exited with code 3") as died:
            worker.call(ExitJob(3), timeout=60)
        assert died.value.kind == "died"
    finally:
        worker.stop()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_while_a_worker_starts_leaves_it_to_the_driver(stop):
    """A terminal's Ctrl-C (or a batch system's SIGTERM) reaches the whole process group, starting workers
    too: sent the moment the process is spawned, still importing (before ``serve`` could ignore it), it
    must neither kill the worker nor print a traceback; the driver alone decides to stop it."""
    worker = WorkerProcess(None)
    try:
        os.kill(worker.process.pid, stop)
        assert worker.call(EchoJob("still starting"), timeout=60) == "still starting"
        os.kill(worker.process.pid, stop)  # and once it serves
        assert worker.call(EchoJob("serving"), timeout=60) == "serving"
    finally:
        worker.stop()
    assert worker.process.exitcode == 0


@pytest.mark.parametrize("members", [1, 2])  # solo and population
def test_a_bad_setting_that_reaches_a_worker_is_its_trials_failure_named(members):
    """A job may be built by another process (a Dask client, an older driver): the worker checks each
    trial's settings again as it reads them (``Trial.settings``), and a bad one fails its trials with
    the key, the value and the trial, instead of training something unchecked."""
    checked = Trial("adding", 5, "rnn", "torch", "cpu", {"hidden_size": 4}, seed=0)
    assert checked.settings.hidden_size == 4 and "settings" not in vars(pickle.loads(pickle.dumps(checked)))
    bad = {"hidden_size": 4, "max_steps": 2, "eval_every": 1, "validation_size": 8, "test_size": 8, "fused": 1}
    trials = tuple(Trial("adding", 5, "rnn", "torch", "cpu", bad, seed=s) for s in range(members))
    events = []
    TrainJob("torch", trials).run(JobContext(None, "cpu", events.append))
    results = {e[1]: e[2] for e in events if e[0] == "result"}
    assert set(results) == {t.id for t in trials}
    for result in results.values():
        assert result["status"] == "failed" and "seed=0: fused=1 must be true or false" in result["error"]
