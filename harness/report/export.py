"""The export: a store's trials, learning curves and comparisons with the baseline as typed,
self-describing tables for pandas users (``rnn-bench export``; every column is described in
docs/export.md).

On top of the stored columns (``Store.trials_frame``, ``Store.curves_frame``, ``Store.test_lengths_frame``)
a table gets:

- ``configuration_id`` (``harness.trials.trial.configuration_id``): the same for the PyTorch and TensorFlow
  trials of one configuration and seed, so ``pivot(index="configuration_id", columns="framework")``
  pairs them; ``search_index`` k and ``replicate`` r, read from the seed ``k + r * SEED_STRIDE``
  (``harness.suites.suite.split_seed``);
- types: every stored column by its SQL type (integers nullable, since a failed trial has no
  best_step), but ``solved`` and ``higher_is_better`` boolean and ``finished_at`` a UTC timestamp; each
  ``hp.*`` column of one type: ``forget_bias`` (1.0 or "chrono"), and any hyperparameter that mixes
  numbers and words, is split into a number column (missing where a word) and a word column
  (``hp.forget_bias_init``: "constant" or "chrono").

CSV keeps the values, not the types: ``pd.read_csv(path, parse_dates=["finished_at"])`` reads them back
typed (booleans as True/False, the time as ISO 8601 in UTC); Parquet keeps the types themselves.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import UsageError
from harness.store.database import Store, is_sqlite_file
from harness.suites.suite import split_seed
from harness.trials.trial import Trial, configuration_id

FORMATS = ("csv", "parquet")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: CSV's time format: ISO 8601 (RFC 3339) in UTC, read back by pandas, R, spreadsheets and databases
CSV_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

#: The columns that say which trial a row is, in the export's order, right after ``trial_id``
IDENTITY = ["configuration_id", "search_index", "replicate"]
#: What a curve row repeats of its trial, so that it can be filtered or joined without the trials table
CURVE_KEYS = ["trial_id", *IDENTITY, "task", "length", "variant", "framework", "device", "seed", "metric_name"]
CURVE_COLUMNS = [*CURVE_KEYS, "split", "step", "loss", "metric"]
#: A test length's row: its trial's keys, the test length, its multiple of T, the metric and loss there
LENGTH_COLUMNS = [*CURVE_KEYS, "test_length", "multiple", "metric", "loss"]
#: Stored 0/1 integers that are yes/no
BOOLEANS = ("solved", "higher_is_better")
#: Stored Unix seconds that are points in time
TIMES = ("finished_at",)
#: Each declared SQL type's column type (pandas dtype); integers are nullable: a failed trial has no
#: best_step, an older row no population
SQL_TYPES = {"TEXT": "string", "INTEGER": "Int64", "REAL": "float64"}
#: A hyperparameter split into a number and a word column -> (its word column, the word of a number);
#: always, so that the columns exist whatever values a store holds. Any other one that mixes numbers and
#: words is split likewise into ``hp.<name>`` and ``hp.<name>_choice``, a number reading "number".
WORD_COLUMNS = {"forget_bias": ("hp.forget_bias_init", "constant")}


def trials_table(store: Store) -> pd.DataFrame:
    """One row per stored trial: the ``trials`` table's columns, typed, the identity columns after
    ``trial_id``, the hyperparameters as typed ``hp.*`` columns after the stored ones."""
    return typed_trials(store.trials_frame(expand_hparams=False), store.column_types("trials"))


def curves_table(store: Store) -> pd.DataFrame:
    """One row per (trial, split, step) of every stored learning curve: ``CURVE_COLUMNS``, by task, T,
    variant, framework, trial, split and step. ``metric`` is the value of the trial's primary metric,
    ``metric_name`` its name."""
    trials, types = store.trials_frame(expand_hparams=False), store.column_types("trials")
    curves = store.curves_frame()
    types = {**types, **store.column_types("curves"), "metric_name": "TEXT", "metric": "REAL"}
    if trials.empty or curves.empty:
        return _typed(pd.DataFrame({c: [] for c in CURVE_COLUMNS}), types)
    keys = _with_identity(trials).rename(columns={"metric": "metric_name"})[CURVE_KEYS]
    out = keys.merge(curves, on="trial_id", how="inner", validate="one_to_many")[CURVE_COLUMNS]
    return _typed(out, types).reset_index(drop=True)  # the trials' order; (split, step) within each


def lengths_table(store: Store) -> pd.DataFrame:
    """One row per (trial, test length) of every trial tested beyond its T (``harness.training.lengths``):
    ``LENGTH_COLUMNS``, T itself included (``multiple`` 1), by task, T, variant, framework, trial and
    length. ``metric`` is the trial's primary metric at the best validation checkpoint on the test set of
    that length, ``metric_name`` its name."""
    trials, types = store.trials_frame(expand_hparams=False), store.column_types("trials")
    lengths = store.test_lengths_frame().rename(columns={"length": "test_length"})
    types = {**types, "metric_name": "TEXT", "metric": "REAL", "loss": "REAL", "test_length": "INTEGER",
             "multiple": "REAL"}  # fmt: skip
    if trials.empty or lengths.empty:
        return _typed(pd.DataFrame({c: [] for c in LENGTH_COLUMNS}), types)
    keys = _with_identity(trials).rename(columns={"metric": "metric_name"})[CURVE_KEYS]
    out = keys.merge(lengths, on="trial_id", how="inner", validate="one_to_many")
    out["multiple"] = out["test_length"] / out["length"]
    return _typed(out[LENGTH_COLUMNS], types).reset_index(drop=True)


def comparisons_table(store_path: str | Path, suite: str | None = None, baseline: str | None = None,
                      primary: str | None = None) -> pd.DataFrame:  # fmt: skip
    """One row per comparison with the baseline (variant, task, T, framework, selection), as the report
    computes them (``harness.analysis.study.baseline_comparisons``): the trials ``suite`` covers, tested by the
    analysis plan its latest run recorded (its ``[statistics]`` table). Columns:
    ``harness.analysis.comparisons.COMPARISON_COLUMNS``, each described in docs/export.md; ``paired`` and
    ``robust`` boolean. ``primary`` replaces the plan's outcome (``load``: a secondary analysis). Where the
    recorded plan cannot be read (a store edited by hand), the default plan tests it; ``attrs["note"]`` says
    so, and says when the analysis is a secondary one."""
    from harness.analysis.study import baseline_comparisons
    from harness.report.build import load

    data = load(store_path, suite, baseline, primary)
    out = baseline_comparisons(data.trials, data.baseline, data.plan, data.metadata)
    for col in ("paired", "robust"):
        out[col] = out[col].astype("boolean")
    for col in ("n", "n_baseline", "pairs", "configurations", "units", "units_baseline", "solved", "finished",
                "solved_baseline", "finished_baseline", "length", "alternatives", "agree", "family_size"):
        out[col] = out[col].astype("Int64")
    out = out.reset_index(drop=True)
    problem = getattr(data.suite_obj, "problem", None)
    secondary = [n for n in data.notes if n.startswith("A secondary analysis")]
    if problem or secondary:
        out.attrs["note"] = " ".join([problem] * bool(problem) + secondary)
    return out


def typed_trials(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """A trials frame read with ``expand_hparams=False`` (``types``: its columns' SQL types), typed,
    with its identity and ``hp.*`` columns."""
    df = _typed(_with_identity(frame), types)
    hp = hparam_columns([json.loads(h) for h in df["hparams"]]) if len(df) else pd.DataFrame()
    return pd.concat([df.reset_index(drop=True), hp], axis=1)


def _with_identity(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``IDENTITY`` inserted after ``trial_id``, computed from each row's trial fields."""
    df = frame.reset_index(drop=True).copy()
    trials = [Trial(r.task, int(r.length), r.variant, r.framework, r.device, json.loads(r.hparams), int(r.seed))
              for r in df.itertuples(index=False)]  # fmt: skip
    seeds = [split_seed(t.seed) for t in trials]
    at = list(df.columns).index("trial_id") + 1
    for offset, (name, values) in enumerate([
        ("configuration_id", pd.array([configuration_id(t) for t in trials], dtype="string")),
        ("search_index", pd.array([k for k, _ in seeds], dtype="Int64")),
        ("replicate", pd.array([r for _, r in seeds], dtype="Int64")),
    ]):  # fmt: skip
        df.insert(at + offset, name, values)
    return df


def _typed(df: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Each column of ``df`` by its SQL type in ``types`` (``SQL_TYPES``; a column all NULL comes from
    SQLite untyped), but ``BOOLEANS`` as booleans and ``TIMES`` (Unix seconds) as UTC timestamps."""
    for col in df.columns:
        if col in BOOLEANS:
            df[col] = df[col].astype("boolean")
        elif col in TIMES:
            df[col] = pd.to_datetime(pd.to_numeric(df[col]), unit="s", utc=True)
        elif types.get(col) in ("INTEGER", "REAL"):
            df[col] = pd.to_numeric(df[col]).astype(SQL_TYPES[types[col]])
        elif types.get(col) == "TEXT":
            df[col] = df[col].astype("string")
    return df


def hparam_columns(hparams: list[dict[str, Any]]) -> pd.DataFrame:
    """One ``hp.<name>`` column per hyperparameter, by name, each of one type by the types of its values:
    boolean, nullable integer (``Int64``), float, or text; missing where a trial's variant lacks it. A
    hyperparameter in ``WORD_COLUMNS``, and any other mixing numbers and words, becomes a float column
    (missing where a word) and a word column."""
    columns: dict[str, Any] = {}
    for name in sorted({k for hp in hparams for k in hp}):
        columns.update(_hparam_column(name, [hp.get(name) for hp in hparams]))
    return pd.DataFrame(columns, index=range(len(hparams)))


def _hparam_column(name: str, values: list[Any]) -> dict[str, Any]:
    """The column(s) of one hyperparameter's values (None: the trial lacks it)."""
    present = [v for v in values if v is not None]
    col = f"hp.{name}"
    if present and all(isinstance(v, bool) for v in present):
        return {col: pd.array(values, dtype="boolean")}
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present) and present:
        return {col: pd.array(values, dtype="Int64")}
    numeric = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in present]
    words = [isinstance(v, str) for v in present]
    if name in WORD_COLUMNS or (any(numeric) and any(words) and all(n or w for n, w in zip(numeric, words))):
        word_col, number_word = WORD_COLUMNS.get(name, (f"hp.{name}_choice", "number"))
        return {
            col: pd.array([float(v) if isinstance(v, (int, float)) else None for v in values], dtype="float64"),
            word_col: pd.array([v if isinstance(v, str) else None if v is None else number_word for v in values],
                               dtype="string"),
        }  # fmt: skip
    if all(numeric):
        return {col: pd.array([None if v is None else float(v) for v in values], dtype="float64")}
    return {col: pd.array([None if v is None else str(v) for v in values], dtype="string")}


# --- writing ----------------------------------------------------------------------------------------
def export_format(output: str, fmt: str | None) -> str:
    """The format to write ``-o output`` in: ``--format`` if given, else by the file's suffix (``.parquet``
    or ``.pq``: Parquet; anything else, and ``-`` for stdout: CSV). A ``--format`` that contradicts the
    suffix, Parquet to stdout, or an empty name (a shell's unset variable) is a UsageError."""
    if not output.strip():
        raise UsageError(f"-o {output!r} names no file; name a file to write (e.g. -o trials.csv), or - for stdout")
    by_suffix = None if output == "-" else SUFFIXES.get(Path(output).suffix.lower())
    if fmt is None:
        return by_suffix or "csv"
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is unknown; allowed: {', '.join(FORMATS)}")
    if output == "-" and fmt != "csv":
        raise UsageError("-o - writes CSV to stdout; use a file name for parquet")
    if by_suffix is not None and by_suffix != fmt:
        raise UsageError(f"--format {fmt} contradicts -o {output}, a .{by_suffix} name; drop --format, "
                         f"or name a .{fmt} file")  # fmt: skip
    return fmt


def write_table(df: pd.DataFrame, output: str, fmt: str) -> None:
    """Write ``df`` to ``output`` (``-``: CSV on stdout); a folder, an SQLite file, an unwritable path or a
    full disk is a UsageError naming it."""
    if output == "-":
        _to_csv(df, sys.stdout)
        return
    path = Path(output)
    if path.is_dir():
        raise UsageError(f"-o {path} is a folder; name a file to write, e.g. -o {path / ('trials.' + fmt)}")
    if path.is_file() and is_sqlite_file(path):
        raise UsageError(f"-o {path} is an SQLite database (a results store?) or one of its files; "
                         "export never writes over one: name another file")  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            _to_csv(df, path)
        else:
            parquet_safe(df).to_parquet(path, index=False)
    except OSError as e:
        raise UsageError(f"cannot write -o {path}: {e.strerror or e}") from e


def _to_csv(df: pd.DataFrame, target) -> None:
    df.to_csv(target, index=False, date_format=CSV_TIME_FORMAT)


def parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Parquet needs one type per column: an untyped (object) column mixing kinds of values is written
    as text. (The export's own columns are typed already; this guards what the store adds later.)"""
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col].dropna()}
            if len(kinds) > 1:
                df[col] = df[col].map(lambda v: None if v is None or v != v else str(v))
    return df
