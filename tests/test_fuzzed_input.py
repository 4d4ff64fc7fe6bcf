"""Fuzzed input (Hypothesis): malformed suite files, variant hyperparameters, task names and command lines.

The contract under test: bad input ends in a ``UsageError`` (the command line's exit 2) whose message
names where it came from, never another exception (a traceback), and a refused command writes no store.
``make test`` runs the ``fast`` profile (a few hundred examples in all, seconds); ``make fuzz`` the
``long`` one (``RNN_BENCH_FUZZ=long``: thousands, their count printed), as the fault campaign does.
Every example is derived from a seed Hypothesis prints on failure, so a failure reproduces.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from harness.errors import UsageError
from harness.plugins.registry import registry
from harness.suites.suite import load_suite, parse_suite, plan, plan_size

QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("fast", max_examples=60, deadline=None, derandomize=True, database=None,
                          suppress_health_check=QUIET)  # fmt: skip
settings.register_profile("long", max_examples=int(os.environ.get("RNN_BENCH_FUZZ_EXAMPLES", "2000")), deadline=None,
                          database=None, suppress_health_check=QUIET)  # fmt: skip
settings.load_profile(os.environ.get("RNN_BENCH_FUZZ", "fast"))

WHERE = "fuzz.toml"
BASE: dict[str, Any] = {
    "name": "fuzz", "tasks": ["adding", "delayed_recall"], "variants": ["np", "rnn"], "frameworks": ["torch"],
    "trials": 2, "lengths": {"adding": [5], "delayed_recall": [4]},
    "training": {"max_steps": 10, "batch_size": 4},
    "search": {"learning_rate": {"log_uniform": [1e-3, 1e-2]}, "forget_bias": {"choice": [1.0, "chrono"]}},
    "overrides": {"adding": {"max_steps": 5}},
}  # fmt: skip

# --- values no one thought of ---------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),  # TOML's integers
    st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-320, 1e308, math.inf, -math.inf, math.nan]),
)
TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40),  # any unicode, control characters
    st.sampled_from(["", " ", "chrono", "banana", "torch", "tf", "cuda", "adding", "np", "../x", "a" * 300,
                     "log_uniform", "choice", "uniform", "adding[pairs=2]", "associative_recall[pairs=99]"]),
)
SCALARS = st.one_of(st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(TEXT, inner, max_size=3)), max_leaves=12)
KEYS_OF = {
    "": sorted(BASE) + ["replicates", "seeds", "baseline", "device", "time_limit", "search_seed", "parameters",
                        "statistics", "description"],
    "lengths": ["adding", "delayed_recall", "copy"],
    "training": ["max_steps", "batch_size", "learning_rate", "hidden_size", "clip_norm", "eval_every",
                 "validation_size", "test_size", "optimizer", "fused", "test_lengths", "train_lengths"],
    "search": ["learning_rate", "hidden_size", "forget_bias", "clip_norm", "batch_size"],
    "overrides": ["adding", "delayed_recall"],
    "statistics": ["primary", "test", "correction", "family", "alpha"],
}  # fmt: skip


@st.composite
def mutated_suites(draw) -> dict[str, Any]:
    """The base suite with one to three edits: a key set to a strange value (known keys and random ones,
    at the top, in a table, or a distribution's arguments), or a key removed."""
    import copy

    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(sorted(KEYS_OF)))
        key = draw(st.one_of(st.sampled_from(KEYS_OF[table]), TEXT))
        target = data if not table else data.setdefault(table, {})
        if not isinstance(target, dict):
            continue
        action = draw(st.sampled_from(["set", "set", "distribution", "remove"]))
        if action == "remove":
            target.pop(key, None)
        elif action == "distribution":
            kind = draw(st.sampled_from(["log_uniform", "log_uniform_int", "uniform", "choice", "multiple_of"]))
            target[key] = {kind: draw(st.one_of(VALUES, st.lists(SCALARS, max_size=3)))}
        else:
            target[key] = draw(VALUES)
    return data


def _refused_or_planned(data: dict[str, Any]) -> None:
    """Parse and plan ``data``; only a UsageError naming the file may come out."""
    try:
        suite = parse_suite(data, WHERE)
        if plan_size(suite) <= 5_000:  # larger plans are refused or accepted by size alone (tested apart)
            plan(suite)
        event("planned")
    except UsageError as e:
        event("refused")
        assert str(e).strip(), "an empty message"
        assert WHERE in str(e) or "suite" in str(e), f"the message does not say where: {e}"


@given(mutated_suites())
def test_a_malformed_suite_is_refused_with_a_message_never_a_traceback(data):
    _refused_or_planned(data)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_a_suite_file_of_any_bytes_is_refused_with_a_message(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("suites") / "fuzz.toml"
    path.write_bytes(content)
    try:
        load_suite(str(path))
    except UsageError as e:
        assert str(path) in str(e) or "suite file" in str(e), str(e)


def test_a_suite_file_that_is_not_text_or_not_a_file_is_named(tmp_path):
    """Found by the fuzzer: a binary suite file ended in a UnicodeDecodeError traceback."""
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UsageError, match=f"suite file {binary} is not UTF-8 text"):
        load_suite(str(binary))
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(UsageError, match=f"suite file {folder} cannot be read"):
        load_suite(str(folder))


# --- variant hyperparameters and task names ---------------------------------------------------------------
VARIANT_KEYS = sorted((vid, key) for vid, cls in registry().variants.items() for key in cls.hyperparameters)


@given(st.sampled_from(VARIANT_KEYS), VALUES)
def test_a_variant_hyperparameter_of_any_value_is_refused_by_name_or_taken(pair, value):
    vid, key = pair
    try:
        registry().variant_class(vid)(**{key: value})
    except UsageError as e:
        assert key in str(e), f"{vid}({key}={value!r}): the message does not name the key: {e}"


@given(st.sampled_from(sorted(registry().variants)), st.dictionaries(TEXT, SCALARS, min_size=1, max_size=2))
def test_unknown_variant_hyperparameters_are_refused_by_name(vid, kwargs):
    cls = registry().variant_class(vid)
    assume(not set(kwargs) <= set(cls.hyperparameters))
    with pytest.raises(UsageError):
        cls(**kwargs)


TASK_NAMES = st.one_of(
    TEXT,
    st.builds(lambda t, k, v: f"{t}[{k}={v}]", st.sampled_from(sorted(registry().tasks)), TEXT, TEXT),
    st.builds(lambda t, body: f"{t}[{body}]", st.sampled_from(sorted(registry().tasks)), TEXT),
)


@given(TASK_NAMES, st.integers(-5, 10_000))
def test_a_task_name_or_length_of_any_form_is_refused_by_name_or_taken(name, length):
    reg = registry()
    try:
        task = reg.task(reg.canonical_task(name, "--tasks"), "--tasks")
        task.check_length(length, "--lengths")
    except UsageError as e:
        assert str(e).strip()


# --- command lines ----------------------------------------------------------------------------------------
NAMES = st.lists(st.one_of(st.sampled_from(["np", "lstm", "rnn", "v", "gru", "adding", "copy", "torch", "tf", "jax",
                                            "associative_recall[pairs=2]", ""]), TEXT), min_size=1, max_size=3)
NUMBER_WORDS = st.one_of(st.integers(-3, 10**12).map(str), st.sampled_from(["0", "-1", "1e9", "nan", "inf", "2.5", ""]))
FLAG_VALUES = {
    "run": {"--tasks": NAMES.map(",".join), "--variants": NAMES.map(",".join), "--frameworks": NAMES.map(",".join),
            "--lengths": st.lists(NUMBER_WORDS, min_size=1, max_size=3).map(",".join),
            "--trials": NUMBER_WORDS, "--replicates": NUMBER_WORDS, "--max-steps": NUMBER_WORDS,
            "--workers": NUMBER_WORDS, "--population": NUMBER_WORDS, "--time-limit": NUMBER_WORDS,
            "--device": st.sampled_from(["cpu", "cuda", "tpu", ""]), "--scan": st.sampled_from(["on", "off", "x"]),
            "--executor": st.sampled_from(["local", "dask", "ray"]), "--retries": NUMBER_WORDS,
            "--workers-per-gpu": NUMBER_WORDS, "--resources": TEXT, "--scheduler": TEXT},
    "list": {"--input-size": NUMBER_WORDS, "--hidden-size": NUMBER_WORDS},
    "export": {"--format": st.sampled_from(["csv", "parquet", "xlsx"]), "--suite": TEXT, "--baseline": TEXT,
               "--primary": TEXT},
    "status": {},
}  # fmt: skip
FIRST_WORDS = {"run": st.sampled_from(["smoke", "quick", "nope", "x.toml", ""]),
               "list": st.sampled_from(["tasks", "variants", "suites", "x"]), "export": st.just(None),
               "status": st.just(None)}  # fmt: skip


@st.composite
def command_lines(draw) -> list[str]:
    """A verb, its first word, then a few of its own flags with values from their plausible to their absurd
    (and now and then a random word), so most lines get past argparse into the harness's own checks."""
    verb = draw(st.sampled_from(sorted(FLAG_VALUES)))
    argv = [verb]
    first = draw(FIRST_WORDS[verb])
    if first is not None:
        argv.append(first)
    flags = FLAG_VALUES[verb]
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=4, unique=True)) if flags else []:
        argv += [flag, draw(flags[flag])]
    if draw(st.sampled_from([False] * 9 + [True])):  # now and then (integers(0, 9) draws 0 far more often)
        argv.insert(draw(st.integers(1, len(argv))), draw(TEXT))
    return argv


@given(command_lines())
def test_a_command_line_of_any_words_exits_0_or_2_with_a_message(tmp_path_factory, monkeypatch_session,
                                                                  small_store, argv):  # fmt: skip
    """Never a traceback; a refused command (exit 2) says why on stderr; a dry run creates no store and
    the reading verbs leave theirs as it was. A run is always a dry run here (its preflight and
    calibration, which start workers, are tested elsewhere)."""
    import contextlib
    import io

    from harness.cli.main import main

    folder = tmp_path_factory.mktemp("cli")
    store = folder / "s.sqlite" if argv[0] == "run" else small_store
    before = small_store.read_bytes()
    if argv[0] == "run":
        argv = [*argv, "--dry-run"]
    if argv[0] == "export":
        argv = [*argv, "-o", str(folder / "out.csv")]
    if argv[0] != "list":
        argv = [*argv, "--store", str(store)]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: a malformed command line (2) or --help (0)
            code = e.code
    event(f"{argv[0]}: exit {code}")
    assert code in (0, 2), f"{argv}: exit {code}\n{err.getvalue()}"
    if code == 2:
        assert err.getvalue().strip(), f"{argv}: exit 2 without a message"
    assert argv[0] != "run" or not store.exists(), f"{argv} created the store"
    assert small_store.read_bytes() == before, f"{argv} changed the store it read"


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from synthetic_store import write_synthetic_store

    return write_synthetic_store(tmp_path_factory.mktemp("store") / "small.sqlite", variants=("v", "rnn"),
                                 tasks={"adding": (10,)}, trials_per_cell=2)  # fmt: skip


@pytest.fixture(scope="module")
def monkeypatch_session():
    """The run's preflight and its calibration start worker processes: seconds per example. Both are
    tested elsewhere; here they are skipped, so thousands of command lines run in seconds."""
    from harness.run import runner

    patch = pytest.MonkeyPatch()
    patch.setattr(runner, "preflight", lambda variants: None)
    patch.setattr(runner, "_estimate_lines", lambda *args, **kwargs: [])
    yield patch
    patch.undo()

