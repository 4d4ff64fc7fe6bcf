"""Discovery of tasks and variants: every ``*.py`` in ``tasks/`` and ``variants/`` is imported and its
``Task`` / ``Variant`` subclasses with an ``id`` are registered. Adding one is dropping a file in.

A file that fails to import is reported by its name (``registry.broken_files``) and the others still
work. Two classes claiming one id (or alias) is an error naming both files. Extra folders of plugin
files can be named in ``RNN_BENCH_PLUGINS`` (``os.pathsep``-separated).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from harness.errors import UsageError, unknown_name
from harness.task import Task
from harness.variant import Variant

ROOT = Path(__file__).resolve().parent.parent


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
        if name not in self.tasks:
            raise unknown_name("task", name, self.tasks, where)
        return self.tasks[name]()

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
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                module = _import(path, package)
            except Exception:
                self.broken_files[str(path)] = traceback.format_exc(limit=3)
                continue
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__ or not getattr(cls, "id", ""):
                    continue
                if issubclass(cls, Variant):
                    self._add_variant(cls, path)
                elif issubclass(cls, Task):
                    self._add_task(cls, path)

    def _add_task(self, cls: type[Task], path: Path) -> None:
        if cls.id in self.tasks:
            raise DuplicateIdError(f"task id {cls.id!r} is claimed by {self.tasks[cls.id].source_file} and {path}")
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


def _import(path: Path, package: str | None) -> ModuleType:
    """Import a plugin file: as ``package.stem`` when it lies in our package, else by its path."""
    if package is not None:
        return importlib.import_module(f"{package}.{path.stem}")
    name = f"rnn_bench_plugin_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The process-wide registry (discovered once)."""
    reg = Registry()
    reg.load_folder(ROOT / "tasks", "tasks")
    reg.load_folder(ROOT / "variants", "variants")
    for extra in filter(None, os.environ.get("RNN_BENCH_PLUGINS", "").split(os.pathsep)):
        reg.load_folder(Path(extra), None)
    return reg


def reload() -> Registry:
    """Forget and rediscover (after ``new-variant`` writes a file)."""
    for name in [m for m in sys.modules if m.startswith(("tasks.", "variants.", "rnn_bench_plugin_"))]:
        del sys.modules[name]
    importlib.invalidate_caches()
    registry.cache_clear()
    return registry()
