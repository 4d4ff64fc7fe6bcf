"""Shared fixtures: the CLI in this process, the CLI in a subprocess, and test plugin folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"  # tests/plugins/<folder>/*.py, see RNN_BENCH_PLUGINS


@pytest.fixture
def cli(capsys):
    """``cli("list", "tasks")`` -> (exit code, stdout, stderr), running ``harness.cli.main.main`` in this process."""
    from harness.cli.main import main

    def run(*argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse: --help, or a malformed command line
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


class Bench:
    """``python -m harness`` in a subprocess (what a user runs), in a scratch working directory."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    @staticmethod
    def env(**extra: str) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
        return {**os.environ, "PYTHONPATH": path, **{k: str(v) for k, v in extra.items()}}

    @staticmethod
    def argv(*args) -> list[str]:
        return [sys.executable, "-m", "harness", *map(str, args)]

    def run(self, *args, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), cwd=self.cwd, env=env or self.env(), capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="session")
def bench(tmp_path_factory) -> Bench:
    return Bench(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def use_plugins(monkeypatch):
    """``use_plugins("broken")``: this process's registry also discovers tests/plugins/broken/."""
    from harness.plugins import registry

    def use(*folders: str) -> None:
        monkeypatch.setenv("RNN_BENCH_PLUGINS", os.pathsep.join(str(PLUGINS / f) for f in folders))
        monkeypatch.delenv(registry.VETTED_VARIABLE, raising=False)  # the CLI's verdicts: this test's own
        registry.registry.cache_clear()

    yield use
    registry.registry.cache_clear()  # rediscovered without them (monkeypatch restores the variable) on next use
