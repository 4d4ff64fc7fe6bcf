"""Equal parameter budgets: a suite's ``parameters = N`` compares cells at the same number of weights.

Cells differ in parameters per hidden unit (at H = 64 and I = 2, ``fgr`` has 3.2 times ``v``'s; mLSTM's
state is H² per sequence), so a comparison at one hidden size favours the cells with more weights. With
``parameters = N`` every trial's hidden size is the one whose cell (the recurrent layer's contract
parameters, ``Variant.parameter_count``, at the task's input size) has the count closest to N; the search
draws the other hyperparameters as before, and hidden sizes a variant's own hyperparameters forbid
(clockwork's H must be a multiple of its ``modules``) are never chosen. A cell may miss N by more than
``TOLERANCE``: a budget below its smallest layer, or allowed widths too far apart (clockwork with many
modules); it keeps its closest size, and the plan says so.
"""

from __future__ import annotations

from functools import cache

from harness.errors import UsageError
from harness.variant import Variant

TOLERANCE = 0.10  # a chosen count within 10 % of the budget counts as reaching it
GAP = 4096  # the widest run of forbidden widths searched past (clockwork's: its modules - 1)
LARGEST = 2**24  # no budget a machine can train needs a wider layer


def budget_hidden_size(variant: Variant, input_size: int, budget: int) -> int:
    """The hidden size whose parameter count is closest to ``budget`` (the smaller one on a tie)."""
    return _closest(type(variant), _shape_key(variant), input_size, budget)[0]


def budget_count(variant: Variant, input_size: int, budget: int) -> int:
    """The parameter count at ``budget_hidden_size``."""
    return _closest(type(variant), _shape_key(variant), input_size, budget)[1]


def _shape_key(variant: Variant) -> tuple:
    """The hyperparameters that can change the variant's shapes: all but the initial-value-only ones (a
    searched forget-gate bias would otherwise make every configuration a new search)."""
    specs = type(variant).hyperparameters
    return tuple(sorted((k, v) for k, v in variant.hparams.items() if not specs[k].init_only))


@cache
def _closest(cls: type[Variant], hparams: tuple, input_size: int, budget: int) -> tuple[int, int]:
    """Counts grow with H, so: double the width until the count passes the budget, bisect for the first
    allowed width that reaches it, and compare it with the allowed width just below."""
    variant = cls(**dict(hparams))

    def count(hidden: int) -> int | None:
        try:
            return variant.parameter_count(input_size, hidden)
        except (UsageError, ValueError):  # a width the variant's hyperparameters forbid
            return None

    def allowed_from(hidden: int, step: int) -> tuple[int, int] | None:
        """The first allowed width from ``hidden`` in direction ``step`` (+1, −1), and its count."""
        for h in range(hidden, hidden + step * GAP, step):
            if h < 1:
                return None
            c = count(h)
            if c is not None:
                return h, c
        return None

    def reaches(hidden: int) -> bool:
        found = allowed_from(hidden, 1)
        return found is None or found[1] >= budget

    high = 1
    while not reaches(high):
        high *= 2
        if high > LARGEST:
            raise UsageError(f"variant {cls.id!r} needs a layer wider than {LARGEST} for {budget} parameters")
    low = high // 2  # reaches(low) is false, or low is 0
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if reaches(middle) else (middle, high)
    candidates = [c for c in (allowed_from(high, 1), allowed_from(high - 1, -1)) if c is not None]
    if not candidates:
        raise UsageError(f"variant {cls.id!r} allows no hidden size with {dict(hparams)}")
    return min(candidates, key=lambda hc: (abs(hc[1] - budget), hc[0]))


def off_budget(count: int, budget: int) -> float:
    """The relative distance of ``count`` from ``budget`` (0.05: 5 % over)."""
    return (count - budget) / budget


def budget_lines(budget: int, trials: list) -> list[str]:
    """What ``parameters = budget`` made of a plan's trials (``Trial``s): per variant and task input size,
    the hidden sizes, parameter counts and state sizes (floats per sequence) chosen, and a warning line for
    every count off by more than ``TOLERANCE``."""
    from harness.plugins.registry import registry

    reg = registry()
    chosen: dict[tuple[str, int], set[tuple[int, int, int, str]]] = {}
    for t in trials:
        variant, input_size = reg.variant(t.variant), reg.task(t.task).input_size
        variant = type(variant)(**{k: v for k, v in t.hparams.items() if k in variant.hyperparameters})
        h = t.hparams["hidden_size"]
        shaping = ", ".join(f"{k} = {v}" for k, v in _shape_key(variant))
        sizes = (h, variant.parameter_count(input_size, h), sum(variant.state_sizes(h)), shaping)
        chosen.setdefault((t.variant, input_size), set()).add(sizes)
    lines = [f"  parameters = {budget:,}: each cell's hidden size brings its parameter count closest to it"]
    for (variant_id, input_size), sizes in chosen.items():
        shown = ", ".join(f"H {h} ({c:,} parameters, {off_budget(c, budget):+.1%}; state {n:,})"
                          for h, c, n, _ in sorted(sizes))  # fmt: skip
        lines.append(f"    {variant_id:<12} I = {input_size:<3} {shown}")
        for h, c, _, shaping in sorted(sizes):
            if abs(off_budget(c, budget)) > TOLERANCE:
                with_ = f" with {shaping}" if shaping else ""
                lines.append(f"    ! {variant_id}{with_} cannot come within {TOLERANCE:.0%} of {budget:,} parameters "
                             f"at I = {input_size}: its closest, H {h}, has {c:,}")  # fmt: skip
    return lines
