"""How long a plan will take on this machine, before it runs (``rnn-bench run --dry-run``).

The model: a job (a population of M trials, ``harness.run.scheduling``) costs, per training step, M times
the per-trial step cost of its variant and framework, which grows linearly with the sequence length L
(a recurrent step is a loop over time, each time step a fixed set of small operations):

    step seconds(job)   = M x c(framework, variant, M) x L
    job seconds         = M x c x (max_steps x L + evaluation x H) + s x (trains x L + predicts x H)
                                                                   evaluation, in training steps:
                          (max_steps / eval_every) x (validation_size / batch_size) x FORWARD_SHARE
                          + 2 x (test_size / batch_size) x FORWARD_SHARE
                          + Σ_m m x (test_size / batch_size) x FORWARD_SHARE   (each test length m·T)

H is the length of a held-out (validation, test) batch: L, but ten times L for a continual task.

L is the task's sequence length at T, or its mean over the uniform training lengths
(``harness.training.lengths.mean_sequence_length``); a test at m·T is m times as long as one at T.
    plan seconds        = the jobs placed longest first on the free worker (greedy list scheduling)

``c`` is the per-trial cost of one training step per time step. It comes from the store where trials of
the same framework, variant and device already ran (their measured training steps per second, per trial
and per time step, median), else from a short calibration: ``harness.diagnostics.speed.step_costs`` at the
job's population size and at its members' largest hidden size (a population computes every member at
that size, padded), in a child process per framework (a few seconds each). The calibration also measures
``s``, what a model's first step costs beyond a steady one per time step: TensorFlow's tracing of the
unrolled graph (seconds, growing with L), which a job pays ``SETUPS["tf"]`` times (its training step and
again once finished members leave; its prediction at the held-out length and at each test length m·T).
Speeds learned from a store are steady ones (``steps_per_second`` times a trial's steps after its
warm-up): they carry no setup, which only a job timed in the store as a whole counts (``_job_walls``).
The estimate is an upper bound in the number of steps (every trial is assumed to use its whole budget;
early stopping only shortens runs), except for jobs timed in the store, and an estimate in the cost of
one step; a machine busy with other work is slower. Where it is known to miss: docs/estimates.md.

A job whose estimate exceeds the suite's time limit is named before any work: its trials would be
stored as ``timeout``.
"""

from __future__ import annotations

import heapq
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.cell.scan_choice import uses_scan
from harness.plugins.registry import registry
from harness.training.grouping import variant_of
from harness.training.lengths import mean_sequence_length
from harness.trials.trial import Trial

FORWARD_SHARE = 0.35  # an evaluation batch (forward only) costs about this share of a training step
CALIBRATION_LENGTH = 20  # time steps of the calibration's sequences (adding, T = 20)
CALIBRATION_STEPS = 3  # timed steps per calibration measurement
#: (training steps, predictions) whose first call costs a job the setup the calibration measures, per time
#: step of its training and of its held-out sequences: TensorFlow traces a population's training step, its
#: prediction, and the training step again when members leave (a quick job, TF v on adding T = 50, traced
#: 3 times for 6.3 s of its 34 s: 2026-12-07), and its prediction again at each test length m·T (m times
#: as long); PyTorch's setup is its first allocations, once.
SETUPS = {"tf": (2, 1), "torch": (1, 0)}
#: seconds a worker takes from its start to ready (imports), where the dry run started none to measure it
#: (every speed came from the store): measured on the reference machine, 2026-12-07
START_SECONDS = {"tf": 4.0, "torch": 2.0}


@dataclass
class Estimate:
    seconds: float  # the whole plan on ``workers`` workers, their start-up included
    job_seconds: list[float]  # per job, in the order given
    source: dict[tuple[str, str], str]  # (framework, variant) -> "store" | "calibration"
    over_limit: list[tuple[list[Trial], float]]  # jobs whose estimate exceeds the time limit
    start_seconds: dict[str, float]  # framework -> seconds a worker takes to start (measured, or the default)
    learned_jobs: int = 0  # jobs whose time is a stored job's of the same cell (``_job_walls``)
    measured_starts: frozenset[str] = frozenset()  # frameworks whose start-up the calibration measured


def estimate(jobs: list[list[Trial]], workers: int, time_limit: float, stored: Any = None,
             scan: str = "auto") -> Estimate:  # fmt: skip
    """The estimate for ``jobs`` (see the module docstring); ``stored``: a trials frame to learn from;
    ``scan``: the run's ``--scan`` (default, as ``run``'s: ``auto``), so that a job that will run its
    variant's linear form is calibrated on that form (mLSTM's is ~13 times as fast as its loop of steps at
    H = 249, T = 40: timed 2026-12-06)."""
    costs, source, starts = _costs(jobs, stored, scan)
    walls = _job_walls(stored)
    held_out: dict[tuple, int] = {}
    modelled = [_job_seconds(job, *costs[_key(job)], held_out) for job in jobs]
    seconds = [walls.get(_cell(job), m) for job, m in zip(jobs, modelled)]
    # a job may use its whole budget where its stored twin stopped early: the time limit is checked on that
    over = [(job, m) for job, m in zip(jobs, modelled) if m > time_limit]
    frameworks = {job[0].framework for job in jobs}
    start = {f: starts.get(f, START_SECONDS.get(f, max(START_SECONDS.values()))) for f in frameworks}
    learned = sum(_cell(job) in walls for job in jobs)
    return Estimate(_schedule(seconds, workers) + sum(start.values()), seconds, source, over, start, learned,
                    frozenset(starts))


def _key(job: list[Trial]) -> tuple:
    """What a job's speed depends on: framework, variant, population size and largest hidden size."""
    t = job[0]
    return t.framework, t.variant, len(job), max(m.settings.hidden_size for m in job)


def _job_seconds(job: list[Trial], per_trial_time_step: float, setup_per_time_step: float,
                 held_out: dict[tuple, int] | None = None) -> float:  # fmt: skip
    """The job's seconds as the module says, every member using its whole step budget. ``held_out``: the
    held-out lengths already drawn, by (task, T, batch size), which a plan's jobs share."""
    task = registry().task(job[0].task)
    s = max((t.settings for t in job), key=lambda s: s.max_steps)
    length = mean_sequence_length(task, job[0].length, s)
    held_out = {} if held_out is None else held_out
    key = (job[0].task, job[0].length, s.batch_size)
    if key not in held_out:
        held_out[key] = held_out_length(task, job[0].length, s.batch_size)
    held = held_out[key]
    evals = s.max_steps / s.eval_every * s.validation_size / s.batch_size * FORWARD_SHARE * held
    tests = (2 + sum(s.test_lengths)) * s.test_size / s.batch_size * FORWARD_SHARE * held
    trains, predicts = SETUPS.get(job[0].framework, (1, 0))
    if len(job) == 1:  # a solo model's loop over time is symbolic: a trace costs what it cost at calibration
        setup = setup_per_time_step * CALIBRATION_LENGTH * (1 + predicts * (1 + len(s.test_lengths)))
    else:  # a population unrolls its steps: a trace grows with the length traced
        setup = setup_per_time_step * (trains * length + predicts * held * (1 + sum(s.test_lengths)))
    return len(job) * per_trial_time_step * (s.max_steps * length + evals + tests) + setup


def _cell(job: list[Trial]) -> tuple:
    """What a stored job must share with ``job`` for its wall time to stand for it."""
    t = job[0]
    return t.framework, t.variant, t.task, t.length, t.device, len(job), t.settings.max_steps


def _job_walls(stored: Any) -> dict[tuple, float]:
    """``_cell`` -> what a stored job of that cell took, from trials that finished ``ok``: for a population
    the longest wall time of its members, from its start to its last member's end; for solo trials (each
    a job of its own) their mean. Tracing, evaluation, early stopping, the other worker's company are all
    in it: the most direct thing a store knows about a cell."""
    need = {"wall_seconds", "population", "hparams", "status", "device"}
    if stored is None or not len(stored) or not need <= set(stored.columns):
        return {}
    rows = stored[(stored["status"] == "ok") & stored["wall_seconds"].notna()]
    walls: dict[tuple, list[float]] = {}
    for r in rows.itertuples():
        budget = _max_steps(r.hparams)
        members = 1 if r.population is None or r.population != r.population else int(r.population)
        cell = (r.framework, r.variant, r.task, int(r.length), r.device, members, budget)
        walls.setdefault(cell, []).append(float(r.wall_seconds))
    return {cell: statistics.mean(w) if cell[5] == 1 else max(w) for cell, w in walls.items()}


def _max_steps(hparams: Any) -> int | None:
    h = json.loads(hparams) if isinstance(hparams, str) else hparams
    value = h.get("max_steps") if isinstance(h, dict) else None
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def held_out_length(task: Any, T: int, batch_size: int) -> int:
    """The length of a validation or test batch at T: the training length, but for a continual task,
    whose held-out streams are ten times as long (``generate_held_out``), drawn once with a fixed seed."""
    return int(task.generate_held_out(T, batch_size, np.random.default_rng(0)).inputs.shape[1])


def _schedule(seconds: list[float], workers: int) -> float:
    """Greedy list scheduling, longest first: each job goes to the worker that frees first."""
    free = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(free, free[0] + s)
    return max(free)


Costs = dict[tuple, tuple[float, float]]  # _key(job) -> (seconds per trial-step, setup seconds) per time step


def _costs(jobs: list[list[Trial]], stored: Any,
           scan: str = "auto") -> tuple[Costs, dict[tuple[str, str], str], dict[str, float]]:  # fmt: skip
    """``_key(job)`` -> (seconds per trial-step per time step, setup seconds per time step); and where each
    came from. Speeds learned from the store are per (framework, variant, population, device), whatever
    the hidden sizes (their trials' own), and steady (a trial's warm-up steps are not timed): they carry
    no setup, which only a job timed in the store as a whole counts (``_job_walls``). The calibration
    measures each (framework, variant, population) at the smallest and the largest hidden size its jobs
    need and interpolates linearly in between: two cases where one per job made ``greff``'s dry run take
    4 minutes."""
    learned = _from_store(stored)
    starts: dict[str, float] = {}
    costs: dict[tuple, tuple[float, float]] = {}
    source: dict[tuple[str, str], str] = {}
    missing: dict[str, dict[tuple, set[int]]] = {}  # framework -> (variant, members, batch, device, scan) -> H
    for job in jobs:
        t, key = job[0], _key(job)
        if (t.framework, t.variant, len(job), t.device) in learned:
            costs[key] = (learned[(t.framework, t.variant, len(job), t.device)], 0.0)
            source[(t.framework, t.variant)] = "store"
        else:
            scans = uses_scan(variant_of(t), scan, t.framework, t.device, len(job))
            case = (t.variant, len(job), t.settings.batch_size, t.device, scans)
            missing.setdefault(t.framework, {}).setdefault(case, set()).add(key[3])
    for framework, cases in missing.items():
        wanted = {(framework, *case, h): (h, case[2], case[3], case[4]) for case, sizes in cases.items()
                  for h in sorted({min(sizes), max(sizes)})}  # fmt: skip
        measured, starts[framework] = _calibrate(framework, wanted)
        timed = {key[1:]: (ms / 1000 / CALIBRATION_LENGTH, setup / 1000 / CALIBRATION_LENGTH)
                 for key, (ms, setup) in zip(wanted, measured)}  # fmt: skip
        for case, sizes in cases.items():
            low, high = min(sizes), max(sizes)
            for h in sizes:
                w = 0.0 if high == low else (h - low) / (high - low)
                a, b = timed[(*case, low)], timed[(*case, high)]
                costs[(framework, case[0], case[1], h)] = ((1 - w) * a[0] + w * b[0], (1 - w) * a[1] + w * b[1])
            source.setdefault((framework, case[0]), "calibration")
    return costs, source, starts


def _from_store(stored: Any) -> dict[tuple[str, str, int, str], float]:
    """(framework, variant, population, device) -> median seconds per trial-step per time step of the stored
    trials (a population's per-trial cost depends on its size, so only equal sizes are compared)."""
    if stored is None or not len(stored) or "steps_per_second" not in stored:
        return {}
    reg = registry()
    rows = stored[stored["steps_per_second"].notna() & (stored["steps_per_second"] > 0)]
    out: dict[tuple[str, str, int, str], list[float]] = {}
    for r in rows.itertuples():
        if not reg.knows_task(r.task):
            continue
        members = getattr(r, "population", None)
        members = 1 if members is None or members != members else int(members)  # NaN: stored before populations
        per_step = 1.0 / (r.steps_per_second * members * reg.task(r.task).seq_len(int(r.length)))
        out.setdefault((r.framework, r.variant, members, r.device), []).append(per_step)
    return {k: statistics.median(v) for k, v in out.items()}


def _calibrate(framework: str,
               wanted: dict[tuple, tuple[int, int, str, bool]]) -> tuple[list[tuple[float, float]], float]:  # fmt: skip
    """(ms per trial-step, setup ms) at ``CALIBRATION_LENGTH`` for each (framework, variant, members, ...) ->
    (hidden, batch, device, scan), measured in one child process of ``framework``; and the seconds that
    process took to start."""
    from harness.diagnostics.speed import SpeedJob
    from harness.workers.worker import Workers

    device = next(iter(wanted.values()))[2]
    jobs = [{"variant_id": v, "members": 0 if m == 1 else m, "T": CALIBRATION_LENGTH, "batch": b, "hidden": h,
             "steps": CALIBRATION_STEPS, "device": d, "scan": s}
            for (_, v, m, *_), (h, b, d, s) in wanted.items()]  # fmt: skip
    started = time.perf_counter()
    with Workers((framework,), device) as workers:
        workers.processes[framework].wait_ready()
        start = time.perf_counter() - started
        results = workers.run({framework: SpeedJob(framework, tuple(jobs))})[framework]
    bad = [r["error"] for r in results if "error" in r]
    if bad:
        raise RuntimeError(f"calibrating {framework} failed:\n{bad[0]}")
    return [(r["ms"], r["setup_ms"]) for r in results], start


def describe(e: Estimate, workers: int, time_limit: float, most: int = 10) -> list[str]:
    """Lines for the dry run: the total, where the speeds came from, and the cells (task, T, variant,
    framework) with jobs over the time limit, the ``most`` longest of them."""
    sources = sorted(set(e.source.values()))
    starts = ", ".join(f"{f} {s:.0f} s" for f, s in sorted(e.start_seconds.items()))
    measured = [f"each step's speed, from {' and '.join(sources) or 'nothing'}"]
    if "calibration" in sources and any(f == "tf" for f, _ in e.source):
        measured.append("TensorFlow's tracing")
    assumed = []
    (measured if set(e.start_seconds) <= e.measured_starts else assumed).append(f"worker start-up {starts}")
    steps = ("every trial using its whole step budget, so an upper bound where trials stop early"
             if not e.learned_jobs else
             f"none for {e.learned_jobs} of {len(e.job_seconds)} jobs, timed in the store as a job of the same "
             "cell; for the rest every trial using its whole step budget")  # fmt: skip
    parts = [f"measured: {', '.join(measured)}", f"modelled: {steps}"] + ([f"assumed: {', '.join(assumed)}"]
                                                                         if assumed else [])  # fmt: skip
    lines = [f"estimated time on this machine with {workers} worker(s): about {_duration(e.seconds)} "
             f"({'; '.join(parts)}; docs/estimates.md)"]
    cells: dict[tuple, list] = {}
    for job, seconds in e.over_limit:
        t = job[0]
        cell = cells.setdefault((t.task, t.length, t.variant, t.framework), [0, 0.0, 1])
        cell[0], cell[1], cell[2] = cell[0] + len(job), max(cell[1], seconds), max(cell[2], len(job))
    ranked = sorted(cells.items(), key=lambda kv: -kv[1][1])
    for (task, length, variant, framework), (n, seconds, largest) in ranked[:most]:
        smaller = ", or a smaller --population" if largest > 1 else ""
        lines.append(f"warning: {n} trial(s) of {task} T={length} {variant} ({framework}) would need up to about "
                     f"{seconds:.0f} s, over the time limit of {time_limit:.0f} s: they would be stored as timeout. "
                     f"Raise time_limit (--time-limit) or lower max_steps{smaller}.")  # fmt: skip
    if len(ranked) > most:
        rest = sum(n for _, (n, _, _) in ranked[most:])
        lines.append(f"warning: and {rest} trial(s) of {len(ranked) - most} more cell(s) over the time limit")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds >= 48 * 3600:
        return f"{seconds / 86400:.0f} days ({seconds / 3600:.0f} h)"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"
