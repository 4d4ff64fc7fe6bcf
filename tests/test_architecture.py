"""The architecture as a contract: import-linter checks pyproject.toml's ``[tool.importlinter]`` contracts
(the layers of ``harness``'s packages; no cycle inside a package; the plugin API, the worker and the
frameworks fenced in; see docs/architecture.md, "Layering"). ``make lint`` runs the same check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is missing: install the test extras (pip install -e '.[test]')")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_harness_is_one_regular_package_whose_sub_packages_say_what_they_hold():
    """A namespace package would merge any ``harness/`` folder on sys.path into ours; each layer's
    ``__init__`` docstring is what ``ls harness/`` cannot say."""
    import importlib

    import harness

    assert list(harness.__path__) == [str(ROOT / "harness")] and harness.__file__ is not None
    packages = sorted(p.parent.name for p in (ROOT / "harness").glob("*/__init__.py"))
    assert len(packages) >= 12, packages
    for name in packages:
        module = importlib.import_module(f"harness.{name}")
        assert module.__doc__ and len(module.__doc__.split()) >= 10, f"harness.{name} has no docstring"


def test_every_file_the_docs_name_exists():
    """A path in README.md, docs/, a docstring, an error message or a suite comment (``harness/run/runner.py``)
    that a move left behind fails here."""
    import re

    named = re.compile(r"\b((?:harness|benchmarks)/[\w/.-]*\.(?:py|toml|tmpl|j2|css|js))")
    missing = []
    sources = [*ROOT.glob("harness/**/*.py"), *ROOT.glob("harness/**/*.toml"), *ROOT.glob("tests/*.py")]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(sources)]:
        for path in named.findall(doc.read_text(encoding="utf-8")):
            if not (ROOT / path).exists() and "*" not in path:
                missing.append(f"{doc.relative_to(ROOT)}: {path}")
    assert not missing, "\n".join(missing)
