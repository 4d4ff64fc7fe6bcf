"""Greff-style random search: each key of a suite's ``[search]`` table is a distribution or a fixed value.

    key = { log_uniform = [low, high] }        exp(U[log low, log high])          (learning rate)
    key = { log_uniform_int = [low, high] }    round(exp(U[log low, log high]))   (hidden size)
    key = { log_uniform_int = [low, high], multiple_of = 8 }   ... rounded to a multiple of 8
    key = { uniform = [low, high] }            U[low, high]
    key = { choice = [a, b, ...] }             one of the values, equally likely  (forget bias)
    key = value                                fixed

Each key of configuration k of (task, T) is drawn from its own generator, seeded by exactly
(search seed, task, T, k, key): every variant and framework sees the same k-th configuration (a paired
design: differences between variants are not differences of luck in the search), narrowing
``--trials`` keeps the same first configurations, and adding a key to the space changes no other
key's draws.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from harness.errors import UsageError

KINDS = ("log_uniform", "log_uniform_int", "uniform", "choice")


def check_distribution(key: str, spec: Any, where: str) -> None:
    """Refuse a malformed distribution, naming the file, the key and the forms allowed."""
    if not isinstance(spec, dict):
        return  # a fixed value
    extra = set(spec) - {"multiple_of"}
    if "multiple_of" in spec and (not isinstance(spec["multiple_of"], int) or spec["multiple_of"] < 1
                                  or "log_uniform_int" not in spec):  # fmt: skip
        raise UsageError(
            f"{where}: [search] {key}: multiple_of = {spec.get('multiple_of')!r}: it goes with log_uniform_int "
            "and must be an integer >= 1"
        )
    spec = {k: spec[k] for k in extra}
    if len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise UsageError(f"{where}: [search] {key} = {spec!r}: expected one of "
                         f"{', '.join(f'{{ {k} = [...] }}' for k in KINDS)} or a fixed value")  # fmt: skip
    kind, args = next(iter(spec.items()))
    if not isinstance(args, list) or not args:
        raise UsageError(f"{where}: [search] {key}: {kind} needs a list of values, got {args!r}")
    if kind != "choice":
        if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise UsageError(f"{where}: [search] {key}: {kind} needs [low, high] numbers, got {args!r}")
        low, high = args
        if not all(math.isfinite(a) for a in args) or low > high or (kind.startswith("log") and low <= 0):
            need = "0 < low <= high, finite: a log range" if kind.startswith("log") else "low <= high, both finite"
            raise UsageError(f"{where}: [search] {key}: {kind} [{low}, {high}] is impossible (need {need})")


def sample(space: dict[str, Any], search_seed: int, task: str, length: int, index: int) -> dict[str, Any]:
    """Configuration ``index`` of (task, T): one independent uniform draw per key, mapped by its distribution."""
    out: dict[str, Any] = {}
    for key in sorted(space):
        spec = space[key]
        draw = key_rng(search_seed, task, length, index, key).random()
        if not isinstance(spec, dict):
            out[key] = spec
            continue
        kind, args = next((k, v) for k, v in spec.items() if k in KINDS)
        if kind == "choice":
            out[key] = args[min(int(draw * len(args)), len(args) - 1)]
        elif kind == "uniform":
            out[key] = float(args[0] + draw * (args[1] - args[0]))
        else:
            value = math.exp(math.log(args[0]) + draw * (math.log(args[1]) - math.log(args[0])))
            if kind == "log_uniform_int":
                step = int(spec.get("multiple_of", 1))
                value = max(step, int(round(value / step)) * step)
            out[key] = int(value) if kind == "log_uniform_int" else float(value)
    return out


def key_rng(search_seed: int, task: str, length: int, index: int, key: str) -> np.random.Generator:
    """The generator of one key of configuration ``index`` of (task, T): stable across runs and machines."""
    spawn_key = (zlib.crc32(task.encode()), length, index, zlib.crc32(key.encode()))
    return np.random.default_rng(np.random.SeedSequence(search_seed, spawn_key=spawn_key))
