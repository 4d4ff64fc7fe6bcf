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
    assert {"min_gru", "min_lstm", "rg_lru"} <= set(FORMS)


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


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_a_population_scans_its_members_as_their_loops_train(framework):
    """A population of two hidden sizes (padded) trained as a scan: every member's learning curve is the
    loop's to float32 rounding, and the result says which path computed it."""
    from harness.training.population import train_population

    hp = {"max_steps": 6, "eval_every": 3, "batch_size": 8, "validation_size": 16, "test_size": 16}
    trials = [Trial("adding", 12, "rg_lru", framework, "cpu", check_hparams({**hp, "hidden_size": h}), seed)
              for seed, h in ((0, 4), (1, 6))]  # fmt: skip
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
