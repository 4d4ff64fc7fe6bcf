"""User plugin files imported first where they cannot end the command: in a worker process.

A file in a folder of ``RNN_BENCH_PLUGINS`` is someone's code, run at import. Python-level failures are
caught in-process (``harness.plugins.registry``: an exception, ``sys.exit``, a Python loop past the time
limit), but ``os._exit``, a segfault in an extension, or a hang inside one C call would end or block the
command itself. So before the command's registry imports them, ``vet_plugin_files`` imports each user
file once in a worker process of no framework (``PluginImportJob``, one file per call, on one worker
while it survives):

* the worker dies (``os._exit``, a signal): the file is broken, "ended its process while importing";
* the import overruns ``RNN_BENCH_IMPORT_TIMEOUT``: the worker is killed, the file is broken, as the
  in-process limit words it;
* anything else (a clean import, or an exception, which the in-process import reports in its own words):
  the file is imported as before.

The verdicts go into ``RNN_BENCH_VETTED_PLUGINS`` (``registry.VETTED_VARIABLE``), which the registry reads
and every process the command starts inherits, so no file is vetted or fatally imported twice. The
shipped catalogue (``tasks/``, ``variants/``) is ours and imported directly. Cost: one worker start when
``RNN_BENCH_PLUGINS`` names any file (docs/architecture.md gives the measured figure), nothing otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.plugins.registry import (
    import_timeout,
    import_user_file,
    read_vetted,
    timed_out,
    user_plugin_files,
    write_vetted,
)
from harness.workers.job import JobContext
from harness.workers.worker import WorkerError, WorkerProcess


@dataclass(frozen=True)
class PluginImportJob:
    """Import one plugin file in this worker; the answer is "" (imported, or raised: the registry will
    report that itself). A file that ends the process or hangs never answers."""

    path: str
    framework: None = None

    def run(self, context: JobContext) -> str:
        try:
            import_user_file(Path(self.path))
        except BaseException:  # noqa: BLE001 (SystemExit too: the in-process import words it)
            pass
        return ""


def vet_plugin_files() -> dict[str, str]:
    """Vet every user plugin file not vetted yet (by this process or an ancestor) and record the
    verdicts in the environment; returns {file: why it is broken} of the newly vetted ones that are."""
    vetted = read_vetted()
    todo = [str(p) for p in user_plugin_files() if str(p) not in vetted]
    if not todo:
        return {}
    broken: dict[str, str] = {}
    limit = import_timeout() or None
    worker: WorkerProcess | None = None
    try:
        for path in todo:
            if worker is None:
                worker = _started()
                if worker is None:  # no worker can start here: the files left are imported in-process, as before
                    break
            try:
                worker.call(PluginImportJob(path), timeout=limit)
                vetted[path] = ""
            except WorkerError as e:
                vetted[path] = broken[path] = _why(e, limit)
                worker = None  # dead or killed: the next file gets a fresh one
    finally:
        if worker is not None:
            worker.stop()
        write_vetted(vetted)  # the verdicts so far, also when a worker could not start for the rest
    return broken


def _started() -> WorkerProcess | None:
    """A worker of no framework, ready; None where none can start (a daemonic process may have no
    children; a machine too loaded to start one in time): a failure that is no plugin's fault."""
    try:
        worker = WorkerProcess(None)
        worker.wait_ready()
        return worker
    except (OSError, AssertionError, WorkerError):
        return None


def _why(error: WorkerError, limit: float | None) -> str:
    if error.kind == "timeout":
        return timed_out(limit)
    reason = str(error).splitlines()[0].replace("worker process ", "")
    return f"ended its process while importing ({reason}; a plugin must not exit or crash at import)"

