"""Code fingerprints (harness.plugins.fingerprint): what changes a trial's code, and what does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugins import fingerprint
from harness.plugins.fingerprint import fingerprint_class, fingerprint_file
from harness.plugins.registry import registry

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = '''"""A tanh RNN, as a plugin."""

from harness.variant import Variant


class Mine(Variant):
    """h = tanh(x W + h R + b)"""

    id = "mine"

    def step(self, ops, p, x, state):
        (h,) = state
        h = ops.tanh(ops.matmul(x, p["W"]) + ops.matmul(h, p["R"]) + p["b"])  # the recurrence
        return h, (h,)
'''


@pytest.fixture(autouse=True)
def fresh():
    fingerprint.forget()
    yield
    fingerprint.forget()


def fp(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.py"
    path.write_text(text)
    fingerprint.forget()
    return fingerprint_file(path)


def test_comments_docstrings_and_layout_do_not_count(tmp_path):
    before = fp(tmp_path, PLUGIN)
    edited = PLUGIN.replace("# the recurrence", "# a new comment").replace('"""h = tanh(x W + h R + b)"""',
                                                                           '"""Reworded docstring."""')
    assert fp(tmp_path, edited) == before
    assert fp(tmp_path, edited.replace("    id = ", "\n\n    id = ")) == before


def test_an_edit_of_the_equations_counts(tmp_path):
    before = fp(tmp_path, PLUGIN)
    assert fp(tmp_path, PLUGIN.replace("ops.tanh(", "ops.sigmoid(")) != before
    assert fp(tmp_path, PLUGIN.replace('id = "mine"', 'id = "other"')) != before


def test_what_a_file_imports_from_the_harness_counts(tmp_path, monkeypatch):
    """The closure follows our imports: a plugin's fingerprint covers harness/variant.py."""
    with_import = fp(tmp_path, PLUGIN)
    variant_hash, _ = fingerprint._parse((ROOT / "harness" / "variant.py").resolve())
    assert variant_hash in fingerprint._closure(tmp_path / "mine.py")
    # a harness module that is not imported is not in it
    training_hash, _ = fingerprint._parse((ROOT / "harness" / "training" / "solo.py").resolve())
    assert training_hash not in fingerprint._closure(tmp_path / "mine.py")
    # and changing an imported module's hash changes the fingerprint
    real = fingerprint._parse

    def patched(path):
        digest, imports = real(path)
        return ("edited" if path.name == "variant.py" else digest), imports

    monkeypatch.setattr(fingerprint, "_parse", patched)
    assert fingerprint_file(tmp_path / "mine.py") != with_import


def test_shipped_variants_and_tasks_have_distinct_stable_fingerprints():
    reg = registry()
    rnn, lstm = fingerprint_class(reg.variants["rnn"]), fingerprint_class(reg.variants["np"])
    assert len(rnn) == 16 and rnn != lstm
    assert fingerprint_class(reg.variants["v"]) == lstm  # one file, one fingerprint
    # tasks/variable_copy.py imports tasks/copy.py: its closure includes it
    copy_hash, _ = fingerprint._parse((ROOT / "tasks" / "copy.py").resolve())
    assert copy_hash in fingerprint._closure(ROOT / "tasks" / "variable_copy.py")
    fingerprint.forget()
    assert fingerprint_class(reg.variants["rnn"]) == rnn


def test_a_relative_import_counts_too(tmp_path):
    (tmp_path / "helpers.py").write_text("SCALE = 1.0\n")
    text = PLUGIN.replace("from harness.variant import Variant",
                          "from harness.variant import Variant\n\nfrom .helpers import SCALE")  # fmt: skip
    before = fp(tmp_path, text)
    (tmp_path / "helpers.py").write_text("SCALE = 2.0\n")
    assert fp(tmp_path, text) != before


def test_the_committed_greff_store_has_no_trial_whose_code_changed():
    """Moving a file (issue 17's sub-packages) must not change a variant's or task's fingerprint: every
    trial of the committed ``greff`` study still matches the code here, as ``rnn-bench status`` shows."""
    from harness.plugins.freshness import changed_code
    from harness.store.database import Store

    store = Store(ROOT / "results" / "greff.sqlite", create=False, read_only=True)
    try:
        trials = store.trials_frame(expand_hparams=False)
    finally:
        store.close()
    stale, changed = changed_code(trials)
    assert len(trials) == 8800 and trials["variant_code"].notna().all()
    assert not stale.any(), changed
    # and the protocol still gives every planned trial the id it was stored under: nothing to rerun
    from harness.suites.suite import load_suite, plan

    planned = {t.id for t in plan(load_suite("greff"))}
    assert planned == set(trials["trial_id"])
