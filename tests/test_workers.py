"""The worker process and the Job protocol (harness.workers): every job crosses the process boundary by
pickle, and a job the worker cannot read is answered with an error instead of killing the worker."""

from __future__ import annotations

import operator
import os
import pickle
from dataclasses import dataclass

import pytest

from harness.diagnostics.parity import ParityJob
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
        TrainJob("torch", (trial.to_json(),), time_limit=60.0),
        ParityJob("tf", "cell", ({"variant": "v", "hidden_size": 4},)),
        SpeedJob("torch", ({"variant": "v", "batch_size": 2},)),
        PreflightJob(("v", "gru"), {"v": {"hidden_size": 4}}),
        ProbeJob({"variants": ["v"], "task": "adding", "length": 10}),
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
