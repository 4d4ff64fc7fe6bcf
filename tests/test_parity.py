"""PyTorch and TensorFlow compute the same numbers: every variant's outputs and gradients, the fused
layers against the generic step, exported parameters, and a short training run.

Both frameworks never share a process: ``harness.diagnostics.parity`` runs each in a spawned child. One module
fixture keeps one child per framework for every check below (TensorFlow's import costs seconds), and
the tests only read its results.

Tolerances (float32, I=3, H=4, B=2, L=6), set from the arithmetic, not from what happens to pass: the
two frameworks run the same float32 operations and differ only in the order of their sums, so each
result differs by a few units in the last place (ulp; unit roundoff u = 6e-8), accumulated over L = 6
steps of H = 4-term sums. Outputs (magnitudes ≤ ~2, ulp 2.4e-7): ≤ 2e-6, about 8 ulps [measured on
x86-64, torch 2.13 and TensorFlow 2.21: ≤ 2.4e-7]. Gradients (sums over B·L terms, magnitudes ≤ ~6,
ulp 4.8e-7): ≤ 1e-5 [≤ 1.0e-6]. Fused against generic: the same [≤ 4.8e-7]. Predictions after a
parameter transfer: as outputs, ≤ 2e-6 [≤ 3.6e-7]. Training: 20 steps at learning rate 1e-3 barely
amplify a relative difference that starts at ~u, so the per-step losses agree to a relative 2e-6
[≤ 2.2e-7]; a wrong gate order, learning rate, clipping or momentum formula moves them by far more.
"""

from __future__ import annotations

import importlib.util

import pytest

from harness.plugins.registry import registry

MISSING = [p for p in ("torch", "tensorflow") if importlib.util.find_spec(p) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"parity needs both frameworks; not installed: {', '.join(MISSING)}"
)

VARIANTS = sorted(registry().variants)
FUSED = ["np", "gru_ra", "rnn"]
OUTPUT_TOL, GRADIENT_TOL = 2e-6, 1e-5  # ~8 and ~20 ulps at the largest magnitudes (docstring)
TRANSFER_TOL, TRAINING_REL_TOL = 2e-6, 2e-6  # ~8 ulps; ~30 u after 20 small steps
#: (variant, task, T, protocol overrides): each loss placement (masks too), both optimisers, both paths
TRAINING = [
    ("np", "adding", 10, {}),
    ("v", "delayed_recall", 6, {"optimizer": "sgd", "learning_rate": 0.05}),
    ("gru_ra", "copy", 4, {"fused": False}),
    ("gru_ra", "adding", 10, {"clip_norm": 0.0}),
    ("np", "continual_reber", 2, {}),  # masked binary cross-entropy, batches of varying length
    ("v", "continual_adding", 3, {}),  # masked MSE
    ("np", "parity", 6, {"train_lengths": "uniform"}),  # a new length at each step: TF traces once for all
    ("slstm", "parity", 6, {"train_lengths": "uniform"}),  # ... through the generic step's while loop too
]
TRANSFER = ["np", "gru_ra", "v"]


@pytest.fixture(scope="module")
def parity():
    from harness.diagnostics.parity import (
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
