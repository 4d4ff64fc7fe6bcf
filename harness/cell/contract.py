"""Reading sizes back from a parameter dict (the inverse of ``parameter_shapes``)."""

from __future__ import annotations

from typing import Any

from harness.variant import StepError, Variant


def hidden_size_of(variant: Variant, params: dict[str, Any]) -> int:
    """H such that ``parameter_shapes(I, H)`` matches ``params`` (found by the shapes themselves)."""
    input_size, hidden_size = sizes_of(variant, params)
    return hidden_size


def sizes_of(variant: Variant, params: dict[str, Any]) -> tuple[int, int]:
    """(I, H) for which ``variant.parameter_shapes`` gives exactly the shapes in ``params``.

    Every contract has an (I, H) input matrix whose name starts with ``W`` (first layer), so I and H
    are read from the first such matrix and checked against the whole contract.
    """
    first_w = next(
        (n for n in sorted(params) if n.rsplit(".", 1)[-1].startswith("W") and len(params[n].shape) == 2), None
    )
    if first_w is None:
        raise StepError(variant.id, f"cannot read sizes: no input matrix W* among parameters {sorted(params)}")
    candidates = [tuple(int(d) for d in params[n].shape) for n in params if len(params[n].shape) == 2]
    for input_size, hidden_size in candidates:
        try:
            shapes = variant.parameter_shapes(input_size, hidden_size)
        except Exception:
            continue
        if set(shapes) == set(params) and all(
            tuple(shapes[n]) == tuple(int(d) for d in params[n].shape) for n in shapes
        ):
            return input_size, hidden_size
    got = {n: tuple(int(d) for d in p.shape) for n, p in params.items()}
    input_size, hidden_size = got[first_w]
    try:
        expected = {n: tuple(s) for n, s in variant.parameter_shapes(input_size, hidden_size).items()}
    except Exception as e:  # e.g. clockwork: H not divisible by its modules
        raise StepError(variant.id, f"parameters read as I={input_size}, H={hidden_size} (from {first_w}): {e}") from e
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    wrong = {n: (got[n], expected[n]) for n in set(got) & set(expected) if got[n] != expected[n]}
    raise StepError(
        variant.id,
        f"parameters do not match the contract at I={input_size}, H={hidden_size} (read from {first_w}): "
        f"missing {missing}, unexpected {extra}, wrong shapes (got, expected) {wrong}",
    )
