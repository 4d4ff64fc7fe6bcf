"""Equal parameter budgets (``parameters = N`` in a suite; harness.suites.budget): every variant at the
hidden size whose cell comes closest to N weights, never a size its hyperparameters forbid, and a plan
that says which cells cannot come within 10 %."""

from __future__ import annotations

import io

import pytest

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.suites.budget import TOLERANCE, budget_count, budget_hidden_size, budget_lines
from harness.suites.suite import parse_suite, plan


def _suite(**extra):
    data = {"name": "eq", "tasks": ["parity", "associative_recall"], "variants": ["np", "clockwork", "mlstm"],
            "frameworks": ["torch"], "trials": 3, "lengths": {"parity": [20], "associative_recall": [5]},
            "search": {"modules": {"choice": [2, 4, 8]}}, **extra}  # fmt: skip
    return parse_suite(data, "test.toml")


@pytest.mark.parametrize("variant_id", sorted(registry().variants))
@pytest.mark.parametrize("input_size", [2, 33])
def test_every_variant_comes_within_ten_percent_of_a_budget_and_no_other_size_comes_closer(variant_id, input_size):
    variant = registry().variant(variant_id)
    budget = 20_000
    hidden, count = budget_hidden_size(variant, input_size, budget), budget_count(variant, input_size, budget)
    assert count == variant.parameter_count(input_size, hidden)
    assert abs(count - budget) <= TOLERANCE * budget
    for other in range(1, hidden + 50):  # brute force around it: nothing allowed is closer
        try:
            assert abs(variant.parameter_count(input_size, other) - budget) >= abs(count - budget)
        except (UsageError, ValueError):
            continue


def test_a_planned_trial_gets_its_variants_budget_width_and_clockwork_a_multiple_of_its_modules():
    suite = _suite(parameters=20_000)
    reg = registry()
    for t in plan(suite):
        variant = reg.variant(t.variant)
        variant = type(variant)(**{k: v for k, v in t.hparams.items() if k in variant.hyperparameters})
        count = variant.parameter_count(reg.task(t.task).input_size, t.hparams["hidden_size"])
        assert abs(count - 20_000) <= TOLERANCE * 20_000, t.label()
        if t.variant == "clockwork":
            assert t.hparams["hidden_size"] % t.hparams["modules"] == 0
    widths = {(t.variant, t.task): t.hparams["hidden_size"] for t in plan(suite)}
    assert widths[("mlstm", "parity")] > widths[("np", "parity")]  # no recurrent matrices: wider at one budget
    lines = budget_lines(20_000, plan(suite))  # mLSTM's state: h, its H × H memory C, n and m
    assert any(line.split()[:4] == ["mlstm", "I", "=", "2"] and "H 1666 (19,998 parameters, -0.0%; state 2,778,889)"
               in line for line in lines), lines  # fmt: skip


def test_a_budget_no_cell_can_reach_is_named_in_the_plan():
    suite = _suite(parameters=100)
    lines = budget_lines(100, plan(suite))
    assert any(line.strip().startswith("! mlstm cannot come within 10% of 100 parameters at I = 33") for line in lines)
    assert not any("! mlstm" in line and "I = 2:" in line for line in lines)  # at I = 2 it can
    from harness.run.runner import describe_plan

    out = io.StringIO()
    describe_plan(suite, plan(suite), out)
    assert "parameters = 100: each cell's hidden size" in out.getvalue() and "state " in out.getvalue()


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "20000"])
def test_a_budget_must_be_a_positive_integer(bad):
    with pytest.raises(UsageError, match=f"parameters = {bad!r} must be an integer >= 1"):
        _suite(parameters=bad)


@pytest.mark.parametrize("table", ["search", "training"])
def test_a_budget_and_a_hidden_size_together_are_refused(table):
    value = {"choice": [16, 32]} if table == "search" else 32
    extra = {table: {"hidden_size": value, **({"modules": {"choice": [2]}} if table == "search" else {})}}
    with pytest.raises(UsageError, match=rf"\[{table}\] hidden_size and parameters = 500 both set the hidden size"):
        _suite(parameters=500, **extra)


def test_a_large_budget_is_reached_by_the_widest_cells_too():
    """No fixed width cap: IndRNN's weights grow as 3H at I = 2, so 100,000 needs H of about 33,000."""
    indrnn = registry().variant("indrnn")
    assert abs(budget_count(indrnn, 2, 100_000) - 100_000) <= TOLERANCE * 100_000


def test_initial_value_settings_do_not_start_a_new_search():
    from harness.suites import budget

    np_cls = registry().variant_class("np")
    budget._closest.cache_clear()
    for bias in (0.5, 1.0, 2.5, "chrono"):
        budget_hidden_size(np_cls(forget_bias=bias), 2, 12_345)
    assert budget._closest.cache_info().currsize == 1


def test_a_miss_names_the_hyperparameters_that_shape_the_cell():
    """Clockwork's widths are multiples of its modules: with 32 modules, 20,000 is missed by 16 %."""
    suite = _suite(parameters=20_000, search={"modules": {"choice": [32]}})
    lines = budget_lines(20_000, plan(suite))
    assert any(line.strip().startswith("! clockwork with modules = 32 cannot come within 10%") for line in lines)


def test_a_hidden_size_in_a_tasks_overrides_is_refused_with_a_budget():
    with pytest.raises(UsageError, match=r"\[overrides.parity\] hidden_size and parameters = 500"):
        _suite(parameters=500, overrides={"parity": {"hidden_size": 8}})
