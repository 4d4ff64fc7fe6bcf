"""How long a plan will take on this machine, before it runs (``rnn-bench run --dry-run``).

The model: a job (a population of M trials, ``harness.run.scheduling``) costs, per training step, M times
the per-trial step cost of its variant and framework, which grows linearly with the sequence length L
(a recurrent step is a loop over time, each time step a fixed set of small operations):

    step seconds(job)   = M x c(framework, variant, M) x L
    job seconds         = step seconds x (max_steps + evaluation)      evaluation, in training steps:
                          (max_steps / eval_every) x (validation_size / batch_size) x FORWARD_SHARE
                          + 2 x (test_size / batch_size) x FORWARD_SHARE
                          + Σ_m m x (test_size / batch_size) x FORWARD_SHARE   (each test length m·T)

L is the task's sequence length at T, or its mean over the uniform training lengths
(``harness.training.lengths.mean_sequence_length``); a test at m·T is m times as long as one at T.
    plan seconds        = the jobs placed longest first on the free worker (greedy list scheduling)

``c`` is the per-trial cost of one training step per time step. It comes from the store where trials of
the same framework, variant and device already ran (their measured training steps per second, per trial
and per time step, median), else from a short calibration: ``harness.diagnostics.speed.step_ms`` at the job's
population size, in a child process per framework (a few seconds each). The estimate is an upper bound
in the number of steps (every trial is assumed to use its whole budget; early stopping only shortens
runs) and an estimate in the cost of one step; a machine busy with other work is slower.

A job whose estimate exceeds the suite's time limit is named before any work: its trials would be
stored as ``timeout``.
"""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass
from typing import Any

from harness.cell.scan_choice import uses_scan
from harness.plugins.registry import registry
from harness.training.grouping import variant_of
from harness.training.lengths import mean_sequence_length
from harness.trials.trial import Trial

FORWARD_SHARE = 0.35  # an evaluation batch (forward only) costs about this share of a training step
CALIBRATION_LENGTH = 20  # time steps of the calibration's sequences (adding, T = 20)
CALIBRATION_STEPS = 3  # timed steps per calibration measurement


@dataclass
class Estimate:
    seconds: float  # the whole plan on ``workers`` workers
    job_seconds: list[float]  # per job, in the order given
    source: dict[tuple[str, str], str]  # (framework, variant) -> "store" | "calibration"
    over_limit: list[tuple[list[Trial], float]]  # jobs whose estimate exceeds the time limit


def estimate(jobs: list[list[Trial]], workers: int, time_limit: float, stored: Any = None,
             scan: str = "auto") -> Estimate:  # fmt: skip
    """The estimate for ``jobs`` (see the module docstring); ``stored``: a trials frame to learn from;
    ``scan``: the run's ``--scan`` (default, as ``run``'s: ``auto``), so that a job that will run its
    variant's linear form is calibrated on that form (mLSTM's is ~13 times as fast as its loop of steps at
    H = 249, T = 40: timed 2026-12-06)."""
    costs, source = _costs(jobs, stored, scan)
    seconds = [_job_seconds(job, costs[(job[0].framework, job[0].variant, len(job))]) for job in jobs]
    over = [(job, s) for job, s in zip(jobs, seconds) if s > time_limit]
    return Estimate(_schedule(seconds, workers), seconds, source, over)


def _job_seconds(job: list[Trial], per_trial_time_step: float) -> float:
    reg = registry()
    s = max((t.settings for t in job), key=lambda s: s.max_steps)
    length = mean_sequence_length(reg.task(job[0].task), job[0].length, s)
    evals = s.max_steps / s.eval_every * s.validation_size / s.batch_size * FORWARD_SHARE
    tests = (2 + sum(s.test_lengths)) * s.test_size / s.batch_size * FORWARD_SHARE
    return len(job) * per_trial_time_step * length * (s.max_steps + evals + tests)


def _schedule(seconds: list[float], workers: int) -> float:
    """Greedy list scheduling, longest first: each job goes to the worker that frees first."""
    free = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(free, free[0] + s)
    return max(free)


def _costs(jobs: list[list[Trial]], stored: Any,
           scan: str = "auto") -> tuple[dict[tuple, float], dict[tuple[str, str], str]]:  # fmt: skip
    """(framework, variant, population) -> seconds per trial-step per time step; and where each came from."""
    learned = _from_store(stored)
    costs: dict[tuple, float] = {}
    source: dict[tuple[str, str], str] = {}
    missing: dict[str, dict[tuple[str, int], tuple[int, int, str]]] = {}
    for job in jobs:
        t = job[0]
        key = (t.framework, t.variant, len(job))
        if (*key, t.device) in learned:
            costs[key] = learned[(*key, t.device)]
            source[(t.framework, t.variant)] = "store"
        else:
            hidden = int(statistics.median(m.settings.hidden_size for m in job))
            scans = uses_scan(variant_of(t), scan, t.framework, t.device, len(job))
            setting = (hidden, t.settings.batch_size, t.device, scans)
            missing.setdefault(t.framework, {}).setdefault((t.variant, len(job)), setting)
    for framework, wanted in missing.items():
        for (variant, members), ms in zip(wanted, _calibrate(framework, wanted)):
            costs[(framework, variant, members)] = ms / 1000 / CALIBRATION_LENGTH
            source.setdefault((framework, variant), "calibration")
    return costs, source


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


def _calibrate(framework: str, wanted: dict[tuple[str, int], tuple[int, int, str, bool]]) -> list[float]:
    """ms per trial-step at ``CALIBRATION_LENGTH`` for each (variant, members) -> (hidden, batch, device,
    scan), measured in one child process of ``framework``."""
    from harness.diagnostics.speed import SpeedJob
    from harness.workers.worker import Workers

    device = next(iter(wanted.values()))[2]
    jobs = [{"variant_id": v, "members": 0 if m == 1 else m, "T": CALIBRATION_LENGTH, "batch": b, "hidden": h,
             "steps": CALIBRATION_STEPS, "device": d, "scan": s}
            for (v, m), (h, b, d, s) in wanted.items()]  # fmt: skip
    with Workers((framework,), device) as workers:
        results = workers.run({framework: SpeedJob(framework, tuple(jobs))})[framework]
    bad = [r["error"] for r in results if "error" in r]
    if bad:
        raise RuntimeError(f"calibrating {framework} failed:\n{bad[0]}")
    return [r["ms"] for r in results]


def describe(e: Estimate, workers: int, time_limit: float, most: int = 10) -> list[str]:
    """Lines for the dry run: the total, where the speeds came from, and the cells (task, T, variant,
    framework) with jobs over the time limit, the ``most`` longest of them."""
    sources = sorted(set(e.source.values()))
    lines = [f"estimated time on this machine with {workers} worker(s): at most about {_duration(e.seconds)} if "
             f"every trial uses its whole step budget (speeds from {' and '.join(sources) or 'nothing'}; early "
             "stopping shortens it)"]  # fmt: skip
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
    if seconds >= 48 * 3600:
        return f"{seconds / 86400:.0f} days ({seconds / 3600:.0f} h)"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min"
