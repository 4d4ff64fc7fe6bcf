"""harness.report.drawing: helpers change how long a report takes, never what it holds (the same files in
the same order, byte for byte), and a helper that dies costs nothing; the importance computed on a helper
is the importance computed here; the progress line."""

from __future__ import annotations

import io
import os
import signal

import pytest
from synthetic_store import write_synthetic_store

from harness.analysis import study as A
from harness.analysis.importance import importance
from harness.report import drawing
from harness.report.build import load
from harness.report.drawing import draw_figures, helper_count, importance_on
from harness.report.figures import figure_calls
from harness.report.progress import Progress
from harness.workers.worker import WorkerProcess


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    store = write_synthetic_store(tmp_path_factory.mktemp("drawing") / "s.sqlite", tasks={"adding": (10,)},
                                  variants=("v", "rnn"), trials_per_cell=12)  # fmt: skip
    data = load(store)
    return A.analyse(data.trials, data.curves, data.baseline, data.planned, metadata=data.metadata,
                     plan=data.plan, test_lengths=data.test_lengths)  # fmt: skip


@pytest.fixture(scope="module")
def alone(analysis, tmp_path_factory):
    """The figures drawn by this process alone."""
    root = tmp_path_factory.mktemp("alone")
    return draw_figures(analysis, root, []), root


def _ready_helper() -> WorkerProcess:
    helper = WorkerProcess(None)
    helper.wait_ready()  # so that it takes the first figures, not this process
    return helper


def _files(figs, root):
    return [(f.key, f.png.relative_to(root).as_posix(), f.png.read_bytes()) for f in figs.files]


def test_a_helper_draws_the_same_files_in_the_same_order(analysis, alone, tmp_path):
    figs, root = alone
    helper = _ready_helper()
    try:
        shared = draw_figures(analysis, tmp_path, [helper])
    finally:
        helper.stop()
    assert figs.helped == 0 and shared.helped >= 2  # it drew its share
    assert len(shared.files) == len(figs.files) >= 6
    assert [(k, b) for k, _, b in _files(shared, tmp_path)] == [(k, b) for k, _, b in _files(figs, root)]
    assert shared.notes == figs.notes


def test_a_dead_helper_costs_nothing(analysis, alone, tmp_path):
    helper = _ready_helper()
    helper.process.kill()
    helper.process.join()
    figs = draw_figures(analysis, tmp_path, [helper])
    assert figs.helped == 0
    assert [f.key for f in figs.files] == [f.key for f in alone[0].files]


def test_a_helper_that_dies_with_figures_in_flight_has_them_drawn_here(analysis, alone, tmp_path, monkeypatch):
    helper = _ready_helper()
    real = drawing.draw
    drawn_here = []

    def draw_and_kill(an, out_dir, call):  # this process's first figure: the helper dies meanwhile
        drawn_here.append(call)
        if len(drawn_here) == 1:
            helper.process.kill()
            helper.process.join()
        return real(an, out_dir, call)

    monkeypatch.setattr(drawing, "draw", draw_and_kill)
    figs = draw_figures(analysis, tmp_path, [helper])
    assert [f.key for f in figs.files] == [f.key for f in alone[0].files]
    assert len(drawn_here) == len(figure_calls(analysis)) - figs.helped  # all it never answered, drawn here
    assert len(drawn_here) > 1


def test_a_helper_that_dies_right_after_it_was_looked_at_owes_nothing(analysis, alone, tmp_path, monkeypatch):
    """Between reading a helper's answers and checking it is alive, it dies with figures in its queue."""
    helper = _ready_helper()
    real, killed = drawing._answers, []

    def answers_then_die(h, queue):
        yield from real(h, queue)
        if queue and not killed:
            h.process.kill()
            h.process.join()
            killed.append(len(queue))

    monkeypatch.setattr(drawing, "_answers", answers_then_die)
    figs = draw_figures(analysis, tmp_path, [helper])
    assert killed, "the helper never had figures in flight: the test did not test"
    assert [f.key for f in figs.files] == [f.key for f in alone[0].files]


def test_a_stuck_helper_is_killed_and_its_figures_drawn_here(analysis, alone, tmp_path, monkeypatch):
    helper = _ready_helper()
    os.kill(helper.process.pid, signal.SIGSTOP)  # alive, and never answers
    monkeypatch.setattr(drawing, "FIGURE_PATIENCE", 1.0)
    figs = draw_figures(analysis, tmp_path, [helper])
    assert figs.helped == 0 and not helper.process.is_alive()
    assert [f.key for f in figs.files] == [f.key for f in alone[0].files]


def test_the_importance_on_a_helper_is_the_importance_here(analysis, monkeypatch):
    families = {v: i.family for v, i in analysis.info.items()}
    here, method = importance(analysis.configs, families)
    helper = WorkerProcess(None)

    def not_here(*args):
        raise AssertionError("computed in this process: the helper's answer was not used")

    monkeypatch.setattr(drawing, "importance", not_here)
    try:
        there, there_method = importance_on(helper)(analysis.configs, families)()
    finally:
        helper.stop()
    monkeypatch.undo()
    assert method == there_method and len(here)
    assert there.equals(here)
    unpicklable = analysis.configs.assign(note=[lambda: 0] * len(analysis.configs))
    live = WorkerProcess(None)
    try:  # a payload that does not pickle: computed here, the same numbers
        assert importance_on(live)(unpicklable, families)()[0].equals(here)
    finally:
        live.stop(kill=True)
    dead = WorkerProcess(None)
    dead.process.kill()
    dead.process.join()
    assert importance_on(dead)(analysis.configs, families)()[0].equals(here)  # computed here instead
    dying = WorkerProcess(None)
    wait = importance_on(dying)(analysis.configs, families)  # sent while it starts (it imports for seconds) ...
    dying.process.kill()  # ... and it dies before reading it
    assert wait()[0].equals(here)


def test_helpers_only_for_a_store_worth_it(monkeypatch):
    monkeypatch.setattr(drawing.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert helper_count(drawing.HELPERS_FROM_TRIALS - 1) == 0
    assert helper_count(drawing.HELPERS_FROM_TRIALS) == 3
    monkeypatch.setattr(drawing.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert helper_count(10_000) == 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_on_a_terminal_and_a_line_per_step_in_a_log():
    log, terminal = io.StringIO(), _Terminal()
    for stream in (log, terminal):
        p = Progress(stream)
        p.step("analysing 80 trials")
        p.count("figures", 3, 9)
        p.close()
    assert log.getvalue().splitlines() == ["report: analysing 80 trials (0 s)"]
    assert "\r" not in log.getvalue()
    assert "report: figures 3/9 (0 s)" in terminal.getvalue() and "\n" not in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\x1b[K")
    Progress().step("silent")  # no stream: says nothing, fails on nothing
