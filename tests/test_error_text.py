"""Failed trials' error text: stored and printed as plain text carrying the real message, also when
Keras wraps it (a step that fails only under TensorFlow used to print ``training=False``)."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

from harness.error_text import headline, plain
from harness.training.solo import failed

PLUGINS = Path(__file__).resolve().parent / "plugins"
REAL = "Using a symbolic `tf.Tensor` as a Python `bool` is not allowed."
# The end of a real stored error (tests/plugins/tf_only under TensorFlow 2.21, Keras 3), before the fix
KERAS_WRAPPED = f"""Traceback (most recent call last):
  File "harness/backends/tf_backend.py", line 251, in predict
    return self._predict(self._tensor(inputs)).numpy()
tensorflow.python.framework.errors_impl.OperatorNotAllowedInGraphError: in user code:

    File "tests/plugins/tf_only/tf_only.py", line 19, in step
        if h[0, 0] > 1e9:

    OperatorNotAllowedInGraphError: Exception encountered when calling VariantCell.call().

    \x1b[1m{REAL} You can attempt the following resolutions to the problem.\x1b[0m

    Arguments received by VariantCell.call():
      • inputs=tf.Tensor(shape=(None, 2), dtype=float32)
      • states=('tf.Tensor(shape=(None, 4), dtype=float32)',)
      • training=False"""


def test_headline_of_a_keras_wrapped_error_is_the_real_message():
    assert headline(KERAS_WRAPPED) == (
        f"OperatorNotAllowedInGraphError: {REAL} You can attempt the following resolutions to the problem."
    )


def test_headline_of_a_plain_traceback_is_its_last_line():
    try:
        raise ValueError("bad \x1b[31mvalue\x1b[0m")
    except ValueError as e:
        error = failed(e).error
    assert headline(error) == "ValueError: bad value"
    assert headline("") == ""


def test_stored_error_text_has_no_escape_codes():
    text = failed(RuntimeError("\x1b[1mbold\x1b[0m and \x1b]8;;http://x\x1b\\a link\x1b]8;;\x1b\\")).error
    assert "\x1b" not in text
    assert text.endswith("RuntimeError: bold and a link")
    assert plain(KERAS_WRAPPED).count("\x1b") == 0 and REAL in plain(KERAS_WRAPPED)


@pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("torch", "tensorflow")), reason="needs PyTorch and TensorFlow"
)
def test_a_trial_failing_only_under_tensorflow_stores_and_prints_the_real_message(bench, tmp_path):
    suite = tmp_path / "tf_only.toml"
    suite.write_text("""name = "tf_only"
tasks = ["adding"]
variants = ["tf_only"]
frameworks = ["torch", "tf"]
[lengths]
adding = [2]
[training]
max_steps = 4
eval_every = 2
batch_size = 8
hidden_size = 4
validation_size = 16
test_size = 16
""")
    store = tmp_path / "s.sqlite"
    env = bench.env(RNN_BENCH_PLUGINS=str(PLUGINS / "tf_only"))
    result = bench.run("run", suite, "--workers", "1", "--no-progress", "--store", store, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(store)
    try:
        rows = dict(conn.execute("SELECT framework, status || ' ' || COALESCE(error, '') FROM trials").fetchall())
    finally:
        conn.close()
    assert rows["torch"] == "ok "
    status, error = rows["tf"].split(" ", 1)
    assert status == "failed" and REAL in error and "\x1b" not in error
    printed = [line for line in result.stdout.splitlines() if line.startswith("failed: ")]
    assert printed == [f"failed: adding/T=2/tf_only/tf/seed=0: {headline(error)}"]
    assert printed[0].split(": ", 2)[2].startswith(f"OperatorNotAllowedInGraphError: {REAL}")
