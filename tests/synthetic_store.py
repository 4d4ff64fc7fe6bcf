"""A realistic small results store written without training anything, for the analysis and report tests.

Each variant has a made-up "skill" per task that fades with the dependency length T; a trial's outcome
depends on that skill, its learning rate (best near 1e-2) and seeded noise, so the store shows what a
real one shows: variants that are significantly worse than the baseline, long lags that nobody bridges,
a few diverged, failed and timed-out trials, learning curves, both frameworks on the same
configurations (TensorFlow a little slower), and optionally trials that are planned but not yet run.

    python -m tests.synthetic_store PATH     writes one (for looking at a report by hand)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.plugins.registry import registry
from harness.store.database import Store
from harness.store.metadata import from_registry
from harness.training.solo import TrialResult
from harness.trials.protocol import check_hparams
from harness.trials.trial import Trial

#: skill in [0, 1] at T = 10, and how fast it fades with T (per doubling of T)
SKILL = {
    "v": (0.97, 0.9),
    "np": (0.95, 0.9),
    "cifg": (0.93, 0.85),
    "gru": (0.95, 0.8),
    "nfg": (0.5, 0.6),
    "rnn": (0.6, 0.35),
    "nig": (0.9, 0.85),
}
DEFAULT_TASKS = {"adding": (20, 50), "delayed_recall": (10, 40)}
DEFAULT_VARIANTS = ("v", "nfg", "cifg", "gru", "rnn")


def _skill(variant: str, T: int) -> float:
    at10, fade = SKILL.get(variant, (0.8, 0.8))
    return at10 * fade ** max(0.0, math.log2(T / 10))


def _metric_of(task, T: int, quality: float) -> dict[str, float]:
    """Metrics of a model of ``quality`` in [0, 1] (0: the trivial baseline, 1: perfect), for any task:
    lower-is-better metrics (and the loss) shrink from the baseline towards 0, the others grow towards 1."""
    out = {}
    for name, base in task.baseline(T).items():
        if name == "loss" or (name == task.metric and not task.higher_is_better):
            out[name] = base * (1 - quality) ** 3 + 1e-4
        else:
            out[name] = base + (1 - base) * quality
    if task.metric == "mse":
        out["loss"] = out["mse"]
    return out


def write_synthetic_store(
    path: str | Path,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    tasks: dict[str, Sequence[int]] | None = None,
    frameworks: Sequence[str] = ("torch", "tf"),
    trials_per_cell: int = 6,
    remaining: int = 0,
    suite: str = "synthetic",
    seed: int = 0,
    failures: bool = True,
    hidden_sizes: Sequence[int] = (16, 32, 64),
    metadata: bool = True,
) -> Path:
    """Write the store; ``remaining`` extra trials per cell are planned but not recorded (a benchmark
    still running); ``hidden_sizes`` is the hidden-size grid of the search; ``metadata=False`` records no
    variant and task metadata at the run's start (as stores written before they did). Returns the path."""
    path = Path(path)
    tasks = DEFAULT_TASKS if tasks is None else tasks
    rng = np.random.default_rng(seed)
    reg = registry()
    with Store(path) as store:
        env = {
            "python": "3.11.9",
            "numpy": np.__version__,
            "torch": "2.4.0",
            "tensorflow": "2.17.0",
            "cpu": "Synthetic CPU (2 cores)",
            "gpu": None,
            "platform": "Linux",
            "git_commit": "synthetic",
        }
        cells = [(t, T) for t, lengths in tasks.items() for T in lengths]
        meta = from_registry(variants, cells) if metadata else None
        run_id = store.start_run(suite, ["rnn-bench", "run", suite], env, metadata=meta)
        planned: list[Trial] = []
        k = 0
        for task_id, lengths in tasks.items():
            task = reg.task(task_id)
            for T in lengths:
                for variant_id in variants:
                    variant_cls = reg.variant_class(variant_id)
                    for i in range(trials_per_cell + remaining):
                        lr = float(10 ** rng.uniform(-4, -1))
                        hidden = int(rng.choice(hidden_sizes))
                        hp = {
                            "learning_rate": round(lr, 6),
                            "hidden_size": hidden,
                            "max_steps": 1000,
                            "eval_every": 100,
                        }
                        if "forget_bias" in variant_cls.hyperparameters:
                            hp["forget_bias"] = [1.0, 3.0, "chrono"][int(rng.integers(3))]
                        hp = check_hparams(hp)
                        noise = float(rng.normal(0, 0.08))
                        fate = rng.uniform()
                        for framework in frameworks:
                            trial = Trial(task_id, T, variant_id, framework, "cpu", hp, seed=i)
                            planned.append(trial)
                            if i >= trials_per_cell:
                                continue  # planned, not run yet
                            k += 1
                            result = _fake_result(
                                task,
                                variant_cls(**{key: hp[key] for key in variant_cls.hyperparameters if key in hp}),
                                T,
                                hp,
                                framework,
                                noise,
                                fate if failures else 1.0,
                                rng,
                            )
                            store.record(run_id, suite, trial, task, result)
        store.add_plan(suite, planned)
        store.finish_run(run_id)
    return path


def _fake_result(
    task, variant, T: int, hp: dict, framework: str, noise: float, fate: float, rng: np.random.Generator
) -> TrialResult:
    params = variant.parameter_count(task.input_size, hp["hidden_size"])
    if fate < 0.03:
        return TrialResult(status="failed", error="RuntimeError: synthetic failure (worker died)")
    if fate < 0.05:
        return TrialResult(status="timeout", error="trial exceeded its time limit", param_count=params)
    lr_factor = math.exp(-((math.log10(hp["learning_rate"]) + 2.0) ** 2) / 1.5)
    fw_noise = float(rng.normal(0, 0.01))
    quality = float(np.clip(_skill(variant.id, T) * lr_factor + noise + fw_noise, 0.0, 1.0))
    final = _metric_of(task, T, quality)
    diverged = fate < 0.10 and hp["learning_rate"] > 0.01
    result = TrialResult(status="diverged" if diverged else "ok", param_count=params, path="generic")
    metric, eval_every = task.metric, hp["eval_every"]
    rate = 3.0 + 4.0 * quality
    best = None
    for step in range(0, hp["max_steps"] + 1, eval_every):
        frac = 1 - math.exp(-rate * step / hp["max_steps"])
        m = _metric_of(task, T, quality * frac)
        if step:
            result.curve.append((step, "train", m["loss"] * 1.05, float("nan")))
        result.curve.append((step, "validation", m["loss"], m[metric]))
        result.steps = step
        if best is None or m["loss"] < best[1]["loss"]:
            best = (step, m)
        if diverged and step >= hp["max_steps"] // 2:
            result.error = f"training loss became nan at step {step + 7}"
            result.steps = step + 7
            break
        if task.solved(m):
            result.steps_to_solve = step
            break
    result.best_step, result.validation = best[0], best[1]
    scale = 1 + float(rng.normal(0, 0.02))
    hib = task.higher_is_better
    result.test_best = {k: min(1.0, v * scale) if hib and k == metric else v * scale for k, v in best[1].items()}
    if not diverged:
        result.test_last = dict(final)
    result.solved = task.solved(result.test_best)
    base_speed = 40000.0 / task.seq_len(T) / (1 + params / 20000)
    speed = base_speed * (1.0 if framework == "torch" else 0.6) * (1 + float(rng.normal(0, 0.05)))
    result.steps_per_second = speed
    result.wall_seconds = result.steps / speed + 0.5
    return result


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "results/synthetic.sqlite")
    if out.exists():
        out.unlink()
    print(write_synthetic_store(out, remaining=1))
