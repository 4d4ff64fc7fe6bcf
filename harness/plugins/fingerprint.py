"""Code fingerprints: what code produced a trial.

A trial's id hashes its settings, not the code that runs them, so an edited variant or task would
otherwise pass off old numbers as its own. Every stored trial therefore records two fingerprints:

    variant_code = H(variant's file + every file of ours it imports, transitively)
    task_code    = H(task's file    + every file of ours it imports, transitively)

"Ours" is the packages ``harness``, ``tasks`` and ``variants`` (plugin files found through
``RNN_BENCH_PLUGINS`` count with their own file). Each file enters as the SHA-256 of its syntax tree
with docstrings removed (``ast.dump`` drops line numbers), so editing a comment, a docstring or the
layout is not a change, while any edit of what the code does is. Paths are not hashed: a plugin folder
that moves keeps its fingerprint. A fingerprint is the first 16 hex digits of the SHA-256 of the sorted
file hashes.

What is not covered: the backends, the trainer and the protocol (a change there that alters results
must bump ``harness.trials.protocol.PROTOCOL_VERSION``, which is part of every trial id), and third-party
libraries (their versions are in each run's environment).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("harness", "tasks", "variants")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


@cache
def _parse(path: Path) -> tuple[str, tuple[Path, ...]]:
    """(hash of the file's docstring-free syntax tree, the files of ours it imports)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    absolute = {p for name in _imported_names(tree) for p in _files_of(name)}
    imports = tuple(sorted(absolute | set(_relative_files(tree, path))))
    digest = hashlib.sha256(ast.dump(_strip_docstrings(tree)).encode()).hexdigest()
    return digest, imports


def _imported_names(tree: ast.AST) -> list[str]:
    """Module names an import statement may refer to (``from a import b`` gives ``a`` and ``a.b``)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n.split(".")[0] in OUR_PACKAGES]


def _relative_files(tree: ast.AST, path: Path) -> list[Path]:
    """Files a relative import (``from .helpers import x``, ``from .. import y``) of ``path`` names."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = path.resolve().parents[node.level - 1]
            stems = [node.module] if node.module else [a.name for a in node.names]
            for stem in stems:
                target = base.joinpath(*stem.split("."))
                found += [c for c in (target.with_suffix(".py"), target / "__init__.py") if c.is_file()]
    return found


def _files_of(module: str) -> list[Path]:
    """The source file of one of our modules, if ``module`` names one (a package counts its __init__)."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return [candidate.resolve()]
    return []


def _closure(path: Path) -> list[str]:
    """File hashes of ``path`` and of everything of ours it imports, transitively, sorted."""
    seen: dict[Path, str] = {}
    todo = [path.resolve()]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        digest, imports = _parse(current)
        seen[current] = digest
        todo += [p for p in imports if p not in seen]
    return sorted(seen.values())


def fingerprint_file(path: str | Path) -> str:
    """The fingerprint of one plugin file (see the module docstring)."""
    blob = "\n".join(_closure(Path(path)))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprint_class(cls: type) -> str:
    """The fingerprint of the file that defines ``cls`` (a Variant or Task subclass)."""
    path = getattr(cls, "source_file", None) or inspect.getsourcefile(cls)
    if path is None:
        raise ValueError(f"{cls.__name__} has no source file to fingerprint")
    return fingerprint_file(path)


def forget() -> None:
    """Drop cached file hashes (after a file was edited in this process, e.g. by a test)."""
    _parse.cache_clear()


def code_of(variant_cls: type, task_cls: type) -> dict[str, str]:
    """What a trial of this variant and task records as the code that produced it."""
    return {"variant": fingerprint_class(variant_cls), "task": fingerprint_class(task_cls)}
