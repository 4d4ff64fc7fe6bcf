"""The Python API: names, batches, parameters and run_cell as documented."""

from __future__ import annotations

import numpy as np
import pytest

from harness import api
from harness.errors import UsageError

torch = pytest.importorskip("torch")


def test_names():
    assert {"adding", "copy", "delayed_recall"} <= set(api.tasks())
    assert {"v", "np", "cifg", "gru", "rnn"} <= set(api.variants())
    assert {"lstm", "peephole", "coupled"} <= set(api.variants(aliases=True))


@pytest.mark.parametrize("task, T, L, I, target_shape, kind", [
    ("adding", 12, 12, 2, (3,), "f"), ("copy", 4, 24, 10, (3, 24), "i"), ("delayed_recall", 6, 8, 10, (3,), "i"),
])  # fmt: skip
def test_make_batch_shapes(task, T, L, I, target_shape, kind):
    b = api.make_batch(task, T, 3, seed=0)
    assert b.inputs.shape == (3, L, I) and b.inputs.dtype == np.float32
    assert b.targets.shape == target_shape and b.targets.dtype.kind == kind
    np.testing.assert_array_equal(api.make_batch(task, T, 3, seed=0).inputs, b.inputs)


def test_init_params_contract_and_seed():
    p = api.init_params("lstm", input_size=3, hidden_size=5, seed=1)
    assert set(p) == {f"{k}_{g}" for k in "WRb" for g in "zifo"}
    assert p["W_z"].shape == (3, 5) and p["R_i"].shape == (5, 5) and p["b_f"].shape == (5,)
    assert all(a.dtype == np.float32 for a in p.values())
    np.testing.assert_array_equal(p["W_z"], api.init_params("np", 3, 5, seed=1)["W_z"])
    assert np.all(api.init_params("lstm", 3, 5, seed=1, forget_bias=3.0)["b_f"] == 3.0)
    with pytest.raises(UsageError, match="hidden_size=0"):
        api.init_params("lstm", 3, 0, seed=1)


@pytest.mark.parametrize("variant", ["rnn", "np", "v", "cifg", "gru"])
def test_run_cell_torch_matches_numpy_reference(variant):
    p = api.init_params(variant, 2, 4, seed=0)
    x = api.make_batch("adding", 6, 2, seed=0).inputs
    h_torch = api.run_cell(variant, "torch", p, x)
    h_ref = api.run_cell(variant, "numpy", p, x)
    assert h_torch.shape == (2, 6, 4)
    np.testing.assert_allclose(h_torch, h_ref, atol=1e-6)
    h64 = api.run_cell(variant, "torch", p, x.astype(np.float64))
    assert h64.dtype == np.float64


def test_run_cell_refuses_wrong_params():
    p = api.init_params("np", 2, 4, seed=0)
    del p["b_f"]
    with pytest.raises(Exception, match="b_f|contract"):
        api.run_cell("np", "torch", p, np.zeros((1, 3, 2), np.float32))
    with pytest.raises(UsageError, match="'jax'"):
        api.run_cell("np", "jax", api.init_params("np", 2, 4, seed=0), np.zeros((1, 3, 2), np.float32))


def test_init_params_is_the_trials_initial_layer():
    from harness.cell.model import init_model_params
    from harness.plugins.registry import registry

    reg = registry()
    trial = init_model_params(reg.variant("np"), reg.task("adding"), 8, seed=3, lag=50)
    mine = api.init_params("np", 2, 8, seed=3, lag=50)
    assert set(mine) <= set(trial)
    for name, value in mine.items():
        np.testing.assert_array_equal(value, trial[name])


def test_chrono_needs_the_lag():
    with pytest.raises(UsageError, match="chrono.*lag"):
        api.init_params("np", 2, 4, seed=0, forget_bias="chrono")
    b_f = api.init_params("np", 2, 64, seed=0, forget_bias="chrono", lag=50)["b_f"]
    assert np.all((b_f >= 0) & (b_f <= np.log(49)))


def test_run_cell_names_an_input_width_that_does_not_fit():
    p = api.init_params("v", 3, 4, seed=0)
    with pytest.raises(UsageError, match=r"\(2, 5, 7\).*input_size 3"):
        api.run_cell("v", "torch", p, np.zeros((2, 5, 7), np.float32))


def test_wrong_parameter_dict_names_the_offending_key():
    from harness.variant import StepError

    p = api.init_params("np", 3, 4, seed=0)
    p["b_f"] = np.zeros(5, np.float32)
    with pytest.raises(StepError, match=r"wrong shapes.*'b_f': \(\(5,\), \(4,\)\)"):
        api.run_cell("np", "torch", p, np.zeros((1, 2, 3), np.float32))
