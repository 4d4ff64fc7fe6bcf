"""One trial's training protocol, framework-neutral (``harness.trials.protocol`` states it in words).

The trainer draws numpy batches from the task, hands them to the backend's model, scores the model's
numpy outputs with the task's own ``metrics``: the data, the evaluation, early stopping and the
bookkeeping are the same code for PyTorch and TensorFlow, so the frameworks can only differ in the
arithmetic of the step itself. The bookkeeping is one class, ``Member``, whether a trial trains alone
(``train``) or in a population (``harness.training.population``).
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
from harness.task import Batch, Task
from harness.training.lengths import longer_lengths, longer_test_set, training_stream
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
    # at the best validation checkpoint, on the test set at each length beyond T (harness.training.lengths)
    test_lengths: dict[int, dict[str, float]] = field(default_factory=dict)
    wall_seconds: float = 0.0
    steps_per_second: float | None = None
    param_count: int = 0
    state_size: int = 0  # floats of recurrent state per sequence: sum(variant.state_sizes(H))
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


class Member:
    """One trial's side of the training protocol, whatever trains it: its data (the validation set and its
    own training stream), its evaluations, early stopping, divergence, best checkpoint, speed and result.
    ``train`` drives one member with one model; a population drives many with one stacked model, so a
    member's result is the one its solo run gives."""

    def __init__(self, trial: Trial, task: Task, variant: Variant, size: int, started: float) -> None:
        settings, T = trial.settings, trial.length
        self.trial, self.task, self.settings, self.started = trial, task, settings, started
        count = variant.parameter_count(task.input_size, settings.hidden_size)
        state = sum(variant.state_sizes(settings.hidden_size))
        self.result = TrialResult(status="ok", param_count=count, state_size=state, population=size)
        self.params = init_model_params(variant, task, settings.hidden_size, trial.seed, lag=T)
        self.validation = task.fixed_set("validation", T, settings.validation_size)
        self.stream = training_stream(task, T, settings, trial.seed)
        self.best_params: dict[str, np.ndarray] | None = None
        self.window: list[float] = []
        self.train_seconds, self.timed_steps = 0.0, 0
        self.done = False
        self.on_scored: Callable[[int, dict[str, float]], None] | None = None  # progress: each validation point

    def scored(self, step: int, metrics: dict[str, float], current: Callable[[], dict[str, np.ndarray]]) -> None:
        """A validation score at ``step``: the curve, the best checkpoint (``current()`` gives the model's
        parameters now); ``done`` once solved."""
        r = self.result
        if self.window:
            r.curve.append((step, "train", float(np.mean(self.window)), float("nan")))
            self.window.clear()
        r.curve.append((step, "validation", metrics["loss"], metrics[self.task.metric]))
        if self.on_scored is not None:
            self.on_scored(step, metrics)
        if is_better(self.task, metrics, r.validation or None):
            r.validation, r.best_step, self.best_params = metrics, step, current()
        if self.task.solved(metrics):
            r.steps_to_solve, self.done = step, True

    def trained(self, step: int, loss: float, seconds: float | None) -> bool:
        """The loss of training step ``step`` and its time (``None``: a warm-up step, not timed); True
        when the member evaluates now."""
        self.result.steps = step
        if seconds is not None:
            self.train_seconds, self.timed_steps = self.train_seconds + seconds, self.timed_steps + 1
        if not math.isfinite(loss):
            self.result.status, self.result.error = "diverged", f"training loss became {loss} at step {step}"
            self.done = True
            return False
        self.window.append(loss)
        if step == self.settings.max_steps:
            self.done = True  # after this last evaluation
        return step % self.settings.eval_every == 0 or step == self.settings.max_steps

    def finish(self, evaluate_on: Callable[[Batch], dict[str, float]], load: Callable[[dict], None]) -> TrialResult:
        """Test metrics at the last step and at the best checkpoint (``load`` puts it back in the model),
        there also at each test length beyond T; steps per second over the timed steps, and the wall
        time. ``evaluate_on(batch)`` scores the model as it is now on a test set."""
        r, T, size = self.result, self.trial.length, self.settings.test_size
        test = self.task.fixed_set("test", T, size)
        if r.status == "ok":
            r.test_last = evaluate_on(test)
        if self.best_params is not None:
            load(self.best_params)
            r.test_best = evaluate_on(test)
            r.solved = self.task.solved(r.test_best)
            longer = longer_lengths(T, self.settings)
            r.test_lengths = {L: evaluate_on(longer_test_set(self.task, L, size)) for L in longer}
        r.steps_per_second = self.timed_steps / self.train_seconds if self.train_seconds > 0 else None
        r.wall_seconds = time.perf_counter() - self.started
        return r


def train(
    trial: Trial,
    task: Task,
    variant: Variant,
    build_model: Callable[[dict[str, np.ndarray]], TrainableModel],
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
) -> TrialResult:
    """Run the protocol for one trial (a population of one: one ``Member``, one model); never raises for
    a numerical failure (it is a result)."""
    member = Member(trial, task, variant, 1, time.perf_counter())
    member.on_scored = on_eval
    model = build_model(member.params)
    member.result.path = model.path
    validation = member.validation

    def score(step: int) -> None:
        member.scored(step, evaluate(model, task, validation.inputs, validation.targets), model.get_params)

    score(0)
    step = 0
    while not member.done:
        step += 1
        batch = next(member.stream)
        started = time.perf_counter()
        loss = model.train_step(batch.inputs, batch.targets)
        # the first step traces (tf.function) and allocates: warm-up, not training speed
        if member.trained(step, loss, None if step == 1 else time.perf_counter() - started):
            score(step)
    return member.finish(lambda test: evaluate(model, task, test.inputs, test.targets), model.set_params)


def failed(error: BaseException | str, status: str = "failed") -> TrialResult:
    """The result of a trial that could not run; the error text (plain: no terminal escape codes, which
    Keras puts in its messages) says why. ``harness.error_text.headline`` sums it up in one line."""
    text = error if isinstance(error, str) else "".join(traceback.format_exception(error)).strip()
    return TrialResult(status=status, error=plain(text))
