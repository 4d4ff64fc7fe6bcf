"""The TensorFlow backend on its own: the ops namespace, the fused layers' conversions, the training step,
the optimisers' formulas, determinism and device errors. Cross-framework checks are in test_parity.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("TensorFlow (and Keras 3) is not installed: pip install -e '.[tf]'", allow_module_level=True)

import tensorflow as tf  # noqa: E402  (after the skip: a torch-only environment never gets here)

from harness.backends import tf_backend  # noqa: E402
from harness.backends.tf_cell import (  # noqa: E402
    KERNELS,
    RecurrentLayer,
    export_layer,
    from_layer_weights,
    keras_layer,
    load_layer,
    to_layer_weights,
)
from harness.backends.tf_ops import TF_OPS  # noqa: E402
from harness.cell.model import init_model_params  # noqa: E402
from harness.cell.unroll import unroll_numpy  # noqa: E402
from harness.diagnostics.parity import random_case  # noqa: E402
from harness.errors import UsageError  # noqa: E402
from harness.ops import NUMPY_OPS, OP_NAMES  # noqa: E402
from harness.plugins.registry import registry  # noqa: E402
from harness.training.solo import train  # noqa: E402
from harness.trials.protocol import Settings, check_hparams  # noqa: E402
from harness.trials.trial import Trial  # noqa: E402
from harness.variant import StepError, Variant  # noqa: E402

tf_backend.setup("cpu")

FUSED = {"np": "lstm", "gru_ra": "gru", "rnn": "rnn"}
SMALL = {"hidden_size": 8, "batch_size": 16, "validation_size": 64, "test_size": 64}


def _hp(**overrides) -> Settings:
    return Settings.of({**SMALL, **overrides})


# --- the ops namespace ----------------------------------------------------------------------------------


def test_tf_ops_cover_the_namespace_with_numpy_semantics():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4))
    b = rng.normal(size=(3, 4))
    m = rng.normal(size=(4, 2))
    t = np.arange(6.0).reshape(3, 2)
    cases = {
        "sigmoid": (a,), "tanh": (a,), "relu": (a,), "exp": (a,), "log": (np.abs(a) + 0.1,), "abs": (a,),
        "softplus": (a * 30,), "matmul": (a, m), "maximum": (a, b), "minimum": (a, b),
        "zeros_like": (a,), "ones_like": (a,), "floormod": (t - 3.0, np.array([2.0, 4.0])),
    }  # fmt: skip
    assert set(OP_NAMES) <= {n for n in dir(TF_OPS) if not n.startswith("_")}
    for name, args in cases.items():
        got = getattr(TF_OPS, name)(*(tf.constant(x) for x in args)).numpy()
        np.testing.assert_allclose(got, getattr(NUMPY_OPS, name)(*args), rtol=1e-12, atol=1e-12, err_msg=name)
    x = tf.constant(a)
    np.testing.assert_array_equal(TF_OPS.concat([x, x], axis=0).numpy(), np.concatenate([a, a], axis=0))
    parts = TF_OPS.split(x, 2, axis=-1)
    assert len(parts) == 2
    np.testing.assert_array_equal(parts[1].numpy(), a[:, 2:])
    cond = TF_OPS.equal(TF_OPS.floormod(tf.constant(t), 2.0), 0.0)
    np.testing.assert_array_equal(cond.numpy(), np.mod(t, 2.0) == 0.0)
    np.testing.assert_array_equal(
        TF_OPS.where(cond, tf.constant(t), 0.0).numpy(), np.where(np.mod(t, 2) == 0, t, 0)
    )
    const = TF_OPS.constant(np.arange(3), like=tf.constant(np.float32(1.0)))
    assert const.dtype == tf.float32 and const.numpy().tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(AttributeError, match="not in the ops namespace"):
        TF_OPS.cumsum  # noqa: B018


@pytest.mark.parametrize("variant_id", sorted(registry().variants))
def test_generic_path_matches_the_numpy_reference_in_float64(variant_id):
    variant = registry().variant(variant_id)
    params, inputs, _ = random_case(variant, 3, 4, 2, 6, seed=1, dtype="float64")
    got = tf_backend.run_cell(variant, params, inputs)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, unroll_numpy(variant, params, inputs), rtol=0, atol=1e-12)


def test_a_step_that_breaks_its_contract_fails_at_build_with_step_error():
    class WrongState(Variant):
        id = "wrong_state"

        def parameter_shapes(self, input_size, hidden_size):
            return {"W": (input_size, hidden_size)}

        def state_sizes(self, hidden_size):
            return (hidden_size, hidden_size)

        def step(self, ops, p, x, state):
            h = ops.tanh(ops.matmul(x, p["W"]))
            return h, (h,)

    class UnknownOp(WrongState):
        id = "unknown_op"

        def step(self, ops, p, x, state):
            return ops.cumsum(x), state

    params = {"W": np.zeros((3, 4), np.float32)}
    with pytest.raises(StepError, match="state tensors"):
        RecurrentLayer(WrongState(), 3, 4, params, fused=False)
    with pytest.raises(StepError, match="cumsum"):
        RecurrentLayer(UnknownOp(), 3, 4, params, fused=False)


# --- the fused layers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant_id", sorted(FUSED))
def test_fused_conversion_round_trips_exactly_and_the_keras_layer_agrees(variant_id):
    variant = registry().variant(variant_id)
    kernel = FUSED[variant_id]
    assert variant.fused_kernel == kernel
    params, inputs, _ = random_case(variant, 3, 5, 2, 7, seed=2)
    layer = keras_layer(kernel, 3, 5)
    load_layer(layer, kernel, params)
    back = export_layer(layer, kernel)
    assert set(back) == set(params)
    for name in params:
        np.testing.assert_array_equal(back[name], params[name], err_msg=name)
    # the Keras layer, called as Keras calls it, computes the variant's equations
    np.testing.assert_allclose(layer(inputs).numpy(), tf_backend.run_cell(variant, params, inputs), atol=1e-6)
    # and the fused path runs in float64 when the inputs are float64
    p64, x64, _ = random_case(variant, 3, 5, 2, 7, seed=2, dtype="float64")
    got = tf_backend.run_cell(variant, p64, x64, fused=True)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, unroll_numpy(variant, p64, x64), rtol=0, atol=1e-12)
    assert layer.cell.activation is tf_backend.keras.activations.tanh
    if kernel != "rnn":
        assert layer.cell.recurrent_activation is tf_backend.keras.activations.sigmoid


def test_gru_unpacking_sums_the_redundant_recurrent_biases():
    variant = registry().variant("gru_ra")
    params, inputs, _ = random_case(variant, 3, 4, 2, 5, seed=3)
    weights = to_layer_weights("gru", params)
    assert np.all(weights["bias"][1, :8] == 0.0)  # z and r parts of the recurrent row are packed as 0
    # move part of the input-row bias of z and r to the recurrent row, as Keras' own training would
    shift = np.random.default_rng(0).normal(size=8).astype(np.float32)
    weights["bias"][0, :8] -= shift
    weights["bias"][1, :8] += shift
    layer = keras_layer("gru", 3, 4)
    layer.set_weights([weights["kernel"], weights["recurrent_kernel"], weights["bias"]])
    contract = from_layer_weights(
        "gru", {k: v for k, v in zip(("kernel", "recurrent_kernel", "bias"), layer.get_weights())}
    )
    np.testing.assert_allclose(contract["b_z"], params["b_z"], atol=1e-6)
    np.testing.assert_allclose(
        layer(inputs).numpy(), tf_backend.run_cell(variant, contract, inputs), atol=1e-6
    )
    assert set(KERNELS) == {"lstm", "gru", "rnn"}


# --- the model and the training step ----------------------------------------------------------------------


def _model(variant_id="np", task_id="adding", seed=0, length=10, **hp):
    variant, task = registry().variant(variant_id), registry().task(task_id)
    settings = _hp(**hp)
    params = init_model_params(variant, task, settings.hidden_size, seed, lag=length)
    return tf_backend.build_model(variant, task, settings, params), params, task


@pytest.mark.parametrize("variant_id,fused", [("np", True), ("v", False), ("gru_ra", True)])
def test_training_on_a_fixed_batch_lowers_the_loss(variant_id, fused):
    model, _, task = _model(variant_id, hidden_size=16, learning_rate=1e-2, fused=fused)
    assert model.path == ("fused" if fused else "generic")
    batch = task.batch(10, 32, seed=5)
    losses = [model.train_step(batch.inputs, batch.targets) for _ in range(40)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses


def test_predict_get_params_and_set_params_round_trip():
    model, params, task = _model("np", task_id="delayed_recall", length=5)
    got = model.get_params()
    assert set(got) == set(params) and all(got[k].dtype == np.float32 for k in got)
    for name in params:
        np.testing.assert_array_equal(got[name], params[name], err_msg=name)
    other, other_params, _ = _model("np", task_id="delayed_recall", seed=1, length=5)
    inputs = task.batch(5, 4, seed=0).inputs
    model.set_params(other_params)
    assert model.predict(inputs).shape == (4, task.seq_len(5), task.output_size)
    np.testing.assert_array_equal(model.predict(inputs), other.predict(inputs))
    with pytest.raises(ValueError, match="differ"):
        model.set_params({"readout.W": other_params["readout.W"]})


@pytest.mark.parametrize("task_id", sorted(registry().tasks))
def test_task_loss_is_the_tasks_own_loss(task_id):
    task = registry().task(task_id)
    batch = task.batch(max(6, task.min_length), 5, seed=0)
    outputs = np.random.default_rng(0).normal(size=(5, batch.inputs.shape[1], task.output_size)).astype(np.float32)
    targets = tf.constant(
        batch.targets if batch.targets.dtype.kind == "f" else batch.targets.astype(np.int64)
    )
    loss = float(tf_backend.task_loss(task, tf.constant(outputs), targets))
    assert loss == pytest.approx(task.metrics(outputs, batch.targets)["loss"], rel=1e-5)


def _numpy_torch_adam(params, grads_per_step, lr, eps=1e-8, b1=0.9, b2=0.999):
    """torch.optim.Adam's formula, in float64 numpy."""
    p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
    for t, g in enumerate(grads_per_step, start=1):
        m = m + (1 - b1) * (g - m)
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return p


def _numpy_torch_sgd(params, grads_per_step, lr, momentum, nesterov):
    p, buf = params.copy(), None
    for g in grads_per_step:
        buf = g.copy() if buf is None else momentum * buf + g
        p = p - lr * (g + momentum * buf if nesterov else buf)
    return p


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "sgd_nesterov"])
def test_optimisers_follow_torchs_formulas(optimizer):
    rng = np.random.default_rng(0)
    start = rng.normal(size=5)
    # gradients near ε: Keras' Adam (ε̂ form) would differ here by far more than the tolerance
    grads = [rng.normal(size=5) * scale for scale in (1e-8, 1.0, 3e-8, 0.5)]
    var = tf.Variable(start)
    if optimizer == "adam":
        opt = tf_backend.Adam([var], learning_rate=0.1)
        expected = _numpy_torch_adam(start, grads, 0.1)
    else:
        nesterov = optimizer == "sgd_nesterov"
        opt = tf_backend.SGD([var], learning_rate=0.1, momentum=0.9, nesterov=nesterov)
        expected = _numpy_torch_sgd(start, grads, 0.1, 0.9, nesterov)
    for g in grads:
        opt.apply([tf.constant(g)], [var])
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_clipping_scales_by_the_global_norm_and_zero_disables_it():
    grads = [tf.constant([3.0, 0.0]), tf.constant([[4.0]]), None]
    clipped = tf_backend.clip_by_global_norm(grads, 1.0)
    assert clipped[2] is None
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[1].numpy(), [[0.8]], rtol=1e-6)
    assert tf_backend.clip_by_global_norm(grads, 0.0) is grads
    np.testing.assert_array_equal(tf_backend.clip_by_global_norm(grads, 10.0)[0].numpy(), [3.0, 0.0])
    zero = tf_backend.clip_by_global_norm([tf.zeros(3)], 1.0)[0]
    np.testing.assert_array_equal(zero.numpy(), np.zeros(3))


def test_the_same_trial_twice_gives_identical_numbers():
    variant, task = registry().variant("v"), registry().task("adding")
    trial = Trial("adding", 10, "v", "tf", "cpu", check_hparams({**SMALL, "max_steps": 8, "eval_every": 4}), 3)
    runs = [
        train(trial, task, variant, lambda p: tf_backend.build_model(variant, task, trial.settings, p))
        for _ in range(2)
    ]
    assert runs[0].status == "ok" and runs[0].path == "generic"
    assert len(runs[0].curve) == 5
    np.testing.assert_equal(runs[0].curve, runs[1].curve)  # exact; NaN (no train metric) equals NaN
    assert runs[0].test_best == runs[1].test_best


def test_jit_compile_trains_like_the_plain_step():
    batch = registry().task("adding").batch(10, 16, seed=1)
    losses = {}
    for xla in (False, True):
        model, _, _ = _model("gru", xla=xla)
        losses[xla] = [model.train_step(batch.inputs, batch.targets) for _ in range(5)]
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)


def test_cuda_without_a_visible_gpu_is_a_usage_error():
    if tf.config.get_visible_devices("GPU"):
        pytest.skip("a GPU is visible here")
    variant, task = registry().variant("np"), registry().task("adding")
    params = init_model_params(variant, task, 8, 0, lag=10)
    with pytest.raises(UsageError, match="cuda"):
        tf_backend.build_model(variant, task, _hp(), params, device="cuda")
    with pytest.raises(UsageError, match="cuda"):
        tf_backend.setup("cuda")
    with pytest.raises(UsageError, match="unknown device"):
        tf_backend.setup("tpu")


def test_setup_again_with_the_same_settings_is_harmless_and_environment_names_versions():
    tf_backend.setup("cpu")
    assert tf.config.threading.get_intra_op_parallelism_threads() == 1
    assert tf.config.threading.get_inter_op_parallelism_threads() == 1
    env = tf_backend.environment()
    assert env["tensorflow"] == tf.__version__ and "keras" in env
