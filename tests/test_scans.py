"""Parallel scans (``harness.scan``, ``ops.scan``, ``harness.cell.scan_choice``): every linear form gives
its step's outputs and gradients at T >= 256 (float64), in numpy, PyTorch and TensorFlow, solo and in
populations; ``--scan`` picks the path and the result records it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")

from harness.backends import tf_backend, torch_backend  # noqa: E402
from harness.backends.tf_ops import TF_OPS  # noqa: E402
from harness.backends.torch_ops import TORCH_OPS  # noqa: E402
from harness.cell.scan_choice import SCAN_AUTO, uses_scan  # noqa: E402
from harness.cell.unroll import unroll_numpy  # noqa: E402
from harness.errors import UsageError  # noqa: E402
from harness.ops import NUMPY_OPS  # noqa: E402
from harness.plugins.registry import registry  # noqa: E402
from harness.scan import LINEAR_FORMS, linear_form  # noqa: E402
from harness.trials.protocol import check_hparams  # noqa: E402
from harness.trials.trial import Trial  # noqa: E402

registry()  # the variant files register their linear forms as they load
FORMS = sorted(LINEAR_FORMS)
I, H, T = 3, 5, 300  # T >= 256 and not a multiple of the PyTorch scan's chunk


def test_the_catalogue_has_linear_forms_for_its_scan_able_cells():
    assert {"min_gru", "min_lstm", "mlstm", "rg_lru"} <= set(FORMS)


def _params(variant_id: str, seed: int) -> dict[str, np.ndarray]:
    variant = registry().variant(variant_id)
    rng = np.random.default_rng(seed)
    return {k: rng.normal(0.0, 0.5, size=s) for k, s in variant.parameter_shapes(I, H).items()}


@pytest.mark.parametrize("variant_id", FORMS)
def test_the_linear_form_is_the_step_in_numpy(variant_id):
    """With the reference ``ops.scan`` (a loop) the form must give the step's numbers: same algebra."""
    variant, params = registry().variant(variant_id), _params(variant_id, 1)
    x = np.random.default_rng(2).normal(size=(2, T, I))
    form = LINEAR_FORMS[variant_id](variant, NUMPY_OPS, params, x)
    np.testing.assert_allclose(form, unroll_numpy(variant, params, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant_id", FORMS)
def test_the_scan_gives_the_loops_outputs_and_gradients_in_both_frameworks(variant_id):
    variant, params = registry().variant(variant_id), _params(variant_id, 3)
    rng = np.random.default_rng(4)
    x, upstream = rng.normal(size=(2, T, I)), rng.normal(size=(2, T, H))
    loop = torch_backend.cell_gradients(variant, params, x, upstream)
    for backend in (torch_backend, tf_backend):
        scanned = backend.cell_gradients(variant, params, x, upstream, scan=True)
        np.testing.assert_allclose(scanned[0], loop[0], rtol=1e-10, atol=1e-11)
        for name in params:
            np.testing.assert_allclose(scanned[1][name], loop[1][name], rtol=1e-9, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(scanned[2], loop[2], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 300])
def test_ops_scan_is_the_recurrence_at_every_length_and_with_a_shared_coefficient(length):
    """``a`` per unit or one per sequence (last axis 1, as a matrix memory's gate), leading axes of a
    population; the TensorFlow scan also with a length unknown while tracing (``tf.while_loop``)."""
    rng = np.random.default_rng(length)
    b = rng.normal(size=(2, 3, length, 4))
    for a in (rng.uniform(0.2, 1.0, size=(2, 3, length, 4)), rng.uniform(0.2, 1.0, size=(2, 3, length, 1))):
        expected = NUMPY_OPS.scan(a, b)
        assert expected.shape == b.shape
        np.testing.assert_allclose(expected[..., 0, :], b[..., 0, :])  # s_1 = b_1: s_0 is zero
        got = TORCH_OPS.scan(torch.tensor(a), torch.tensor(b)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        got = TF_OPS.scan(tf.constant(a), tf.constant(b)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        spec = tf.TensorSpec([2, 3, None, None], tf.float64)
        unknown = tf.function(TF_OPS.scan, input_signature=[spec, spec])
        np.testing.assert_allclose(unknown(tf.constant(a), tf.constant(b)).numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 300])
def test_ops_cummax_is_the_running_maximum_at_every_length(length):
    x = np.random.default_rng(length).normal(size=(2, 3, length, 4))
    expected = NUMPY_OPS.cummax(x)
    assert expected[0, 0, -1, 0] == x[0, 0, :, 0].max() and np.all(np.diff(expected, axis=-2) >= 0)
    np.testing.assert_array_equal(TORCH_OPS.cummax(torch.tensor(x)).numpy(), expected)
    np.testing.assert_array_equal(TF_OPS.cummax(tf.constant(x)).numpy(), expected)
    unknown = tf.function(TF_OPS.cummax, input_signature=[tf.TensorSpec([2, 3, None, None], tf.float64)])
    np.testing.assert_array_equal(unknown(tf.constant(x)).numpy(), expected)


def test_ops_transpose_swaps_the_last_two_axes_in_every_backend():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert NUMPY_OPS.transpose(x).shape == (2, 4, 3) and NUMPY_OPS.transpose(x)[1, 3, 2] == x[1, 2, 3]
    np.testing.assert_array_equal(TORCH_OPS.transpose(torch.tensor(x)).numpy(), NUMPY_OPS.transpose(x))
    np.testing.assert_array_equal(TF_OPS.transpose(tf.constant(x)).numpy(), NUMPY_OPS.transpose(x))


@pytest.mark.parametrize("framework", ["torch", "tf"])
@pytest.mark.parametrize("variant_id, sizes", [("rg_lru", (4, 6)), ("mlstm", (4, 4))])
def test_a_population_scans_its_members_as_their_loops_train(framework, variant_id, sizes):
    """A population (of two hidden sizes, padded, where the variant allows it) trained as a scan: every
    member's learning curve is the loop's to float32 rounding, and the result says which path computed it."""
    from harness.training.population import train_population

    hp = {"max_steps": 6, "eval_every": 3, "batch_size": 8, "validation_size": 16, "test_size": 16}
    trials = [Trial("adding", 12, variant_id, framework, "cpu", check_hparams({**hp, "hidden_size": h}), seed)
              for seed, h in zip((0, 1), sizes)]  # fmt: skip
    loop = train_population(trials, framework, scan="off")
    scan = train_population(trials, framework, scan="on")
    for a, b in zip(loop, scan):
        assert (a.path, b.path) == ("generic", "scan") and a.status == b.status == "ok"
        np.testing.assert_allclose([c[2] for c in b.curve], [c[2] for c in a.curve], rtol=1e-4)
    solo = train_population(trials[:1], framework, scan="on")[0]
    assert solo.path == "scan"
    np.testing.assert_allclose([c[2] for c in solo.curve], [c[2] for c in loop[0].curve], rtol=1e-4)


def test_scan_choice_follows_the_flag_and_the_measured_table():
    reg = registry()
    min_gru, np_lstm = reg.variant("min_gru"), reg.variant("np")
    assert uses_scan(min_gru, "on", "tf", "cpu", 16) and not uses_scan(min_gru, "off", "torch", "cpu", 1)
    assert not uses_scan(np_lstm, "on", "torch", "cpu", 1)  # no linear form: always the loop
    for (framework, device), jobs in SCAN_AUTO.items():
        assert uses_scan(min_gru, "auto", framework, device, 1) == ("solo" in jobs)
        assert uses_scan(min_gru, "auto", framework, device, 16) == ("population" in jobs)
    mlstm = reg.variant("mlstm")  # its chunkwise form measured faster (or a draw won on memory) on a CPU
    assert all(uses_scan(mlstm, "auto", fw, "cpu", m) for fw in ("torch", "tf") for m in (1, 16))
    assert not uses_scan(mlstm, "auto", "torch", "cuda", 1)  # not measured on a GPU: the loop
    with pytest.raises(UsageError, match="--scan 'sometimes'"):
        uses_scan(min_gru, "sometimes", "torch", "cpu", 1)


def test_a_second_linear_form_for_one_variant_is_refused():
    @linear_form("a_test_cell")
    def first(variant, ops, p, xs):
        return xs

    try:
        assert linear_form("a_test_cell")(first) is first  # the same function again (a module reloaded): fine

        def second(variant, ops, p, xs):
            return xs

        with pytest.raises(UsageError, match="two linear forms"):
            linear_form("a_test_cell")(second)
    finally:
        LINEAR_FORMS.pop("a_test_cell", None)


@pytest.mark.parametrize("scan, path", [("off", "generic"), ("on", "scan")])
def test_a_runs_scan_flag_reaches_its_workers_and_is_recorded(tmp_path, scan, path):
    """``run --scan`` travels from the driver through the pool and the training job into the worker."""
    import sqlite3

    from harness.run.runner import run_suite
    from harness.suites.suite import load_suite

    suite = load_suite("smoke").narrowed(frameworks=["torch"], tasks=["adding"], variants=["min_gru"])
    store = tmp_path / "results.sqlite"
    run_suite(suite, store, workers=1, progress=False, scan=scan)
    with sqlite3.connect(store) as conn:
        assert {row[0] for row in conn.execute("SELECT path FROM trials")} == {path}


@pytest.mark.parametrize("length", [1, 2, 63, 64, 65, 129])
@pytest.mark.parametrize("b_f, b_i", [(0.0, 0.0), (-60.0, 40.0), (60.0, -40.0)])
def test_mlstms_chunks_give_the_step_at_every_length_and_saturated_gates(length, b_f, b_i):
    """Chunk edges (a length of one chunk, one more, a partial last chunk) and gates far from zero: the
    forget gate shut (f̃ = −60, m follows ĩ) or open with the input gate shut (m follows the forget path)."""
    variant, params = registry().variant("mlstm"), _params("mlstm", 7)
    params["b_f"][...], params["b_i"][...] = b_f, b_i
    x = np.random.default_rng(8).normal(size=(2, length, I))
    form = LINEAR_FORMS["mlstm"](variant, NUMPY_OPS, params, x)
    np.testing.assert_allclose(form, unroll_numpy(variant, params, x), rtol=1e-9, atol=1e-12)


def test_mlstms_form_scans_c_itself_where_tensorflow_does_not_know_the_length():
    """Chunks need a length; a TensorFlow signature of any length gets the stepwise scan over C, which
    must give the step's numbers too (the chunkwise form is the one the other tests reach)."""
    variant, params = registry().variant("mlstm"), _params("mlstm", 5)
    x = np.random.default_rng(6).normal(size=(2, 70, I))
    tensors = {k: tf.constant(v) for k, v in params.items()}
    form = tf.function(lambda xs: LINEAR_FORMS["mlstm"](variant, TF_OPS, tensors, xs),
                       input_signature=[tf.TensorSpec([2, None, I], tf.float64)])  # fmt: skip
    np.testing.assert_allclose(form(tf.constant(x)).numpy(), unroll_numpy(variant, params, x), rtol=1e-10, atol=1e-12)


def test_tensorflow_evaluates_mlstm_chunkwise_at_every_length_it_meets(monkeypatch):
    """A trial's predictions are traced per length where its layer is a linear form, so mLSTM's
    evaluation takes the chunkwise form (the stepwise one holds T · H² floats per sequence)."""
    import variants.xlstm_scan as xlstm_scan
    from harness.cell.model import init_model_params
    from harness.trials.protocol import Settings

    def refused(*args):
        raise AssertionError("the stepwise form ran: the length was unknown while tracing")

    monkeypatch.setattr(xlstm_scan, "_mlstm_stepwise", refused)
    task, variant = registry().task("adding"), registry().variant("mlstm")
    params = init_model_params(variant, task, 4, 0, lag=10)
    model = tf_backend.build_model(variant, task, Settings(hidden_size=4), params, scan=True)
    assert model.path == "scan"
    for length in (10, 70):
        assert model.predict(task.generate(length, 3, np.random.default_rng(0)).inputs).shape == (3, length, 1)


def test_a_forms_measurement_names_only_known_jobs():
    with pytest.raises(UsageError, match=r"\['populaton'\] are not jobs"):
        linear_form("a_test_cell", faster={("torch", "cpu"): frozenset({"solo", "populaton"})})
