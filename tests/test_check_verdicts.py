"""`rnn-bench check`'s verdicts, without running a framework: the training row passes only when the
variant learns and says what the run measured, a framework left out is not called "not installed",
and the new-variant template's test reports a skipped check as skipped, not passed."""

from __future__ import annotations

import importlib.util
import math

import pytest

from harness.diagnostics import check
from harness.diagnostics.check import LEARNS, TRAINING_RUN, CheckRow
from harness.plugins.registry import registry
from harness.plugins.scaffold import write_new_variant

BASELINE = registry().task(TRAINING_RUN["task"]).baseline(TRAINING_RUN["length"])["loss"]  # 1/6 at T = 10


def fake_training(curves: dict[str, tuple[list[float], list[float]]], max_rel: float | None = None):
    """A stand-in for ``compare_training`` that returns the given (train, validation) curves."""
    calls = []

    def compare_training(vid, **kwargs):
        calls.append(kwargs)
        out = {fw: {"train": train, "validation": val, "status": "ok"} for fw, (train, val) in curves.items()}
        if max_rel is not None:
            out["max_rel"] = max_rel
        return out

    return compare_training, calls


def training_rows(curves, max_rel=None):
    compare, calls = fake_training(curves, max_rel)
    rows = check._training_rows("np", list(curves), None, compare)
    return rows, calls


def test_a_loss_that_rises_fails_the_training_row():
    rising = [1.0 + 0.5 * k for k in range(20)]  # 1 -> 10.5
    rows, _ = training_rows({"torch": (rising, rising[::5])})
    assert [(r.name, r.frameworks, r.status) for r in rows] == [("training", "torch", "fail")]


def test_a_loss_that_falls_only_to_the_trivial_baseline_fails():
    """Predicting the mean target gets the loss down to the baseline without learning the task."""
    val = [1.0, 0.5, 0.2, BASELINE * 1.01]
    rows, _ = training_rows({"torch": ([1.0, 0.4, 0.2], val)})
    assert rows[0].status == "fail"


def test_a_clear_decrease_below_the_baseline_passes_and_the_detail_comes_from_the_run():
    train = [0.9, 0.7, 0.5, 0.3, 0.2, 0.15, 0.12]
    val = [0.812, 0.4, 0.2, 0.0913]
    rows, calls = training_rows({"torch": (train, val)})
    (row,) = rows
    assert row.status == "pass"
    task, T = TRAINING_RUN["task"], TRAINING_RUN["length"]
    assert row.detail == f"7 steps on {task} T={T}: validation loss 0.812 -> best 0.0913 (trivial baseline 0.167)"
    assert row.measured == f"{0.0913 / BASELINE:.2f} x baseline"
    assert calls[0]["task"] == task and calls[0]["length"] == T and calls[0]["steps"] == TRAINING_RUN["steps"]


def test_a_non_finite_loss_fails():
    rows, _ = training_rows({"torch": ([0.9, math.nan, 0.1], [0.8, 0.05])})
    assert rows[0].status == "fail" and "not finite" in rows[0].detail


@pytest.mark.parametrize("max_rel, status", [(1e-7, "pass"), (1e-3, "fail")])
def test_both_frameworks_learn_and_agree(max_rel, status):
    good = ([0.9, 0.5, 0.2], [0.8, 0.3, 0.1])
    rows, _ = training_rows({"torch": good, "tf": good}, max_rel)
    assert [(r.frameworks, r.status) for r in rows] == [("torch", "pass"), ("tf", "pass"), ("torch vs tf", status)]
    assert LEARNS < 1


@pytest.fixture
def both_installed(monkeypatch):
    """This process believes torch and tf are installed (nothing here starts a framework)."""
    monkeypatch.setattr(check, "installed_frameworks", lambda: ["torch", "tf"])


def test_a_framework_left_out_is_not_called_not_installed(both_installed):
    rows = check.check_variant("cifg", only=["contract", "gradients", "parity"], frameworks=["tf"])
    skipped = {r.name: r.detail for r in rows if r.status == "skip"}
    assert set(skipped) == {"gradients", "parity"}
    assert all("left out by --frameworks" in d for d in skipped.values()), skipped
    assert not any("not installed" in d for d in skipped.values()), skipped


def test_check_with_one_framework_chosen_exits_0_when_nothing_fails(both_installed, monkeypatch, capsys):
    import harness.backends

    real = check.check_variant
    monkeypatch.setattr(harness.backends, "check_framework", lambda fw, where="": fw)
    only = ["contract", "gradients"]
    monkeypatch.setattr(check, "check_variant", lambda vid, frameworks=None: real(vid, only, frameworks))
    assert check.run_checks("cifg", ["tf"]) == 0
    out = capsys.readouterr().out
    assert "left out by --frameworks" in out and "not installed" not in out


def test_a_framework_that_is_absent_is_called_not_installed(monkeypatch, capsys):
    monkeypatch.setattr(check, "installed_frameworks", lambda: ["tf"])
    rows = check.check_variant("cifg", only=["contract", "gradients"])
    assert rows[1].status == "skip" and "not installed" in rows[1].detail


# --- the new-variant template's test -------------------------------------------------------------------
def template_test(tmp_path, rows: list[CheckRow]):
    """The generated test function of a new variant, its ``rows`` fixture replaced by ``rows``."""
    paths = write_new_variant("mycell", root=tmp_path)
    spec = importlib.util.spec_from_file_location("test_variant_mycell", paths[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda name: module.test_mycell(rows, name)


def test_template_test_reports_a_skipped_check_as_skipped(tmp_path):
    rows = [CheckRow("contract", "numpy", "pass"), CheckRow("parity", "-", "skip", detail="needs torch and tf")]
    run = template_test(tmp_path, rows)
    run("contract")  # passes
    with pytest.raises(pytest.skip.Exception, match="needs torch and tf"):
        run("parity")


def test_template_test_fails_a_failing_check(tmp_path):
    run = template_test(tmp_path, [CheckRow("training", "torch", "fail", detail="validation loss 1 -> best 2")])
    with pytest.raises(AssertionError, match="best 2"):
        run("training")
