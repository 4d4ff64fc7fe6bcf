"""Discovery of tasks and variants: every ``*.py`` in ``tasks/`` and ``variants/`` is imported and its
``Task`` / ``Variant`` subclasses with an ``id`` are registered. Adding one is dropping a file in.

A file that fails to import is reported by its name (``registry.broken_files``) and the others still
work: whatever it raises, ``SystemExit`` (``sys.exit`` at import) included, since a plugin must not
end the program. Only Ctrl-C (``KeyboardInterrupt``) goes through. Two classes claiming one id (or
alias) is an error naming both files. A task declaring a loss the backends cannot train
(``harness.losses.TRAINABLE_LOSSES``) makes its file broken, with the value and what is allowed. Extra folders of
plugin files can be named in ``RNN_BENCH_PLUGINS`` (``os.pathsep``-separated).

A plugin file must finish importing within ``RNN_BENCH_IMPORT_TIMEOUT`` seconds (default 30; 0: no
limit), else it is reported broken ("did not finish importing within N s") and the others still work.
The limit is a SIGALRM timer, so it applies where the registry is first loaded in a process's main
thread (the API, benchmark workers) and only to Python code: a file blocked inside one C call is
interrupted when that call returns. The commands go further: they import the user's files first in a
worker process (``harness.diagnostics.plugin_imports``), so a file that exits the process, crashes it
or blocks in C costs that file. Every verdict of a file that must not be imported again (it hung here,
or ended or blocked that worker) goes into ``RNN_BENCH_VETTED_PLUGINS``, which the processes started
later inherit: they skip those files instead of meeting them again.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from harness.errors import UsageError, unknown_name
from harness.losses import TRAINABLE_LOSSES
from harness.plugins.task_names import canonical_task_name, check_task_parameters, split_task_name
from harness.task import Task
from harness.variant import Variant

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_VARIABLE = "RNN_BENCH_IMPORT_TIMEOUT"
DEFAULT_IMPORT_TIMEOUT = 30.0  # seconds; importing a framework at the top of a plugin takes a few
#: {user plugin file: "" (imports) or why it is broken}, as vetted in a child process by the command
#: (``harness.diagnostics.plugin_imports``) and inherited by every process it starts
VETTED_VARIABLE = "RNN_BENCH_VETTED_PLUGINS"


class DuplicateIdError(UsageError):
    """Two plugin files claim the same id."""


class Registry:
    def __init__(self) -> None:
        self.tasks: dict[str, type[Task]] = {}
        self.variants: dict[str, type[Variant]] = {}
        self.aliases: dict[str, str] = {}
        self.broken_files: dict[str, str] = {}  # file -> error text

    # --- lookup -------------------------------------------------------------------------------------
    def task(self, name: str, where: str = "") -> Task:
        """The task ``name`` names, made with the parameters it carries (``harness.plugins.task_names``)."""
        cls = self.task_class(name, where)
        base, params = split_task_name(name, where)
        check_task_parameters(cls, base, params, where)
        return cls(**params)

    def task_class(self, name: str, where: str = "") -> type[Task]:
        """The class of the task ``name`` names (its parameters aside)."""
        base, _ = split_task_name(name, where)
        if base not in self.tasks:
            raise unknown_name("task", base, self.tasks, where)
        return self.tasks[base]

    def knows_task(self, name: str) -> bool:
        """Whether ``name`` names a task of this registry (its parameters unchecked)."""
        try:
            return split_task_name(name)[0] in self.tasks
        except UsageError:
            return False

    def canonical_task(self, name: str, where: str = "") -> str:
        """``name`` in its one canonical spelling (``harness.plugins.task_names.canonical_task_name``)."""
        return canonical_task_name(self.task_class(name, where), name, where)

    def canonical_variant(self, name: str, where: str = "") -> str:
        name = self.aliases.get(name, name)
        if name not in self.variants:
            hint = self._broken_hint(name)
            err = unknown_name("variant", name, list(self.variants) + list(self.aliases), where)
            raise UsageError(f"{err}{hint}") if hint else err
        return name

    def variant_class(self, name: str, where: str = "") -> type[Variant]:
        return self.variants[self.canonical_variant(name, where)]

    def variant(self, name: str, where: str = "", **hparams) -> Variant:
        return self.variant_class(name, where)(**hparams)

    def _broken_hint(self, name: str) -> str:
        files = [f for f in self.broken_files if Path(f).stem == name]
        return (
            f" (the file {files[0]} exists but failed to import: {self.broken_files[files[0]].splitlines()[-1]})"
            if files
            else ""
        )

    # --- discovery ----------------------------------------------------------------------------------
    def load_folder(self, folder: Path, package: str | None) -> None:
        """Register the tasks and variants of every ``*.py`` in ``folder``; a file that fails to import
        (raises anything but KeyboardInterrupt, or exceeds the import time limit) goes to ``broken_files``."""
        limit = import_timeout()
        for path in plugin_files(folder):
            module = self._import_or_report(path, package, limit)
            if module is None:
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or not getattr(cls, "id", ""):
                    continue
                if issubclass(cls, Variant):
                    self._add_variant(cls, path)
                elif issubclass(cls, Task):
                    self._add_task(cls, path)

    def _import_or_report(self, path: Path, package: str | None, limit: float) -> ModuleType | None:
        """The plugin file's module, or None with the reason in ``broken_files``."""
        why = read_vetted().get(str(path))
        if why:  # it ended or blocked the process that imported it first (a child, or a parent): not again
            self.broken_files[str(path)] = why
            return None
        try:
            with _time_limit(limit):
                return _import(path, package)
        except KeyboardInterrupt:  # the user's Ctrl-C, not the file's fault
            raise
        except ImportTimedOut as e:
            self.broken_files[str(path)] = str(e)
            write_vetted({**read_vetted(), str(path): f"{e} (in the process that first imported it)"})
        except SystemExit as e:
            self.broken_files[str(path)] = f"called sys.exit({e.code!r}) while importing (a plugin must not exit)"
        except BaseException:
            self.broken_files[str(path)] = traceback.format_exc(limit=3)
        return None

    def _add_task(self, cls: type[Task], path: Path) -> None:
        if cls.id in self.tasks:
            raise DuplicateIdError(f"task id {cls.id!r} is claimed by {self.tasks[cls.id].source_file} and {path}")
        problem = loss_problem(cls)
        if problem:  # the backends could not train it: the file is broken, the others still work
            self.broken_files[str(path)] = problem
            return
        cls.source_file = str(path)
        self.tasks[cls.id] = cls

    def _add_variant(self, cls: type[Variant], path: Path) -> None:
        for name in (cls.id, *cls.aliases):
            owner = self.variants.get(name) or self.variants.get(self.aliases.get(name, ""))
            if owner is not None:
                raise DuplicateIdError(
                    f"variant id {name!r} is claimed by {owner.source_file} ({owner.__name__}) "
                    f"and {path} ({cls.__name__})"
                )
        cls.source_file = str(path)
        self.variants[cls.id] = cls
        for alias in cls.aliases:
            self.aliases[alias] = cls.id


def loss_problem(cls: type[Task]) -> str:
    """Why the backends cannot train ``cls``'s declared loss (``harness.losses.TRAINABLE_LOSSES``), or ""."""
    allowed = TRAINABLE_LOSSES.get(cls.loss_at)
    if allowed is None:
        return f"task {cls.id!r} declares loss_at = {cls.loss_at!r}; allowed: {', '.join(TRAINABLE_LOSSES)}"
    if cls.loss not in allowed:
        return (f"task {cls.id!r} declares loss = {cls.loss!r} with loss_at = {cls.loss_at!r}; "
                f"allowed there: {', '.join(allowed)}")  # fmt: skip
    return ""


def _import(path: Path, package: str | None) -> ModuleType:
    """Import a plugin file: as ``package.stem`` when it lies in our package, else by its path."""
    if package is not None:
        return importlib.import_module(f"{package}.{path.stem}")
    name = f"rnn_bench_plugin_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # as importlib does: no half-imported module left behind
        raise
    return module


def import_user_file(path: Path) -> ModuleType:
    """Import a user plugin file (one of ``RNN_BENCH_PLUGINS``'s folders) by its path."""
    return _import(path, None)


def plugin_files(folder: Path) -> list[Path]:
    """A folder's plugin files, in the order discovery imports them (``_``-prefixed files are not plugins)."""
    return [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def user_folders() -> list[Path]:
    """The folders ``RNN_BENCH_PLUGINS`` names (``os.pathsep``-separated): the user's, not the catalogue."""
    return [Path(f) for f in os.environ.get("RNN_BENCH_PLUGINS", "").split(os.pathsep) if f]


def user_plugin_files() -> list[Path]:
    return [p for folder in user_folders() for p in plugin_files(folder)]


def timed_out(seconds: float) -> str:
    """What a plugin file that did not finish importing within the limit is reported with."""
    return (f"did not finish importing within {seconds:g} s (limit set by {TIMEOUT_VARIABLE}); does it loop, "
            "wait or read input at import?")  # fmt: skip


def read_vetted() -> dict[str, str]:
    """``VETTED_VARIABLE``'s verdicts ({} when unset or unreadable: then files are simply vetted again)."""
    try:
        value = json.loads(os.environ.get(VETTED_VARIABLE, "") or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def write_vetted(verdicts: dict[str, str]) -> None:
    os.environ[VETTED_VARIABLE] = json.dumps(verdicts)


class ImportTimedOut(BaseException):
    """A plugin file did not finish importing in time. A BaseException, so that a plugin's own
    ``except Exception`` cannot swallow it."""


def import_timeout() -> float:
    """Seconds a plugin file may take to import (``RNN_BENCH_IMPORT_TIMEOUT``; 0 means no limit)."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_IMPORT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"{TIMEOUT_VARIABLE}={text!r} should be a number of seconds >= 0 (0: no limit)")
    return value


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise ``ImportTimedOut`` in the block after ``seconds``; a timer already set (e.g. by a test
    runner) is restored afterwards. Without a limit, off the main thread or without SIGALRM: no limit."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return
    armed = True

    def on_alarm(signum: int, frame: object) -> None:
        if armed:  # the alarm may land after the block ended, before the timer is cancelled
            raise ImportTimedOut(timed_out(seconds))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    earlier, interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        if earlier:
            signal.setitimer(signal.ITIMER_REAL, max(earlier - (time.monotonic() - started), 1e-3), interval)


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry (discovered once)."""
    reg = Registry()
    reg.load_folder(ROOT / "tasks", "tasks")
    reg.load_folder(ROOT / "variants", "variants")
    for folder in user_folders():
        reg.load_folder(folder, None)
    return reg


def reload() -> Registry:
    """Forget and rediscover (after ``new-variant`` writes a file)."""
    for name in [m for m in sys.modules if m.startswith(("tasks.", "variants.", "rnn_bench_plugin_"))]:
        del sys.modules[name]
    importlib.invalidate_caches()
    registry.cache_clear()
    from harness.plugins import fingerprint

    fingerprint.forget()  # the files may have changed too
    return registry()
