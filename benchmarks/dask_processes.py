"""A Dask cluster of separate processes, as `dask scheduler` and `dask worker` start them on a real cluster:
its scheduler can be killed and started again on the same port, which a ``LocalCluster`` (whose
scheduler lives in the process that made it) cannot show. Used by the fault campaign
(``benchmarks/faults.py``) and the scheduler-loss tests (``tests/test_dask.py``).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SeparateCluster:
    """A scheduler and one worker (``threads`` threads, non-daemonic: it starts framework processes), each
    its own process, logging into ``folder``. ``extra`` arguments go to both (TLS settings)."""

    def __init__(self, env: dict[str, str], folder: Path, threads: int = 1, protocol: str = "tcp",
                 extra: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.env = {**env, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self.folder, self.port, self.threads, self.extra = Path(folder), free_port(), threads, tuple(extra)
        self.address = f"{protocol}://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def _start(self, module: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{module.rsplit('.', 1)[-1]}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        return subprocess.Popen([sys.executable, "-m", module, *args, "--no-dashboard", *self.extra], env=self.env,
                                cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def start(self, client_options: dict | None = None) -> None:
        """A scheduler (waited for until it answers), then a fresh worker: a Dask worker closes itself when
        its scheduler goes."""
        from distributed import Client

        self.kill_scheduler()
        protocol = () if self.address.startswith("tcp://") else ("--protocol", self.address.split("://")[0])
        self.scheduler = self._start("distributed.cli.dask_scheduler", "--port", str(self.port), *protocol)
        deadline = time.monotonic() + 60
        while True:
            try:
                Client(self.address, timeout="2s", **(client_options or {})).close()
                break
            except OSError:
                if self.scheduler.poll() is not None or time.monotonic() > deadline:
                    where = f"the scheduler at {self.address}"
                    raise RuntimeError(f"{where} did not start (logs in {self.folder})") from None
                time.sleep(0.2)
        self.stop_worker()
        self.worker = self._start("distributed.cli.dask_worker", self.address, "--nthreads", str(self.threads))

    def alive(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.scheduler, self.worker))

    def kill_scheduler(self) -> None:
        if self.scheduler is not None and self.scheduler.poll() is None:
            self.scheduler.kill()
            self.scheduler.wait()

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait()

    def stop(self) -> None:
        self.stop_worker()
        self.kill_scheduler()
