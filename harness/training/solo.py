"""One trial's training protocol, framework-neutral (``harness.trials.protocol`` states it in words).

The trainer draws numpy batches from the task, hands them to the backend's model, scores the model's
numpy outputs with the task's own ``metrics``: the data, the evaluation, early stopping and the
bookkeeping are the same code for PyTorch and TensorFlow, so the frameworks can only differ in the
arithmetic of the step itself.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from harness.cell.model import TrainableModel, init_model_params
from harness.error_text import plain
from harness.task import Task
from harness.trials.trial import Trial
from harness.variant import Variant

EVAL_BATCH = 1024  # evaluation batch: bounds memory at long T, not a result-changing setting


@dataclass
class TrialResult:
    """What one trial produced. ``status`` is ok | diverged | failed | timeout."""

    status: str
    error: str = ""
    path: str = ""
    steps: int = 0
    best_step: int | None = None
    steps_to_solve: int | None = None
    solved: bool = False
    validation: dict[str, float] = field(default_factory=dict)  # at the best checkpoint
    test_best: dict[str, float] = field(default_factory=dict)  # at the best validation checkpoint
    test_last: dict[str, float] = field(default_factory=dict)  # at the last step
    wall_seconds: float = 0.0
    steps_per_second: float | None = None
    param_count: int = 0
    curve: list[tuple[int, str, float, float]] = field(default_factory=list)  # (step, split, loss, metric)
    code: dict[str, str] = field(default_factory=dict)  # {"variant": ..., "task": ...}: harness.plugins.fingerprint
    population: int = 1  # how many trials trained together with it, itself included (harness.training.population)


#: called with each trial's result the moment it finishes (a population's member, a worker's event)
ResultCallback = Callable[[Trial, TrialResult], None]


def evaluate(model: TrainableModel, task: Task, inputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    outputs = np.concatenate([model.predict(inputs[i : i + EVAL_BATCH]) for i in range(0, len(inputs), EVAL_BATCH)])
    return {k: float(v) for k, v in task.metrics(outputs, targets).items()}


def is_better(task: Task, new: dict[str, float], old: dict[str, float] | None) -> bool:
    """Primary metric in its direction; the loss breaks ties (accuracies saturate, losses do not)."""
    if old is None:
        return math.isfinite(new["loss"])
    a, b = new[task.metric], old[task.metric]
    if not math.isfinite(a):
        return False
    if a != b:
        return a > b if task.higher_is_better else a < b
    return new["loss"] < old["loss"]


def train(
    trial: Trial,
    task: Task,
    variant: Variant,
    build_model: Callable[[dict[str, np.ndarray]], TrainableModel],
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> TrialResult:
    """Run the protocol for one trial; never raises for a numerical failure (it is a result)."""
    hp, T = trial.hparams, trial.length
    started = time.perf_counter()
    result = TrialResult(status="ok", param_count=variant.parameter_count(task.input_size, hp["hidden_size"]))
    params = init_model_params(variant, task, hp["hidden_size"], trial.seed, lag=T)
    model = build_model(params)
    result.path = model.path
    validation = task.fixed_set("validation", T, hp["validation_size"])
    stream = task.training_stream(T, hp["batch_size"], trial.seed)
    best_params: dict[str, np.ndarray] | None = None
    train_seconds, window = 0.0, []

    def score(step: int) -> bool:
        """Evaluate on validation; True when training should stop (solved)."""
        nonlocal best_params
        m = evaluate(model, task, validation.inputs, validation.targets)
        if window:
            result.curve.append((step, "train", float(np.mean(window)), float("nan")))
            window.clear()
        result.curve.append((step, "validation", m["loss"], m[task.metric]))
        if on_eval is not None:
            on_eval(step, m)
        if is_better(task, m, result.validation or None):
            result.validation, result.best_step, best_params = m, step, model.get_params()
        if task.solved(m):
            result.steps_to_solve = step
            return True
        return False

    stop = score(0)
    for step in range(1, hp["max_steps"] + 1):
        if stop:
            break
        batch = next(stream)
        t0 = time.perf_counter()
        loss = model.train_step(batch.inputs, batch.targets)
        if step > 1:  # the first step traces (tf.function) and allocates: warm-up, not training speed
            train_seconds += time.perf_counter() - t0
        result.steps = step
        if not math.isfinite(loss):
            result.status, result.error = "diverged", f"training loss became {loss} at step {step}"
            break
        window.append(loss)
        if step % hp["eval_every"] == 0 or step == hp["max_steps"]:
            stop = score(step)

    test = task.fixed_set("test", T, hp["test_size"])
    if result.status == "ok":
        result.test_last = evaluate(model, task, test.inputs, test.targets)
    if best_params is not None:
        model.set_params(best_params)
        result.test_best = evaluate(model, task, test.inputs, test.targets)
        result.solved = task.solved(result.test_best)
    result.steps_per_second = (result.steps - 1) / train_seconds if train_seconds > 0 else None
    result.wall_seconds = time.perf_counter() - started
    return result


def failed(error: BaseException | str, status: str = "failed") -> TrialResult:
    """The result of a trial that could not run; the error text (plain: no terminal escape codes, which
    Keras puts in its messages) says why. ``harness.error_text.headline`` sums it up in one line."""
    text = error if isinstance(error, str) else "".join(traceback.format_exception(error)).strip()
    return TrialResult(status=status, error=plain(text))
