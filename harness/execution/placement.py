"""Where a run's workers go: the executor the user chose and how it is set up (``rnn-bench run`` flags).

* ``--executor local`` (the default): ``harness.execution.local.LocalPool``, ``--workers`` processes on this
  machine. With ``--device cuda`` each worker is pinned to one visible GPU (``CUDA_VISIBLE_DEVICES``, the
  least used), and ``--workers-per-gpu K`` starts K workers on each (instead of ``--workers``).
* ``--executor dask``: ``harness.execution.dask_cluster.DaskPool``; a local Dask cluster of ``--workers``
  processes, or with ``--scheduler tcp://HOST:8786`` a running cluster; ``--resources GPU=1`` is asked of
  the scheduler for every job; ``--retries N`` resubmissions after a lost Dask worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from harness.errors import UsageError

EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class Placement:
    """The executor and its settings, as the command line gave them."""

    executor: str = "local"
    workers: int = 1
    scheduler: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    retries: int | None = None  # None: not given (1 under Dask)
    workers_per_gpu: int | None = None
    scheduler_grace: float | None = None  # None: not given (dask_cluster.DEFAULT_GRACE)
    tls: dict[str, str] = field(default_factory=dict)  # cluster_security.TLS_FLAGS' keys: the files given

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise UsageError(f"--executor {self.executor!r} is unknown; valid: {', '.join(EXECUTORS)}")
        if self.workers < 1:
            raise UsageError(f"--workers {self.workers} is impossible; it must be at least 1")
        if self.retries is not None and self.retries < 0:
            raise UsageError(f"--retries {self.retries} is impossible; it must be 0 or more")
        if self.scheduler_grace is not None and not 0 <= self.scheduler_grace < float("inf"):
            raise UsageError(f"--scheduler-grace {self.scheduler_grace} is impossible; it must be seconds >= 0")
        if self.workers_per_gpu is not None and self.workers_per_gpu < 1:
            raise UsageError(f"--workers-per-gpu {self.workers_per_gpu} is impossible; it must be at least 1")
        if self.scheduler_grace is not None and self.executor == "dask" and self.scheduler is None:
            raise UsageError("--scheduler-grace applies to a running cluster (--scheduler tls://HOST:PORT): a local "
                             "Dask cluster's scheduler lives in this process and goes only with it")  # fmt: skip
        local_only = {"--workers-per-gpu": self.workers_per_gpu is not None}
        dask_only = {"--scheduler": self.scheduler is not None, "--resources": bool(self.resources),
                     "--retries": self.retries is not None,
                     "--scheduler-grace": self.scheduler_grace is not None}  # fmt: skip
        wrong = [flag for flag, given in (dask_only if self.executor == "local" else local_only).items() if given]
        if wrong:
            other = "dask" if self.executor == "local" else "local"
            raise UsageError(f"{', '.join(wrong)} applies to --executor {other}, not {self.executor}")

    def check_device(self, device: str) -> None:
        """Refuse settings that make no sense on ``device`` (before any work)."""
        if self.workers_per_gpu is not None and device != "cuda":
            raise UsageError(f"--workers-per-gpu applies to --device cuda, not {device}")


def parse_resources(text: str) -> dict[str, float]:
    """``"GPU=1,MEMORY=8e9"`` -> ``{"GPU": 1.0, "MEMORY": 8e9}`` (Dask worker resources)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, amount = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(amount)
        except ValueError:
            raise UsageError(f"--resources {text!r}: {part!r} is not NAME=AMOUNT (e.g. GPU=1)") from None
        if not out[name.strip()] > 0:
            raise UsageError(f"--resources {text!r}: {part!r} asks for nothing; an amount must be above 0")
    return out


@cache
def visible_gpus(framework: str) -> list[str]:
    """The GPUs ``framework`` sees here, as ``CUDA_VISIBLE_DEVICES`` values for one worker each (asked in a
    worker process: the driver never imports a framework; once per process, the runner asks before any
    work and the executor again). Raises ``UsageError`` when it sees none."""
    from harness.workers.worker import WorkerError, WorkerProcess

    process = WorkerProcess(framework, "cuda")
    try:
        process.wait_ready()
    except WorkerError as e:
        raise UsageError(f"--device cuda: {framework} cannot use a GPU here ({str(e).splitlines()[0]})") from e
    finally:
        process.stop()
    count = int(process.environment.get("gpus", 1))
    inherited = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return inherited[:count] if inherited else [str(i) for i in range(count)]


def check_gpus(frameworks: list[str]) -> None:
    """Refuse ``--device cuda`` (``UsageError``, exit 2) unless each of ``frameworks`` sees a GPU here (asked
    in a worker process; the answer is kept for the executor)."""
    for framework in frameworks:
        visible_gpus(framework)


def make_executor(placement: Placement, device: str, time_limit: float, frameworks: list[str],
                  logs: str | Path, scan: str = "auto") -> Any:  # fmt: skip
    """The executor ``placement`` asks for, ready to ``run`` jobs (``scan``: the run's ``--scan``)."""
    if placement.executor == "dask":
        from harness.execution.cluster_security import tls_security
        from harness.execution.dask_cluster import DEFAULT_GRACE, DaskPool

        grace = DEFAULT_GRACE if placement.scheduler_grace is None else placement.scheduler_grace
        pool = DaskPool(placement.workers, device, time_limit, scheduler=placement.scheduler,
                        resources=placement.resources, retries=1 if placement.retries is None else placement.retries,
                        logs=logs, scan=scan, grace=grace,
                        security=tls_security(placement.scheduler, placement.tls))  # fmt: skip
        pool.connect()  # no scheduler there: exit 2 before the run is recorded
        return pool
    from harness.execution.local import LocalPool

    workers, gpus = placement.workers, None
    if device == "cuda":
        gpus = visible_gpus(frameworks[0])
        if placement.workers_per_gpu is not None:
            workers = placement.workers_per_gpu * len(gpus)
    return LocalPool(workers, device, time_limit, gpus=gpus, logs=logs, scan=scan)
