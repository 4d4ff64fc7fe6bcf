"""The test metric "at the best validation checkpoint" is the test set scored with the parameters of the
best validation step, not with the last ones; and the test metric at the last step is scored with the
last. A stand-in model (no framework) whose prediction is its one parameter makes both computable by hand."""

from __future__ import annotations

import numpy as np

from harness.plugins.registry import registry
from harness.training.solo import train
from harness.trials.protocol import check_hparams
from harness.trials.trial import Trial

#: the model's prediction after each training step: best at step 1 (adding's targets average 1), worse after
SCHEDULE = [1.0, 3.0, 4.0]


class ScheduledModel:
    """Predicts ``w`` at every step; each training step sets ``w`` to the next value of ``SCHEDULE``."""

    path = "generic"

    def __init__(self) -> None:
        self.w, self.steps = 0.0, 0

    def train_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        self.w = SCHEDULE[self.steps]
        self.steps += 1
        return 1.0

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.full((len(inputs), inputs.shape[1], 1), self.w, dtype=np.float32)

    def get_params(self) -> dict[str, np.ndarray]:
        return {"w": np.array(self.w)}

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        self.w = float(params["w"])


def test_the_test_metric_uses_the_best_checkpoint_and_test_last_the_last_step():
    reg = registry()
    task, variant = reg.task("adding"), reg.variant("rnn")
    hp = check_hparams({"hidden_size": 4, "batch_size": 4, "max_steps": len(SCHEDULE), "eval_every": 1,
                        "validation_size": 64, "test_size": 64})  # fmt: skip
    result = train(Trial("adding", 5, "rnn", "torch", "cpu", hp, 0), task, variant, lambda p: ScheduledModel())
    assert result.status == "ok" and result.best_step == 1

    test = task.fixed_set("test", 5, 64)

    def mse_of(w: float) -> float:
        return float(np.mean((w - test.targets.astype(np.float64)) ** 2))

    assert result.test_best["mse"] == mse_of(SCHEDULE[0])  # the best (step 1) parameters
    assert result.test_last["mse"] == mse_of(SCHEDULE[-1])  # the last step's
    assert result.test_best["mse"] < result.test_last["mse"]
