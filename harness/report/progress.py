"""The line ``rnn-bench report`` shows while it builds: what it is doing and, for the figures, how many
are done. On a terminal it is one line rewritten in place and cleared at the end; elsewhere (a log, CI)
each step is one line and the per-figure counts are left out, so a log gets a handful of lines. With no
stream it says nothing (``build_report`` called from code or tests)."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """The report's progress line on ``stream`` (None: silent), as the module says."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.live = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        """A new step ("analysing 4400 trials")."""
        self._show(f"report: {text} ({time.monotonic() - self.started:.0f} s)", keep=not self.live)

    def count(self, text: str, done: int, total: int) -> None:
        """Progress within a step ("figures", 12, 49): on a terminal only."""
        if self.live:
            self._show(f"report: {text} {done}/{total} ({time.monotonic() - self.started:.0f} s)", keep=False)

    def close(self) -> None:
        if self.live and self.stream is not None:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _show(self, line: str, keep: bool) -> None:
        if self.stream is None:
            return
        self.stream.write(line + "\n" if keep else "\r\x1b[K" + line)
        self.stream.flush()
