"""Equal parameter budgets: a suite's ``parameters = N`` compares cells at the same number of weights.

Cells differ in parameters per hidden unit (``fgr`` has 2.3-3.1 times ``v``'s at the same H, mLSTM's
state is H² per sequence), so a comparison at one hidden size favours the cells with more weights. With
``parameters = N`` every trial's hidden size is the one whose cell (the recurrent layer's contract
parameters, ``Variant.parameter_count``, at the task's input size) has the count closest to N; the search
draws the other hyperparameters as before, and hidden sizes a variant's own hyperparameters forbid
(clockwork's H must be a multiple of its ``modules``) are never chosen. A cell that cannot come within
``TOLERANCE`` of N (a budget smaller than its smallest layer) keeps its closest size, and the plan says so.
"""

from __future__ import annotations

from functools import cache

from harness.errors import UsageError
from harness.variant import Variant

TOLERANCE = 0.10  # a chosen count within 10 % of the budget counts as reaching it
MAX_HIDDEN = 16_384  # the widest layer considered: far beyond any budget a CPU or GPU trains


def budget_hidden_size(variant: Variant, input_size: int, budget: int) -> int:
    """The hidden size whose parameter count is closest to ``budget`` (the smaller one on a tie)."""
    return _closest(type(variant), tuple(sorted(variant.hparams.items())), input_size, budget)[0]


def budget_count(variant: Variant, input_size: int, budget: int) -> int:
    """The parameter count at ``budget_hidden_size``."""
    return _closest(type(variant), tuple(sorted(variant.hparams.items())), input_size, budget)[1]


@cache
def _closest(cls: type[Variant], hparams: tuple, input_size: int, budget: int) -> tuple[int, int]:
    variant = cls(**dict(hparams))
    best: tuple[int, int] | None = None  # (hidden size, count)
    for hidden in range(1, MAX_HIDDEN + 1):
        try:
            count = variant.parameter_count(input_size, hidden)
        except (UsageError, ValueError):  # a size the variant's hyperparameters forbid
            continue
        if best is None or abs(count - budget) < abs(best[1] - budget):
            best = (hidden, count)
        if count > budget:  # counts grow with H: every larger size is farther
            break
    if best is None:
        raise UsageError(f"variant {cls.id!r} allows no hidden size up to {MAX_HIDDEN} with {dict(hparams)}")
    return best


def off_budget(count: int, budget: int) -> float:
    """The relative distance of ``count`` from ``budget`` (0.05: 5 % over)."""
    return (count - budget) / budget


def budget_lines(budget: int, trials: list) -> list[str]:
    """What ``parameters = budget`` made of a plan's trials (``Trial``s): per variant and task input size,
    the hidden sizes, parameter counts and state sizes (floats per sequence) chosen, and a warning line for
    every count off by more than ``TOLERANCE``."""
    from harness.plugins.registry import registry

    reg = registry()
    chosen: dict[tuple[str, int], set[tuple[int, int, int]]] = {}
    for t in trials:
        variant, input_size = reg.variant(t.variant), reg.task(t.task).input_size
        variant = type(variant)(**{k: v for k, v in t.hparams.items() if k in variant.hyperparameters})
        h = t.hparams["hidden_size"]
        sizes = (h, variant.parameter_count(input_size, h), sum(variant.state_sizes(h)))
        chosen.setdefault((t.variant, input_size), set()).add(sizes)
    lines = [f"  parameters = {budget:,}: each cell's hidden size brings its parameter count closest to it"]
    for (variant_id, input_size), sizes in chosen.items():
        shown = ", ".join(f"H {h} ({c:,} parameters, {off_budget(c, budget):+.1%}; state {n:,})"
                          for h, c, n in sorted(sizes))  # fmt: skip
        lines.append(f"    {variant_id:<12} I = {input_size:<3} {shown}")
        for h, c, _ in sorted(sizes):
            if abs(off_budget(c, budget)) > TOLERANCE:
                lines.append(f"    ! {variant_id} cannot come within {TOLERANCE:.0%} of {budget:,} parameters at "
                             f"I = {input_size}: its closest, H {h}, has {c:,}")  # fmt: skip
    return lines
