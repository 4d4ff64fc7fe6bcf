"""PyTorch and TensorFlow compute the same numbers: every variant's outputs and gradients, the fused
layers against the generic step, exported parameters, and a short training run.

Both frameworks never share a process: ``harness.parity`` runs each in a spawned child. One module
fixture keeps one child per framework for every check below (TensorFlow's import costs seconds), and
the tests only read its results.

Tolerances (float32, I=3, H=4, B=2, L=6; the errors measured on x86-64 CPUs, torch 2.13 and
TensorFlow 2.21, are in brackets): outputs ≤ 1e-5 [≤ 3e-7], gradients ≤ 1e-4 [≤ 1e-6]; fused against
generic as much [≤ 6e-7]; predictions after a parameter transfer ≤ 1e-5 [≤ 3e-7]. Training: the
per-step losses of 20 steps agree to a relative 1e-4 [≤ 3e-7 in every trial below]: the two
frameworks' float32 sums only round differently, and 20 steps barely amplify that, while a wrong
gate order, learning rate, clipping or momentum formula moves the losses by far more than 1e-4.
"""

from __future__ import annotations

import importlib.util

import pytest

from harness.registry import registry

MISSING = [p for p in ("torch", "tensorflow") if importlib.util.find_spec(p) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"parity needs both frameworks; not installed: {', '.join(MISSING)}"
)

VARIANTS = sorted(registry().variants)
FUSED = ["np", "gru_ra", "rnn"]
OUTPUT_TOL, GRADIENT_TOL = 1e-5, 1e-4
TRANSFER_TOL, TRAINING_REL_TOL = 1e-5, 1e-4
#: (variant, task, T, protocol overrides): each loss placement, both optimisers, both paths
TRAINING = [
    ("np", "adding", 10, {}),
    ("v", "delayed_recall", 6, {"optimizer": "sgd", "learning_rate": 0.05}),
    ("gru_ra", "copy", 4, {"fused": False}),
    ("gru_ra", "adding", 10, {"clip_norm": 0.0}),
]
TRANSFER = ["np", "gru_ra", "v"]


@pytest.fixture(scope="module")
def parity():
    from harness.parity import (
        Workers,
        compare_frameworks_many,
        compare_fused_many,
        compare_training,
        transfer_params_many,
    )

    with Workers() as workers:
        return {
            "frameworks": compare_frameworks_many(VARIANTS, workers=workers),
            "fused": compare_fused_many(FUSED, workers=workers),
            "transfer": transfer_params_many(TRANSFER, workers=workers),
            "training": [
                compare_training(v, task=task, length=T, hparams=hp, workers=workers)
                for v, task, T, hp in TRAINING
            ],
        }


def _ok(report: dict) -> dict:
    assert "error" not in report, report["error"]
    return report


@pytest.mark.parametrize("variant_id", VARIANTS)
def test_torch_and_tf_agree_on_outputs_and_gradients(parity, variant_id):
    report = _ok(parity["frameworks"][variant_id])
    assert report["outputs"] <= OUTPUT_TOL, report
    worst = max(report["params"], key=report["params"].get)
    assert report["gradients"] <= GRADIENT_TOL, f"worst parameter {worst}: {report}"
    assert report["gradient_scale"] > 1e-3  # the check is not vacuous


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize("variant_id", FUSED)
def test_fused_and_generic_paths_agree(parity, framework, variant_id):
    report = _ok(parity["fused"][framework][variant_id])
    assert report["outputs"] <= OUTPUT_TOL, report
    assert report["gradients"] <= GRADIENT_TOL, report


@pytest.mark.parametrize("variant_id", TRANSFER)
def test_parameters_exported_from_one_framework_load_into_the_other(parity, variant_id):
    report = parity["transfer"][variant_id]
    for direction in ("tf->torch", "torch->tf"):
        error = report[direction]
        assert not isinstance(error, dict), error["error"]
        assert error <= TRANSFER_TOL, (direction, error)


@pytest.mark.parametrize("case", range(len(TRAINING)), ids=[f"{v}-{t}" for v, t, _, _ in TRAINING])
def test_the_same_trial_follows_the_same_loss_curve_in_both_frameworks(parity, case):
    report = _ok(parity["training"][case])
    assert report["torch"]["path"] == report["tf"]["path"]
    assert len(report["torch"]["train"]) == len(report["tf"]["train"]) == 20
    assert report["max_rel"] <= TRAINING_REL_TOL, (report["torch"]["train"], report["tf"]["train"])
