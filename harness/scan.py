"""Linear forms: a variant's whole layer as one parallel scan over time, where its recurrence allows it.

A cell whose state obeys ``s_t = a_t ⊙ s_{t-1} + b_t``, with ``a_t`` and ``b_t`` computed from ``x_t``
alone (minGRU, minLSTM, RG-LRU), need not run a loop of T steps: ``ops.scan(a, b)`` computes every
``s_t`` at once. A *linear form* is that computation written against the ops namespace, for all time
steps together::

    @linear_form("min_gru")
    def min_gru_scan(variant, ops, p, xs):
        z = ops.sigmoid(ops.matmul(xs, p["W_z"]) + p["b_z"])           # xs (..., T, I)
        return ops.scan(1.0 - z, z * (ops.matmul(xs, p["W_h"]) + p["b_h"]))   # h (..., T, H)

It takes the layer's inputs ``xs`` of shape (..., T, I) and returns its outputs (..., T, H); the time
axis is the second to last, and ``ops.scan`` scans along it with ``s_0 = 0``. It must compute what
the variant's ``step`` computes: ``rnn-bench check`` and the catalogue's tests compare the two,
outputs and gradients, at T ≥ 256. Like a fused kernel it is a way to compute the step, not a new cell,
so it is not part of a trial's id or of the variant's code fingerprint (the register lives apart from
the step, and a file that registers one need not be the variant's own).

Which trials use it is the run's ``--scan on|off|auto`` (``harness.cell.scan_choice``). Where ``auto``
scans is a measurement of the form, not of the cell: a form that is elementwise scans (the min cells,
RG-LRU) follows ``scan_choice.SCAN_AUTO``; one measured otherwise (mLSTM's chunkwise products) says so
with ``@linear_form(id, faster=...)``, in the same shape as that table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import UsageError

LinearForm = Callable[[Any, Any, dict[str, Any], Any], Any]  # (variant, ops, params, xs (..., T, I)) -> (..., T, H)

#: variant id -> its linear form (registered when the file that defines it is imported)
LINEAR_FORMS: dict[str, LinearForm] = {}
#: variant id -> (framework, device) -> the jobs ("solo", "population") in which its form was measured
#: faster than its loop, for forms registered with ``faster=``
FASTER_WHERE: dict[str, Mapping[tuple[str, str], frozenset[str]]] = {}


def linear_form(variant_id: str, faster: Mapping[tuple[str, str], frozenset[str]] | None = None,
                ) -> Callable[[LinearForm], LinearForm]:  # fmt: skip
    """Register the decorated function as the linear form of ``variant_id`` (one per variant); ``faster``,
    where given, replaces ``scan_choice.SCAN_AUTO`` for it (a measurement: name the command in a comment)."""

    jobs = {job for where in (faster or {}).values() for job in where}
    if jobs - {"solo", "population"}:
        raise UsageError(f"@linear_form({variant_id!r}, faster=...): {sorted(jobs - {'solo', 'population'})} "
                         "are not jobs; a (framework, device) names a set of 'solo' and 'population'")  # fmt: skip

    def register(form: LinearForm) -> LinearForm:
        known = LINEAR_FORMS.get(variant_id)
        if known is not None and known.__qualname__ != form.__qualname__:
            raise UsageError(f"variant {variant_id!r} has two linear forms: {known.__qualname__} and "
                             f"{form.__qualname__}; keep one")  # fmt: skip
        LINEAR_FORMS[variant_id] = form
        if faster is not None:
            FASTER_WHERE[variant_id] = faster
        return form

    return register
