"""Drawing the report's figures (and computing its hyperparameter importance) in helper processes beside
the report's own.

A report's figures do not depend on each other and each costs about a second of matplotlib (the ``greff``
report has 49, PNG and PDF), so where there are spare cores ``draw_figures`` shares them out: the helpers
(``WorkerProcess`` of no framework, the harness's one way to run code in a child process) and this process
each take the next undrawn figure when free, because figures differ tenfold in cost and a fixed split
would leave one side waiting. A helper gets the analysis once, with its first figure, and keeps it.
Before the figures, the first helper computes the hyperparameter importance (``importance_on``), the
longest part of the analysis, while this process does the rest.

Helpers change how long a report takes, never what it holds: a figure a helper fails to draw (an error,
a helper that died, never became ready, or owes one figure for ``FIGURE_PATIENCE`` seconds and is killed)
is drawn here, where an error surfaces as it would without helpers, and the files come back in the
page's order whichever process drew them; the importance likewise (``IMPORTANCE_PATIENCE``).
"""

from __future__ import annotations

import os
import pickle
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.importance import ImportanceJob, importance
from harness.analysis.study import Analysis, StartImportance
from harness.report.figures import Call, FigureSet, draw, figure_calls
from harness.workers.job import JobContext
from harness.workers.worker import WorkerError, WorkerProcess

#: Below this many trials a report draws alone: a helper costs about 2 s of start-up (an interpreter,
#: pandas, matplotlib), more than the few figures of a small store would save.
HELPERS_FROM_TRIALS = 200
MAX_HELPERS = 7
POLL_SECONDS = 0.5
IN_FLIGHT = 2  # figures sent to a helper and not yet back
#: seconds a helper may owe one figure (they take about one) or the importance (greff's: 8 s) before it
#: counts as stuck: it is killed and the work done here
FIGURE_PATIENCE = 120.0
IMPORTANCE_PATIENCE = 600.0
#: what sending a job can raise: a broken pipe (the helper died), or a payload that does not pickle
UNSENDABLE = (OSError, pickle.PicklingError, TypeError, AttributeError)

_analysis: list[Analysis] = []  # in a helper: the analysis its first job brought


class FigureJob:
    """One figure for a helper (no framework): draws ``call`` of the analysis into ``out_dir`` and answers
    its files and notes. ``analysis`` travels with a helper's first job only (None: the one it kept)."""

    framework = None

    def __init__(self, out_dir: Path, call: Call, analysis: Analysis | None = None) -> None:
        self.out_dir, self.call, self.analysis = out_dir, call, analysis

    def run(self, context: JobContext) -> dict[str, Any]:
        if self.analysis is not None:
            _analysis[:] = [self.analysis]
        figs = draw(_analysis[0], self.out_dir, self.call)
        return {"files": figs.files, "notes": figs.notes}


def helper_count(trials: int) -> int:
    """How many helpers a report of ``trials`` trials starts: one per core beyond this process's (at most
    ``MAX_HELPERS``), none for a small store."""
    if trials < HELPERS_FROM_TRIALS:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(0, min(cores - 1, MAX_HELPERS))


def start_helpers(count: int) -> list[WorkerProcess]:
    """Start ``count`` helpers now, so that their start-up overlaps the analysis."""
    return [WorkerProcess(None) for _ in range(count)]


def stop_helpers(helpers: list[WorkerProcess]) -> None:
    """Kill the helpers (a report's end, or its failure): they hold nothing worth waiting for."""
    for helper in helpers:
        helper.stop(kill=True)


def importance_on(helper: WorkerProcess) -> StartImportance:
    """``analyse``'s ``start_importance`` on ``helper``: the importance is computed there while this process
    goes on; where the helper fails or dies, here, so the numbers are the same either way."""

    def start(configs: pd.DataFrame, families: dict[str, str]) -> Callable[[], tuple[pd.DataFrame, str]]:
        try:
            helper.send(ImportanceJob(configs, families))
        except UNSENDABLE:  # it has died already, or the configurations would not pickle
            here = importance(configs, families)
            return lambda: here

        def result() -> tuple[pd.DataFrame, str]:
            try:
                answer = helper.answer(timeout=IMPORTANCE_PATIENCE)  # past it the helper is killed
            except WorkerError:
                answer = None
            if not isinstance(answer, tuple):  # died, or answered {"error": ...}
                return importance(configs, families)
            return answer

        return result

    return start


def draw_figures(analysis: Analysis, out_dir: Path, helpers: list[WorkerProcess],
                 on_figure: Callable[[int, int], None] | None = None) -> FigureSet:  # fmt: skip
    """Every figure of ``figure_calls`` drawn into ``out_dir`` by this process and ``helpers``, as the module
    says; ``on_figure(done, total)`` after each. Returns them in the page's order."""
    calls = figure_calls(analysis)
    parts: dict[int, FigureSet] = {}
    pending = deque(range(len(calls)))
    sent: dict[WorkerProcess, deque[int]] = {helper: deque() for helper in helpers}
    fed: set[WorkerProcess] = set()

    def finish(i: int, figs: FigureSet) -> None:
        parts[i] = figs
        if on_figure is not None:
            on_figure(len(parts), len(calls))

    waiting: dict[WorkerProcess, float] = {}  # since when a helper owes the first figure of its queue
    while pending or any(sent.values()):
        for helper, queue in list(sent.items()):
            for i, answer in _answers(helper, queue):
                waiting[helper] = time.monotonic()
                if answer is None or "error" in answer:  # the helper died or failed: draw it here
                    finish(i, draw(analysis, out_dir, calls[i]))
                else:
                    figs = FigureSet(out_dir)
                    figs.files, figs.notes, figs.helped = answer["files"], answer["notes"], 1
                    finish(i, figs)
            if queue and time.monotonic() - waiting[helper] > FIGURE_PATIENCE:
                helper.process.kill()  # stuck: what it owes is drawn here below
                helper.process.join()
            if not helper.process.is_alive():
                while queue:  # it died after _answers looked: whatever it still owed
                    i = queue.popleft()
                    finish(i, draw(analysis, out_dir, calls[i]))
                del sent[helper]
                continue
            # a second figure waits in the pipe, so a helper never idles while this process draws one
            while helper.ready and len(queue) < IN_FLIGHT and pending:
                i = pending.popleft()
                if not queue:
                    waiting[helper] = time.monotonic()
                queue.append(i)
                try:
                    helper.send(FigureJob(out_dir, calls[i], None if helper in fed else analysis))
                except UNSENDABLE:  # died since, or the analysis would not pickle: this process does it all
                    helper.process.kill()
                    break
                fed.add(helper)
        if pending:
            i = pending.pop()  # this process draws from the end of the page, the helpers from its start
            finish(i, draw(analysis, out_dir, calls[i]))
        elif any(sent.values()):
            busy = [h for h, queue in sent.items() if queue]
            wait([h.conn for h in busy] + [h.sentinel for h in busy], timeout=POLL_SECONDS)
    figs = FigureSet(out_dir)
    for i in range(len(calls)):
        figs.add(parts[i])
    return figs


def _answers(helper: WorkerProcess, queue: deque[int]):
    """Yield (figure index, answer) for each figure ``helper`` has finished (they come in the order sent),
    and (index, None) for each still in ``queue`` when it has died; takes its ``ready`` handshake on the
    way. Never blocks."""
    try:
        while helper.conn.poll():
            message = helper.receive()
            if message[0] == "done" and queue:
                yield queue.popleft(), message[1]
    except (EOFError, OSError):  # the pipe closed: it died
        helper.process.join(timeout=1)
    if not helper.process.is_alive():
        while queue:
            yield queue.popleft(), None
