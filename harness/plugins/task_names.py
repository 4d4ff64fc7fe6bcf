"""A task with parameters of its own, named: ``associative_recall[pairs=2]``.

A task class may take constructor parameters (``AssociativeRecall(keys=16, pairs=4)``: MQAR's K and P).
Wherever a task is named (a suite's ``tasks``, ``[lengths]`` and ``[overrides]`` keys, ``--tasks``, a
trial's ``task``, the store), the name may carry them in brackets:

    associative_recall                 the class's defaults
    associative_recall[pairs=2]        P = 2, K at its default
    associative_recall[keys=8,pairs=2]

The canonical name (``canonical_task_name``) lists the parameters that differ from their defaults, sorted
by name, each value as JSON writes it (``8``, ``0.5``, ``true``, ``"word"`` unquoted when it is a plain
word): one configuration has one name, so it has one trial id, and a task at its defaults keeps the bare
id it always had. A different name is a different task in every table and figure.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from harness.errors import UsageError

NAME = re.compile(r"^(?P<base>[A-Za-z0-9_]+)(?:\[(?P<params>[^\[\]]*)\])?$")
WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_task_name(name: str, where: str = "") -> tuple[str, dict[str, Any]]:
    """(task id, parameters) of a name; ``UsageError`` for a name that does not parse."""
    origin = f" (from {where})" if where else ""
    match = NAME.match(str(name).strip())
    if not match:
        raise UsageError(f"task name {name!r}{origin} does not parse; write an id, or an id with parameters "
                         "in brackets: associative_recall[keys=8,pairs=2]")  # fmt: skip
    params: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in (match["params"] or "").split(","))):
        key, sep, text = (s.strip() for s in item.partition("="))
        if not sep or not key or not text:
            raise UsageError(f"task name {name!r}{origin}: {item!r} should be parameter=value")
        params[key] = _value(text)
    return match["base"], params


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a plain word


def task_parameters(cls: type) -> dict[str, Any]:
    """The constructor parameters of a task class and their defaults (none for most tasks)."""
    signature = inspect.signature(cls.__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: p.default for p in list(signature.parameters.values())[1:]
            if p.kind in kinds and p.default is not inspect.Parameter.empty}  # fmt: skip


def check_task_parameters(cls: type, base: str, params: dict[str, Any], where: str = "") -> None:
    """Refuse a parameter the task does not take, naming those it does."""
    allowed = task_parameters(cls)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        origin = f" (from {where})" if where else ""
        takes = ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()) or "none"
        raise UsageError(f"task {base!r}{origin}: unknown parameter(s) {unknown}; it takes: {takes}")


def task_name(base: str, params: dict[str, Any]) -> str:
    """The name of ``base`` with ``params`` (all of them, sorted), or the bare id without any."""
    if not params:
        return base
    shown = [f"{k}={v if isinstance(v, str) and WORD.match(v) else json.dumps(v)}" for k, v in sorted(params.items())]
    return f"{base}[{','.join(shown)}]"


def canonical_task_name(cls: type, name: str, where: str = "") -> str:
    """``name`` with the parameters at their defaults dropped and the rest sorted (module docstring)."""
    base, params = split_task_name(name, where)
    check_task_parameters(cls, base, params, where)
    defaults = task_parameters(cls)
    return task_name(base, {k: v for k, v in params.items() if v != defaults[k] or type(v) is not type(defaults[k])})
