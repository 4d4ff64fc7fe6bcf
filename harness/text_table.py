"""The one plain-text table of the command line: left-aligned columns two spaces apart.

Written here rather than with ``DataFrame.to_string``: pandas right-aligns text values and separates
columns by one space, and the commands' tables (``rnn-bench check``, ``speed``, ``variants``, ``status``)
are read by people and by the tests line by line in this layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def text_table(rows: Sequence[Sequence[Any]], rule: str | None = None) -> str:
    """``rows`` (the header first) as aligned text, trailing spaces stripped. ``rule``: ``"columns"`` puts a
    dashed line under each header cell, ``"line"`` one dashed line under the header (at most 110 wide)."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    if rule == "columns":
        lines.insert(1, "  ".join("-" * w for w in widths))
    elif rule == "line":
        lines.insert(1, "-" * min(110, max(len(line) for line in lines)))
    return "\n".join(lines)
