"""`rnn-bench check` and `rnn-bench new-variant`: a broken variant is named with the op, parameter or
shape at fault; the template passes every check as written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.diagnostics.check import check_variant
from harness.diagnostics.preflight import contract_problems, preflight
from harness.errors import UsageError
from harness.plugins.registry import Registry
from harness.plugins.scaffold import write_new_variant

pytest.importorskip("torch")

BROKEN = textwrap.dedent("""
    from harness.variant import Variant

    class Base(Variant):
        def parameter_shapes(self, I, H):
            return {"W": (I, H), "R": (H, H), "b": (H,)}

    class WrongShape(Base):
        id = "wrong_shape"
        def step(self, ops, p, x, state):
            h = ops.tanh(ops.matmul(x, p["W"]) + p["b"])
            return ops.concat([h, h]), (h,)

    class UnknownOp(Base):
        id = "unknown_op"
        def step(self, ops, p, x, state):
            h = ops.gelu(ops.matmul(x, p["W"]) + ops.matmul(state[0], p["R"]) + p["b"])
            return h, (h,)

    class UndeclaredParam(Base):
        id = "undeclared_param"
        def step(self, ops, p, x, state):
            h = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(state[0], p["R_h"]) + p["b"])
            return h, (h,)

    class NumpyEscape(Base):
        id = "numpy_escape"
        def step(self, ops, p, x, state):
            import numpy as np
            h = np.tanh(ops.matmul(x, p["W"]) + ops.matmul(state[0], p["R"]) + p["b"])
            return h, (h,)

    class BadInit(Variant):
        id = "bad_init"
        def parameter_shapes(self, I, H):
            return {"U": (I, H)}
        def step(self, ops, p, x, state):
            h = ops.tanh(ops.matmul(x, p["U"]))
            return h, (h,)

    class UnusedParam(Base):
        id = "unused_param"
        def step(self, ops, p, x, state):
            h = ops.tanh(ops.matmul(x, p["W"]) + p["b"])
            return h, (h,)
""")


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "broken_cells.py").write_text(BROKEN)
    reg = Registry()
    reg.load_folder(folder, None)
    return reg


@pytest.mark.parametrize("vid, needle", [
    ("wrong_shape", "h of shape (2, 8), expected (2, 4)"),
    ("unknown_op", "op 'gelu' is not in the ops namespace"),
    ("undeclared_param", "parameter 'R_h'"),
])  # fmt: skip
def test_contract_problems_name_the_fault(broken, vid, needle):
    problems = contract_problems(broken.variant(vid), 4)
    assert any(needle in p for p in problems), problems


@pytest.fixture
def on_plugin_path(broken, monkeypatch):
    """The broken cells on RNN_BENCH_PLUGINS, so that spawned children discover them too."""
    from harness.plugins import registry as registry_module

    monkeypatch.setenv("RNN_BENCH_PLUGINS", str(Path(broken.variant_class("unused_param").source_file).parent))
    registry_module.reload()
    yield
    monkeypatch.delenv("RNN_BENCH_PLUGINS")
    registry_module.reload()


def test_preflight_refuses_a_broken_variant_before_any_work(on_plugin_path):
    with pytest.raises(UsageError, match=r"variant 'unknown_op' \(.*broken_cells.py\) breaks its contract.*gelu"):
        preflight(["unknown_op"])
    preflight(["unused_param"])  # the contract holds; the gradient check is what catches it


def test_preflight_runs_the_step_under_autograd_too(on_plugin_path):
    """np.tanh works on numpy arrays, so only a framework shows the step escaping the ops namespace."""
    with pytest.raises(UsageError, match=r"variant 'numpy_escape'.*PyTorch autograd"):
        preflight(["numpy_escape"])


def test_check_reports_an_initialiser_failure_instead_of_crashing(broken):
    problems = contract_problems(broken.variant("bad_init"), 4)
    assert problems and "no default initialiser for parameter 'U'" in problems[0]


def test_gradient_check_flags_an_unused_parameter(on_plugin_path):
    rows = check_variant("unused_param", only=["contract", "gradients"], frameworks=["torch"])
    grad = next(r for r in rows if r.name == "gradients")
    assert grad.status == "fail" and "R" in grad.detail


def test_shipped_variant_passes_contract_and_gradients():
    rows = check_variant("cifg", only=["contract", "gradients"], frameworks=["torch"])
    assert [(r.name, r.status) for r in rows] == [("contract", "pass"), ("gradients", "pass")]
    assert float(rows[1].measured) < 1e-6


def test_new_variant_template_is_a_working_cell(tmp_path):
    paths = write_new_variant("mycell", root=tmp_path)
    assert [p.name for p in paths] == ["mycell.py", "test_variant_mycell.py"]
    reg = Registry()
    reg.load_folder(tmp_path / "variants", None)
    cell = reg.variant("mycell")
    assert contract_problems(cell, 4) == []
    assert "CHANGE" in paths[0].read_text()
    with pytest.raises(UsageError, match="already exist"):
        write_new_variant("mycell", root=tmp_path)
    with pytest.raises(UsageError, match="already exists"):
        write_new_variant("lstm")
    with pytest.raises(UsageError, match="not allowed"):
        write_new_variant("My-Cell", root=tmp_path)


def test_shipped_variant_learns_in_the_training_check():
    """The real training run: a shipped cell gets clearly below the trivial baseline on adding, T = 10."""
    (row,) = check_variant("cifg", only=["training"], frameworks=["torch"])
    assert (row.name, row.frameworks, row.status) == ("training", "torch", "pass"), row.detail
    ratio = float(row.measured.split()[0])
    assert ratio <= 0.95 and "40 steps on adding T=10" in row.detail


def test_population_row_says_how_a_variant_trains_in_populations():
    from harness.diagnostics.check import population_row
    from variants.rnn import SimpleRNN

    class ReadsFirstAxis(SimpleRNN):  # sizes from shape[0]: with a member axis that is M, not H
        id = ""

        def step(self, ops, p, x, state):
            (h,) = state
            scale = 1.0 / p["b"].shape[0]
            h = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"]) * scale + p["b"])
            return h, (h,)

    from harness.plugins.registry import registry

    reg = registry()
    assert "members of any hidden size" in population_row(reg.variant("v")).detail
    clockwork = population_row(reg.variant("clockwork"))
    assert clockwork.status == "pass" and "populations of one hidden size" in clockwork.detail
    solo = population_row(ReadsFirstAxis())
    assert solo.status == "pass" and solo.detail.startswith("trains solo, not in populations")


def test_the_training_agreement_tolerance_follows_the_cells_own_rounding_and_is_capped():
    from harness.diagnostics.check import ROUNDING_CAP, TOLERANCE, _agreement_row

    plain = _agreement_row({"max_rel": 1e-5, "rounding_rel": 1e-7}, 40, "torch")
    assert plain.status == "pass" and plain.tolerance == "2.0e-05" and "strays" not in plain.detail
    sensitive = _agreement_row({"max_rel": 3.8e-3, "rounding_rel": 3.8e-3}, 40, "torch")
    assert sensitive.status == "pass" and "strays 3.8e-03 from float64 (torch)" in sensitive.detail
    assert _agreement_row({"max_rel": 5e-3, "rounding_rel": 1e-3}, 40, "tf").status == "fail"  # 3 x 1e-3 < 5e-3
    capped = _agreement_row({"max_rel": 0.05, "rounding_rel": 0.1}, 40, "torch")
    assert capped.status == "fail" and capped.tolerance == f"{ROUNDING_CAP:.1e}"
    assert TOLERANCE["training"] < ROUNDING_CAP


def test_the_scan_row_compares_the_linear_form_with_the_loop():
    (row,) = check_variant("rg_lru", only=["scan"], frameworks=["torch"])
    assert (row.name, row.status, row.tolerance) == ("scan", "pass", "1.0e-10 / 1.0e-09"), row.detail
    out = float(row.measured.split(",")[0].split()[1])
    assert 0 < out < 1e-10  # not zero: the scan adds in another order than the loop, so it really ran
    (skipped,) = check_variant("np", only=["scan"], frameworks=["torch"])
    assert (skipped.status, skipped.detail) == ("skip", "the variant has no linear form")


def test_the_readmes_sample_check_table_has_a_row_for_every_check_in_order():
    """The README quotes `rnn-bench check v`: its rows must be the checks the command prints, in their
    order (it once lacked the population row)."""
    from harness.diagnostics.check import CHECKS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    sample = readme.split("    $ rnn-bench check v\n", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in sample.splitlines() if line.strip() and line.split()[0] in CHECKS]
    assert list(dict.fromkeys(names)) == list(CHECKS)
