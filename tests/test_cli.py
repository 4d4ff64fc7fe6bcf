"""The command line's promises: help for every verb, listings, bad input exits 2 naming the bad value
(and nothing is written), dry runs, status and the export formats. Mostly in-process
(``harness.cli.main.main``); nothing here starts a worker."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from harness.plugins.registry import registry
from harness.store.database import Store
from harness.suites.suite import list_suites, load_suite, parse_suite, plan
from harness.training.solo import TrialResult

VERBS = ["list", "run", "status", "export", "report", "check", "new-variant"]
TASKS = ["adding", "copy", "delayed_recall"]
VARIANTS = [  # every id of docs/variants.md
    "v", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr", "gru", "gru_ra", "rnn", "clockwork",
    "depth_gated", "mut1", "mut2", "mut3", "min_gru", "min_lstm",
]  # fmt: skip


def first_words(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines() if line.strip()}


# --- help -----------------------------------------------------------------------------------------------
def test_top_level_help_lists_every_verb(cli):
    code, out, _ = cli("--help")
    assert code == 0
    lines = out.splitlines()
    for verb in VERBS:
        at = [i for i, line in enumerate(lines) if line.split()[:1] == [verb] and line.startswith("    ")]
        assert at, f"{verb} is not listed"
        text = lines[at[0]].split(None, 1)[1:] or lines[at[0] + 1].split(None, 0)  # argparse may wrap a long name
        assert len(" ".join(text).split()) >= 3, f"{verb} is listed without what it does"


def _description(help_text: str) -> str:
    """The paragraph argparse prints between the usage and the first argument section."""
    blocks = [b.strip() for b in help_text.strip().split("\n\n")]
    assert blocks[0].startswith("usage:")
    first = blocks[1] if len(blocks) > 1 else ""
    return "" if re.match(r"^(positional arguments|options|optional arguments):", first) else first


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_help_explains_the_verb(cli, verb):
    code, out, _ = cli(verb, "--help")
    assert code == 0
    assert out.startswith(f"usage: rnn-bench {verb}")
    assert len(_description(out).split()) >= 3, out


# --- list -----------------------------------------------------------------------------------------------
def test_list_tasks(cli):
    code, out, _ = cli("list", "tasks")
    assert code == 0
    assert set(TASKS) <= first_words(out)


def test_list_variants_shows_every_catalogue_id(cli):
    code, out, _ = cli("list", "variants")
    assert code == 0
    assert set(VARIANTS) <= first_words(out)


@pytest.mark.parametrize("suite", sorted(set(list_suites()) | {"smoke"}))
def test_list_suites(cli, suite):
    code, out, _ = cli("list", "suites")
    assert code == 0
    lines = [line.split(None, 1) for line in out.splitlines() if line.strip()]
    described = {words[0]: words[1] if len(words) > 1 else "" for words in lines}
    assert suite in described
    assert described[suite].strip(), f"suite {suite} has no description"


# --- bad names ------------------------------------------------------------------------------------------
UNKNOWN = [  # (arguments after 'run', the bad value, a close match that must be suggested or None, valid names)
    (["smoke", "--tasks", "addng"], "addng", "adding", TASKS),
    (["smoke", "--variants", "nope"], "nope", None, VARIANTS),
    (["smoke", "--variants", "lstn"], "lstn", "lstm", VARIANTS),
    (["smoke", "--frameworks", "tourch"], "tourch", "torch", ["torch", "tf"]),
    (["smok"], "smok", "smoke", list_suites()),
]


@pytest.mark.parametrize("args, bad, close, valid", UNKNOWN, ids=[u[1] for u in UNKNOWN])
def test_unknown_name_exits_2_naming_it_the_valid_ones_and_a_close_match(cli, tmp_path, args, bad, close, valid):
    store = tmp_path / "s.sqlite"
    code, out, err = cli("run", *args, "--store", store)
    assert code == 2
    assert repr(bad) in err
    for name in valid:
        assert re.search(rf"\b{name}\b", err), f"{name!r} is not among the valid names listed: {err}"
    hint = re.search(r"did you mean (.*?)\?", err, re.IGNORECASE)
    assert hint, err
    suggested = re.findall(r"'([^']+)'", hint.group(1))
    assert suggested, err
    if close is not None:
        assert close in suggested
    assert not store.exists()


# --- malformed suite files ------------------------------------------------------------------------------
def suite_text(top: str = "", variants: str = '["rnn"]', lengths: str = "adding = [2]", training: str = "",
               search: str = "") -> str:  # fmt: skip
    return f"""name = "bad"
tasks = ["adding"]
variants = {variants}
frameworks = ["torch"]
{top}
[lengths]
{lengths}

[training]
max_steps = 5
{training}

[search]
{search}
"""


MALFORMED = {  # case: (suite text, what the message must name besides the file)
    "invalid-toml": ('tasks = ["adding"\nvariants = ["rnn"]\n', ["TOML"]),
    "unknown-top-level-key": (suite_text(top='varients = ["gru"]'), ["varients", "did you mean 'variants'"]),
    "unknown-variant": (suite_text(variants='["rnn", "lstn"]'), ["lstn"]),
    "undeclared-search-key": (suite_text(search="bogus = { choice = [1, 2] }"), ["bogus", "[search]"]),
    "learning-rate-0": (suite_text(training="learning_rate = 0"), ["learning_rate", "[training]"]),
    "hidden-size-0": (suite_text(training="hidden_size = 0"), ["hidden_size", "[training]"]),
    "batch-size-0": (suite_text(training="batch_size = 0"), ["batch_size", "[training]"]),
    "length-1": (suite_text(lengths="adding = [1]"), ["[lengths]", "adding"]),
}
WRONG_TYPES = {  # same promise, values of the wrong type (they used to crash or name the wrong thing)
    "device-not-a-string": (suite_text(top="device = 5"), ["device"]),
    "variant-not-a-string": (suite_text(variants="[5]"), ["variants"]),
    "overrides-not-a-table": (suite_text(top="overrides = 5"), ["overrides"]),
    "frameworks-not-a-list": (suite_text().replace('frameworks = ["torch"]', 'frameworks = "torch"'),
                              ["frameworks", "'torch'"]),
}  # fmt: skip
SILENTLY_IGNORED = {  # keys that name what the suite does not list (they used to be ignored without a word)
    "lengths-of-an-unknown-task": (suite_text(lengths="adding = [2]\naddin = [5]"),
                                   ["[lengths] addin", "did you mean 'adding'", "valid tasks: adding"]),
    "lengths-of-an-unlisted-task": (suite_text(lengths="adding = [2]\ncopy = [5]"),
                                    ["[lengths] copy", "does not list", "tasks: adding"]),
    "overrides-of-an-unknown-task": (suite_text() + "\n[overrides.addin]\nmax_steps = 3\n",
                                     ["[overrides.addin]", "did you mean 'adding'"]),
    "overrides-of-an-unlisted-task": (suite_text() + "\n[overrides.copy]\nmax_steps = 3\n",
                                      ["[overrides.copy]", "does not list"]),
    "baseline-not-among-variants": (suite_text(top='baseline = "gru"'), ["baseline = 'gru'", "rnn"]),
    "search-key-of-no-listed-variant": (suite_text(search="modules = { choice = [2, 4] }"),
                                        ["[search] modules", "clockwork"]),
    "too-many-trials": (suite_text(top="trials = 100000000"), ["100,000,000 trials", "limit of 100,000", "--trials"]),
}  # fmt: skip
MALFORMED.update(WRONG_TYPES)
MALFORMED.update(SILENTLY_IGNORED)


def test_the_suite_the_malformed_ones_start_from_is_valid(bench, tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(suite_text())
    result = bench.run("run", path, "--dry-run", "--store", tmp_path / "s.sqlite")
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b1 trials\b", result.stdout)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_suite_exits_2_naming_file_and_key_and_writes_nothing(cli, tmp_path, case):
    text, names = MALFORMED[case]
    path, store = tmp_path / f"{case}.toml", tmp_path / "s.sqlite"
    path.write_text(text)
    code, out, err = cli("run", path, "--no-progress", "--store", store)
    assert code == 2
    assert str(path) in err
    for name in names:
        assert name.lower() in err.lower(), err
    assert not store.exists()


def test_narrowing_to_variants_that_ignore_a_search_key_works(bench, tmp_path):
    result = bench.run("run", "smoke", "--variants", "rnn", "--dry-run", "--store", tmp_path / "s.sqlite")
    assert result.returncode == 0, result.stderr
    assert "rnn" in result.stdout


# --- impossible command-line numbers --------------------------------------------------------------------
@pytest.mark.parametrize("flag, value, named", [("--lengths", "1", "T=1"), ("--trials", "0", "trials"),
                                                ("--workers", "0", "workers")])  # fmt: skip
def test_impossible_numbers_exit_2(cli, tmp_path, flag, value, named):
    store = tmp_path / "s.sqlite"
    code, out, err = cli("run", "smoke", "--frameworks", "torch", flag, value, "--store", store)
    assert code == 2
    assert named in err
    assert not store.exists()


def test_too_many_trials_from_the_command_line_exit_2_naming_the_size(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    code, out, err = cli("run", "smoke", "--trials", "100000000", "--dry-run", "--store", store)
    assert code == 2
    assert "1,800,000,000 trials" in err and "smoke.toml" in err and "limit of 100,000" in err
    assert not store.exists()


def test_a_hidden_size_no_machine_holds_exits_2_in_the_dry_run_too(cli, tmp_path):
    """hidden_size = 100000000 passed the dry run with exit 0 (its calibration failed, then the real run
    stored the trial failed): now both exit 2 naming it, before any work."""
    suite = tmp_path / "big.toml"
    suite.write_text('name = "big"\ntasks = ["adding"]\nvariants = ["rnn"]\nframeworks = ["torch"]\n'
                     '[lengths]\nadding = [5]\n[training]\nhidden_size = 100000000\n')  # fmt: skip
    store = tmp_path / "s.sqlite"
    for extra in (["--dry-run"], ["--no-progress"]):
        code, out, err = cli("run", suite, *extra, "--store", store)
        assert code == 2, err
        assert "(hidden_size 100000000, batch_size" in err and "would not fit in memory" in err
    assert not store.exists()


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_device_cuda_without_a_gpu_exits_2_in_the_dry_run_too(cli, tmp_path):
    store = tmp_path / "s.sqlite"
    for extra in (["--dry-run"], ["--no-progress"]):
        code, out, err = cli("run", "smoke", "--frameworks", "torch", "--device", "cuda", *extra, "--store", store)
        assert code == 2, err
        assert "--device cuda: torch cannot use a GPU here" in err
    assert not store.exists()


# --- dry run --------------------------------------------------------------------------------------------
# (in a subprocess: see the next test)
def test_dry_run_prints_the_plan_and_its_size_and_creates_no_store(bench, tmp_path):
    store = tmp_path / "results" / "s.sqlite"
    result = bench.run("run", "smoke", "--frameworks", "torch", "--dry-run", "--store", store)
    assert result.returncode == 0, result.stderr
    suite = load_suite("smoke").narrowed(frameworks=["torch"])
    assert re.search(rf"\b{len(plan(suite))} trials\b", result.stdout)
    for name in suite.tasks + suite.variants:
        assert name in result.stdout
    assert not store.exists() and not store.parent.exists()


def test_run_output_goes_to_the_current_stdout(tmp_path):
    import harness.run.runner  # noqa: F401  (imported earlier, as in any longer-lived process)
    from harness.cli.main import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["run", "smoke", "--frameworks", "torch", "--dry-run", "--store", str(tmp_path / "s.sqlite")])
    assert code == 0
    assert "trials" in buffer.getvalue()


# --- status and export ----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["status"], ["export", "-o", "-"], ["export", "--format", "parquet", "-o", "OUT"]])
def test_status_and_export_on_a_missing_store_exit_2(cli, tmp_path, argv):
    store, out_file = tmp_path / "missing.sqlite", tmp_path / "out.parquet"
    code, out, err = cli(*[out_file if a == "OUT" else a for a in argv], "--store", store)
    assert code == 2
    assert str(store) in err
    assert not store.exists() and not out_file.exists()


RESULTS = [
    TrialResult(status="ok", steps=20, best_step=20, validation={"loss": 0.1, "mse": 0.1},
                test_best={"loss": 0.12, "mse": 0.12}, test_last={"loss": 0.12, "mse": 0.12},
                curve=[(0, "validation", 0.2, 0.2), (20, "validation", 0.1, 0.1)]),
    TrialResult(status="diverged", error="training loss became nan at step 3", steps=3),
    TrialResult(status="failed", error="worker process exited with code 7 while running this trial"),
]  # fmt: skip


def make_store(path, planned, finished: int) -> list[str]:
    """A store that planned ``planned`` and holds the first ``finished`` of them, with the results above in
    turn (as ``rnn-bench run`` writes them). Returns the finished ids."""
    reg = registry()
    with Store(path) as store:
        store.add_plan("smoke", planned)
        for trial, result in zip(planned[:finished], RESULTS * finished):
            store.record("run-1", "smoke", trial, reg.task(trial.task), result)
    return [t.id for t in planned[:finished]]


@pytest.fixture
def small_store(tmp_path):
    path = tmp_path / "small.sqlite"
    return path, make_store(path, plan(load_suite("smoke").narrowed(frameworks=["torch"])), 3)


def test_export_csv_to_stdout_has_a_header_and_one_row_per_trial(cli, small_store):
    store, ids = small_store
    code, out, err = cli("export", "-o", "-", "--store", store)
    assert code == 0, err
    header = out.splitlines()[0].split(",")
    assert {"trial_id", "task", "length", "variant", "framework", "status", "test_metric"} <= set(header)
    df = pd.read_csv(io.StringIO(out))
    assert sorted(df["trial_id"]) == sorted(ids)
    assert sorted(df["status"]) == ["diverged", "failed", "ok"]


def test_export_parquet_writes_one_row_per_trial(cli, small_store, tmp_path):
    store, ids = small_store
    target = tmp_path / "trials.parquet"
    code, out, err = cli("export", "--format", "parquet", "-o", target, "--store", store)
    assert code == 0, err
    df = pd.read_parquet(target)
    assert sorted(df["trial_id"]) == sorted(ids)
    assert df.set_index("status").loc["ok", "test_metric"] == pytest.approx(0.12)


def test_export_parquet_with_numeric_and_chrono_forget_bias(cli, tmp_path):
    suite = parse_suite({"tasks": ["adding"], "variants": ["lstm"], "trials": 4, "lengths": {"adding": [2]},
                         "search": {"forget_bias": {"choice": [1.0, "chrono"]}}}, "test")  # fmt: skip
    trials = plan(suite)
    assert {t.hparams["forget_bias"] for t in trials} == {1.0, "chrono"}
    store, target = tmp_path / "fb.sqlite", tmp_path / "fb.parquet"
    ids = make_store(store, trials, len(trials))
    code, out, err = cli("export", "--format", "parquet", "-o", target, "--store", store)
    assert code == 0, err
    df = pd.read_parquet(target)
    assert sorted(df["trial_id"]) == sorted(ids)
    # split into a number (missing for chrono) and its init scheme (docs/export.md)
    assert df["hp.forget_bias"].dtype == "float64" and set(df["hp.forget_bias"].dropna()) == {1.0}
    assert set(df["hp.forget_bias_init"]) == {"constant", "chrono"}


def test_export_into_a_missing_folder_creates_it(cli, small_store, tmp_path):
    store, ids = small_store
    target = tmp_path / "no" / "such" / "folder" / "trials.csv"
    code, out, err = cli("export", "-o", target, "--store", store)
    assert code == 0, err
    assert sorted(pd.read_csv(target)["trial_id"]) == sorted(ids)
    assert f"wrote {len(ids)} trials to {target}" in err


def test_status_counts_planned_finished_and_remaining(cli, small_store):
    store, _ = small_store
    code, out, err = cli("status", "--store", store)
    assert code == 0, err
    header, row = out.splitlines()[:2]
    counts = dict(zip(header.split(), row.split()))
    planned = len(plan(load_suite("smoke").narrowed(frameworks=["torch"])))
    assert counts["suite"] == "smoke"
    assert (counts["planned"], counts["ok"], counts["diverged"], counts["failed"], counts["remaining"]) == (
        str(planned), "1", "1", "1", str(planned - 3))


def test_status_lists_the_running_trials_with_their_latest_point(cli, small_store):
    store, _ = small_store
    waiting, training, dead = plan(load_suite("smoke").narrowed(frameworks=["torch"]))[3:6]
    with Store(store) as s:
        run = s.start_run("smoke", [], {})
        for trial in (waiting, training):
            assert s.claim(trial.id, run, None)
        s.record_progress(run, training, 10, "validation", 0.5, 0.25)
        s.record_progress(run, training, 15, "train", 0.4, float("nan"))
        s.record_progress("a-dead-run", dead, 10, "validation", 0.5, 0.5)  # no claim: not running
    code, out, err = cli("status", "--store", store)
    assert code == 0, err
    lines = out.splitlines()
    at = lines.index("running: 2 trials")
    assert lines[at + 1].split()[:4] == ["task", "T", "variant", "framework"]
    rows = {tuple(line.split()[:4]): line.split()[4:] for line in lines[at + 2 : at + 4]}
    assert rows[(training.task, str(training.length), training.variant, "torch")][:2] == ["15", "0.25"]
    assert rows[(waiting.task, str(waiting.length), waiting.variant, "torch")] == ["-", "-", "-"]  # no point yet
    assert int(rows[(training.task, str(training.length), training.variant, "torch")][2]) < 60


def test_the_running_table_says_how_long_since_the_last_point():
    from harness.cli.main import running_table

    running = pd.DataFrame([{"trial_id": "x", "run_id": "r", "suite": "s", "task": "adding", "length": 50,
                             "variant": "v", "framework": "tf", "step": 400, "metric": 0.012345,
                             "at": 100.0}])  # fmt: skip
    last = running_table(running, now=142.4).splitlines()[-1]
    assert last.split() == ["adding", "50", "v", "tf", "400", "0.01235", "42"]


# ------------------------------------------------------------------------------------------------------
# faults: a clear message naming the path and exit 2, never a traceback
# ------------------------------------------------------------------------------------------------------
def _corrupt(path):
    """Overwrite every page after the first: the header and schema stay intact, the data does not."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)
    path.write_bytes(data)


@pytest.mark.parametrize("argv", [
    ["status"], ["export", "-o", "-"], ["report", "--no-probe"], ["run", "smoke", "--dry-run"],
    ["run", "smoke", "--frameworks", "torch", "--no-progress"],
])  # fmt: skip
def test_a_damaged_store_exits_2_naming_it(cli, small_store, tmp_path, argv):
    store, _ = small_store
    _corrupt(store)
    if argv[0] == "report":
        argv += ["--out", tmp_path / "report"]
    code, out, err = cli(*argv, "--store", store)
    assert code == 2 and "Traceback" not in err, err
    assert f"the results store {store} is damaged" in err


def _not_writable(monkeypatch):
    """As if the store's file and folder were read-only (tests run as root, whom permissions do not stop):
    access() says so, and SQLite opens every file read-only, as it does a file it may not write."""
    real_access, real_connect = os.access, sqlite3.connect

    def connect(database, *args, uri=False, **kwargs):
        if not uri:
            database, uri = f"{Path(database).resolve().as_uri()}?mode=ro", True
        return real_connect(database, *args, uri=uri, **kwargs)

    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode, **kw))
    monkeypatch.setattr(sqlite3, "connect", connect)


@pytest.mark.parametrize("argv", [["status"], ["export", "-o", "-"], ["report", "--no-probe"],
                                  ["run", "smoke", "--dry-run", "--frameworks", "torch"]])  # fmt: skip
def test_reading_verbs_work_on_a_read_only_store_and_leave_nothing_beside_it(cli, small_store, tmp_path,
                                                                             monkeypatch, argv):  # fmt: skip
    store, ids = small_store
    _not_writable(monkeypatch)
    if argv[0] == "report":
        argv += ["--out", tmp_path / "report"]
    code, out, err = cli(*argv, "--store", store)
    assert code == 0, err
    assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith(store.name)) == [store.name]
    if argv[0] == "run":
        assert f"({len(ids)} already in {store}" in out


@pytest.mark.parametrize("argv", [["status"], ["export", "-o", "-"], ["report", "--no-probe"],
                                  ["run", "smoke", "--dry-run", "--frameworks", "torch"]])  # fmt: skip
def test_reading_verbs_leave_a_writable_store_as_they_found_it(cli, small_store, tmp_path, argv):
    """No -wal/-shm files appear beside a writable store nobody else has open (a mode=ro reader creates
    them and cannot delete them), and its bytes are unchanged."""
    store, _ = small_store
    before = store.read_bytes()
    if argv[0] == "report":
        argv += ["--out", tmp_path / "report"]
    code, out, err = cli(*argv, "--store", store)
    assert code == 0, err
    assert sorted(p.name for p in store.parent.iterdir() if p.name.startswith(store.name)) == [store.name]
    assert store.read_bytes() == before


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   PermissionError(errno.EACCES, "Permission denied")])  # fmt: skip
def test_export_that_cannot_be_written_exits_2_naming_the_file(cli, small_store, tmp_path, monkeypatch, error):
    store, _ = small_store
    target = tmp_path / "trials.csv"

    def fail(self, path, *args, **kwargs):
        error.filename = str(path)
        raise error

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    code, out, err = cli("export", "-o", target, "--store", store)
    assert code == 2 and "Traceback" not in err
    assert str(target) in err and error.strerror in err


def test_export_never_writes_over_a_store(cli, small_store, tmp_path):
    store, _ = small_store
    for target in (store, Path(f"{store}-wal")):
        target.touch()  # the -wal may not exist after a clean close
        before = target.read_bytes()
        code, out, err = cli("export", "-o", target, "--store", store)
        assert code == 2 and f"-o {target} is an SQLite database" in err
        assert target.read_bytes() == before


def test_export_to_a_folder_exits_2_naming_it(cli, small_store, tmp_path):
    store, _ = small_store
    code, out, err = cli("export", "-o", tmp_path, "--store", store)
    assert code == 2 and f"-o {tmp_path} is a folder" in err


@pytest.mark.parametrize("argv, said", [(["export", "-o", "", "--store", "STORE"], "-o '' names no file"),
                                        (["status", "--store", ""], "--store '' names no file"),
                                        (["export", "-o", "-", "--store", " "], "--store ' ' names no file")])
def test_an_empty_file_name_is_named_as_empty_not_as_the_current_folder(cli, small_store, argv, said):
    """`-o ''` (a shell's unset variable) said "-o . is a folder"."""
    store, _ = small_store
    code, out, err = cli(*[str(store) if a == "STORE" else a for a in argv])
    assert code == 2 and said in err, err


def test_a_store_the_disk_filled_while_it_was_created_is_resumed_not_refused(cli, tmp_path):
    """Found by the fault campaign: a disk that fills while `run` creates its store leaves an SQLite file
    without tables, which every later `run` refused ("an empty database") so the same command could never
    resume. A run treats it as a store with nothing in it yet; a reading verb still refuses it."""
    store = tmp_path / "s.sqlite"
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA journal_mode=WAL")  # what the creation had done when the disk filled
    conn.close()
    argv = ("run", "smoke", "--frameworks", "torch", "--tasks", "adding", "--variants", "rnn", "--no-progress")
    code, out, err = cli(*argv, "--dry-run", "--store", store)
    assert code == 0 and f"(0 already in {store}" in out, err
    code, out, err = cli(*argv, "--store", store)
    assert code == 0 and "1 trial(s) finished" in out, err
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("PRAGMA journal_mode=WAL")
    code, out, err = cli("status", "--store", empty)
    assert code == 2 and "is an empty database, not an rnn-bench results store" in err


@pytest.mark.parametrize("fills_at", ["record", "claim"])
def test_disk_full_during_a_run_keeps_finished_trials_and_exits_2(cli, tmp_path, monkeypatch, fills_at):
    """The disk fills while the second trial is stored (or claimed, also a write): the first is kept, the
    run stops with a message."""
    import harness.run.runner as runner

    class Pool:  # finishes every trial at once, without training anything
        def __init__(self, *args, **kwargs):
            self.environments = {"torch": {"gpu": "x" * 100_000}}  # too big to store, too, once the disk is full

        @staticmethod
        def describe():
            return "a pool that trains nothing"

        def run(self, jobs, on_result, claim=None, on_progress=None):
            for trial in (t for job in jobs for t in job):
                if claim is not None and not claim(trial):
                    continue
                on_result(trial, TrialResult(status="ok", steps=5, validation={"mse": 0.1, "loss": 0.1},
                                             curve=[(s, "validation", 0.1, 0.1) for s in range(2000)]))  # fmt: skip

    calls = []

    def filling(real):
        def write(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # the disk is full from here on
                if fills_at == "claim":  # a claim's row fits in a page's free space: SQLite's own error
                    raise sqlite3.OperationalError("database or disk is full")
                pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
                self.conn.execute(f"PRAGMA max_page_count = {pages}")
            return real(self, *args, **kwargs)

        return write

    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: Pool())
    monkeypatch.setattr(runner, "preflight", lambda *a, **k: None)
    monkeypatch.setattr(Store, fills_at, filling(getattr(Store, fills_at)))
    store = tmp_path / "s.sqlite"
    code, out, err = cli("run", "smoke", "--frameworks", "torch", "--no-progress", "--store", store)
    assert code == 2 and "Traceback" not in err, err
    assert f"the disk holding the results store {store} is full" in err
    assert f"Could not {'store' if fills_at == 'record' else 'claim'} " in err
    assert f"the 1 trial(s) this run finished before are kept in {store}" in err
    with Store(store, read_only=True) as s:
        assert s.count() == 1
