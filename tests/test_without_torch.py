"""Without PyTorch, the variant tests skip what needs it (with the reason) and run the rest, as the
README promises, instead of failing to collect."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, Bench

#: pytest on one test module in a fresh interpreter in which ``import torch`` raises ImportError
#: (``sys.modules[name] = None`` is how Python marks a module as unimportable)
WITHOUT_TORCH = (
    "import sys; sys.modules['torch'] = None; import pytest; "
    "sys.exit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', sys.argv[1]]))"
)


def test_variant_tests_skip_without_torch():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, "tests/test_variants.py"],
        cwd=ROOT, env=Bench.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert " passed" in out and " skipped" in out, out[-3000:]  # the numpy tests ran; the torch ones skipped
    assert "PyTorch is not installed" in out
