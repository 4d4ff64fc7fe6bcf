"""Backends: one per framework, imported lazily so a process only ever loads the one it runs.

A backend module provides ``FRAMEWORK``, ``setup(device)``, ``environment()``,
``build_model(variant, task, hparams, params, device)``, ``run_cell(variant, params, inputs, fused)`` and
``matmul(members, m, k, n, device)`` (docs/architecture.md, "Backends"); PyTorch's also ``count_flops(step)``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from harness.errors import UsageError, unknown_name
from harness.trials.protocol import FRAMEWORKS

MODULES = {"torch": "harness.backends.torch_backend", "tf": "harness.backends.tf_backend"}
PACKAGES = {"torch": "torch", "tf": "tensorflow"}


def installed_frameworks() -> list[str]:
    """The frameworks whose package is importable here, found without importing it."""
    return [fw for fw, pkg in PACKAGES.items() if importlib.util.find_spec(pkg)]


def check_framework(name: str, where: str = "") -> str:
    if name not in FRAMEWORKS:
        raise unknown_name("framework", name, FRAMEWORKS, where)
    return name


def load_backend(framework: str) -> ModuleType:
    """Import the backend of ``framework`` ('torch' or 'tf'), or say what to install."""
    check_framework(framework)
    try:
        return importlib.import_module(MODULES[framework])
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in ("torch", "tensorflow", "keras"):
            raise UsageError(
                f"framework {framework!r} needs the package {PACKAGES[framework]!r}, which is not installed "
                f"here ({e}); install it (pip install -e '.[{framework}]') or leave it out with --frameworks"
            ) from e
        raise
