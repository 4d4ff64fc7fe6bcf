"""``rnn-bench report``: the store turned into a Greff et al. (2015) style report.

``build_report(store_path, out_dir=None, suite=None, baseline=None, probe=True)`` writes
``reports/<suite>/index.html`` (self-contained), ``report.md``, ``figures/`` (PNG + PDF) and ``tables/``
(CSV, Markdown, LaTeX, HTML) and returns the path of ``index.html``. Statistics live in
``harness.analysis``; no module here imports a framework.
"""

from __future__ import annotations

from harness.report.build import build_report

__all__ = ["build_report"]
