"""The command line. Its verbs are the user's jobs:

    rnn-bench list tasks|variants|suites      what there is
    rnn-bench run SUITE [narrowing]           run a benchmark (resumes; Ctrl-C keeps finished trials)
    rnn-bench status                          finished / remaining / failed per suite
    rnn-bench export -o FILE [--curves|--lengths]  one row per trial (curve point, test length), typed
    rnn-bench report                          the Greff-style report (HTML + Markdown + tables)
    rnn-bench check VARIANT                   contract, gradients, cross-framework and fused parity
    rnn-bench new-variant NAME                a working template for a new cell, with its test

Bad input exits with code 2 and a message naming the bad value and the valid ones.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from harness.cell.scan_choice import SCAN_CHOICES
from harness.errors import UsageError
from harness.run.terminated import Terminated
from harness.store.database import DEFAULT_PATH, store_fault
from harness.suites.analysis_plan import PRIMARY
from harness.suites.suite import list_suites

if TYPE_CHECKING:
    from harness.execution.placement import Placement

EPILOG = "Run 'rnn-bench VERB --help' for a verb's options. Docs: README.md."


#: What each verb does: its one-line help is the part before the colon, its --help the whole.
VERBS = {
    "list": ("list tasks, variants or suites"),
    "run": (
        "run a suite: plan its trials, skip those already in the store, run the rest in worker "
        "processes, store each result as it finishes (Ctrl-C keeps finished trials; the same "
        "command resumes)"
    ),
    "status": ("finished / remaining / failed trials per suite in a store"),
    "export": (
        "export one row per trial (every field, a configuration id pairing PyTorch with TensorFlow, "
        "hyperparameters as typed hp.* columns), or with --curves one row per learning-curve point, with "
        "--lengths one per test length, as CSV or Parquet: typed columns, described in docs/export.md"
    ),
    "report": (
        "write the Greff-style report of a store: reports/<suite>/index.html (self-contained), "
        "report.md, tables/ and figures/"
    ),
    "check": (
        "check a variant: parameter contract, finite-difference gradients, PyTorch/TensorFlow "
        "parity, fused-kernel parity, parameter transfer and a few training steps; prints a table "
        "and exits 0 only when nothing fails"
    ),
    "speed": (
        "time training steps: ms per trial-step of chosen variants, solo and in populations, with the "
        "framework's fused solo LSTM measured in the same run as the reference (a benchmark: one thread, "
        "median after warm-up)"
    ),
    "new-variant": (
        "write variants/NAME.py, a working template (a plain LSTM with the places to change "
        "marked), and tests/test_variant_NAME.py"
    ),
}


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=str(DEFAULT_PATH), help=f"results database (default: {DEFAULT_PATH})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-bench", description="Benchmark recurrent cells on long-term-dependency tasks, in PyTorch "
        "and TensorFlow, and report which cells bridge which lags.", epilog=EPILOG,
    )  # fmt: skip
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    def verb(name: str) -> argparse.ArgumentParser:
        text = VERBS[name]
        return verbs.add_parser(name, help=text.split(":")[0], description=text[0].upper() + text[1:] + ".")

    p = verb("list")
    p.add_argument("what", choices=["tasks", "variants", "suites"])
    p.add_argument("--input-size", type=int, default=2, help="I for parameter counts (default 2)")
    p.add_argument("--hidden-size", type=int, default=64, help="H for parameter counts (default 64)")

    p = verb("run")
    shipped = ", ".join(list_suites())  # the files, so a new shipped suite is named here without an edit
    p.add_argument("suite", help=f"a shipped suite ({shipped}) or a path to a suite .toml file")
    p.add_argument("--tasks", type=_csv, help="only these tasks (comma-separated)")
    p.add_argument("--lengths", type=_ints, help="only these dependency lengths T, for every task")
    p.add_argument("--variants", type=_csv, help="only these variants (ids or aliases)")
    p.add_argument("--frameworks", type=_csv, help="only these frameworks: torch, tf")
    p.add_argument("--trials", type=int, help="random-search configurations per cell")
    p.add_argument("--replicates", "--seeds", dest="replicates", type=int,
                   help="independent seeds per configuration (--seeds: the old name)")
    p.add_argument("--max-steps", type=int, help="training budget in steps, for every task")
    p.add_argument("--device", choices=["cpu", "cuda"], help="where trials run (default: the suite's, cpu)")
    p.add_argument("--no-fused", action="store_true", help="use the generic path even where a fused kernel exists")
    p.add_argument("--xla", action="store_true", help="TensorFlow: compile the training step with XLA (jit_compile)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where workers run: local processes (default) or a Dask cluster (docs/cluster.md)")
    p.add_argument("--scheduler", help="with --executor dask: a running cluster's scheduler, tcp://HOST:8786 "
                   "(default: start a local cluster of --workers processes)")
    p.add_argument("--resources", default="", help="with --executor dask: Dask worker resources each job needs, "
                   "e.g. GPU=1")
    p.add_argument("--retries", type=int, help="with --executor dask: resubmissions of a job whose "
                   "Dask worker was lost, before its trials are recorded failed (default 1)")
    p.add_argument("--tls-ca-file", help="with --scheduler tls://...: the certificate authority's PEM file")
    p.add_argument("--tls-cert", help="with --scheduler tls://...: this client's certificate (PEM)")
    p.add_argument("--tls-key", help="with --scheduler tls://...: this client's private key (PEM; default: the "
                   "--tls-cert file)")
    p.add_argument("--scheduler-grace", type=float, help="with --executor dask and --scheduler: seconds to wait "
                   "for a lost scheduler to answer again before the run stops (exit 75; the same command resumes; "
                   "default 60)")
    p.add_argument("--workers-per-gpu", type=int, help="with --device cuda: K worker processes on each visible "
                   "GPU, each pinned to its GPU (replaces --workers)")
    p.add_argument("--population", type=int, help="most trials of one cell trained together as one computation "
                   "(default: measured per framework and device; 1 trains every trial alone)")
    p.add_argument("--scan", choices=SCAN_CHOICES, default="auto", help="run a variant with a linear form "
                   "(min_gru, min_lstm, mlstm, rg_lru) as a parallel scan over time: on, off, or auto (where it was "
                   "measured faster, or as fast in less memory; docs/variants.md, 'Parallel scans')")
    p.add_argument("--time-limit", type=float, help="seconds per job (a trial, or a population) before its "
                   "unfinished trials time out (default: the suite's)")
    p.add_argument("--retry-failed", action="store_true", help="rerun trials recorded failed or timeout")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its size, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _store_arg(p)

    p = verb("status")
    _store_arg(p)

    p = verb("export")
    p.add_argument("--format", choices=["csv", "parquet"], help="csv or parquet (default: by -o's suffix, "
                   ".parquet or .pq for Parquet, else CSV)")
    p.add_argument("-o", "--output", required=True, help="file to write ('-' writes CSV to stdout)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--curves", action="store_true", help="the learning curves: one row per trial, split and "
                      "step, with the trial's identifying columns")
    what.add_argument("--lengths", action="store_true", help="length generalisation: one row per trial tested "
                      "beyond T and test length (T included), its primary metric and loss at that length")
    what.add_argument("--comparisons", action="store_true", help="the report's comparisons with the baseline: "
                      "one row per variant, task, T, framework and selection, every test, effect and verdict")
    p.add_argument("--suite", help="with --comparisons: only this suite's trials, tested by its [statistics] "
                   "plan (default: every trial, the default plan)")
    p.add_argument("--baseline", help="with --comparisons: the reference variant (default: the suite's, else v)")
    p.add_argument("--primary", choices=PRIMARY, help="with --comparisons: the outcome the verdicts test, "
                   "replacing the suite's declared one (a secondary analysis, as report --primary)")  # fmt: skip
    _store_arg(p)

    p = verb("report")
    p.add_argument("--suite", help="only the trials this suite planned (default: every trial in the store)")
    p.add_argument("--out", help="output folder (default: reports/<suite>)")
    p.add_argument("--baseline", help="reference variant (default: the suite's baseline, else v)")
    p.add_argument("--no-probe", action="store_true", help="skip the gradient-flow probe (needs PyTorch)")
    p.add_argument("--primary", choices=PRIMARY,
                   help="the outcome the verdicts test, replacing the suite's declared one: a secondary analysis, "
                        "written to reports/<suite>-<primary> unless --out says otherwise")  # fmt: skip
    _store_arg(p)

    p = verb("check")
    p.add_argument("variant", help="variant id or alias")
    p.add_argument("--frameworks", type=_csv, help="frameworks to check (default: those installed)")

    p = verb("speed")
    p.add_argument("--variants", type=_csv, help="variant ids or aliases (default: every variant)")
    p.add_argument("--frameworks", type=_csv, help="torch, tf (default: those installed)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--populations", type=_ints, default=[1, 4, 16], help="population sizes (default 1,4,16)")
    p.add_argument("--hidden-sizes", type=_ints, default=[32], help="hidden sizes H (default 32)")
    p.add_argument("--length", type=int, default=50, help="dependency length T of the adding task (default 50)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size B (default 32)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per row, after 2 warm-up steps (default 10)")
    p.add_argument("--steps-per-trial", type=int, default=1000,
                   help="training steps of one trial, for trials per hour (default 1000)")
    p.add_argument("--no-fused", action="store_true", help="population-1 rows use the generic path")
    p.add_argument("--scan", choices=["off", "on", "both"], default="both", help="variants with a linear form "
                   "(min_gru, min_lstm, mlstm, rg_lru): their loop of steps (off), their parallel scan (on), or a row "
                   "for each (both, the default)")
    p.add_argument("--format", choices=["table", "csv"], default="table")

    p = verb("new-variant")
    p.add_argument("name", help="the new variant's id (a Python identifier, e.g. mycell)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")
    return parser


def cmd_list(args: argparse.Namespace) -> int:
    from harness.plugins.registry import registry
    from harness.suites.suite import list_suites, load_suite

    reg = registry()
    for flag, value in (("--input-size", args.input_size), ("--hidden-size", args.hidden_size)):
        if value < 1:
            raise UsageError(f"{flag} {value} is impossible; it must be at least 1")
    if args.what == "tasks":
        from harness.plugins.task_names import task_parameters

        for tid in sorted(reg.tasks):
            t = reg.task(tid)
            better = "higher" if t.higher_is_better else "lower"
            params = task_parameters(reg.tasks[tid])
            takes = f"; parameters {', '.join(f'{k}={v!r}' for k, v in params.items())}" if params else ""
            print(f"{tid:<16} {t.name}  [{t.reference}]  metric {t.metric} ({better} is better), "
                  f"inputs {t.input_size}, outputs {t.output_size}{takes}")  # fmt: skip
    elif args.what == "variants":
        from harness.plugins.catalogue import variant_table

        print(variant_table(reg, args.input_size, args.hidden_size))
    else:
        for name in list_suites():
            s = load_suite(name)
            print(f"{name:<8} {s.description}")
    for path, error in reg.broken_files.items():
        print(f"warning: {path} failed to import: {error.strip().splitlines()[-1]}", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.runner import run_suite
    from harness.suites.suite import load_suite

    suite = load_suite(args.suite)
    placement = _placement(args)  # a bad flag: exit 2 before anything runs
    training = dict(suite.training)
    if args.no_fused:
        training["fused"] = False
    if args.xla:
        training["xla"] = True
    suite = suite.narrowed(
        training=training, tasks=args.tasks, lengths=args.lengths, variants=args.variants, frameworks=args.frameworks,
        trials=args.trials, replicates=args.replicates, device=args.device, time_limit=args.time_limit,
        max_steps=args.max_steps,
    )  # fmt: skip
    for note in suite.notes:
        print(f"rnn-bench run: note: {note}", file=sys.stderr)
    summary = run_suite(
        suite, args.store, args.workers, dry_run=args.dry_run, retry_failed=args.retry_failed,
        argv=sys.argv, progress=not args.no_progress and not args.dry_run, population=args.population,
        placement=placement, scan=args.scan,
    )  # fmt: skip
    return 143 if summary.terminated else 130 if summary.interrupted else 0


def cmd_status(args: argparse.Namespace) -> int:
    from harness.store.database import Store

    with Store(args.store, read_only=True) as store:
        df = store.status()
        if df.empty:
            print(f"{args.store}: no suite has been planned yet ({store.count()} trials stored)")
            return 0
        print(df.to_string(index=False))
        print(f"\n{store.count()} trials stored in {args.store}")
        _print_freshness(store)
    return 0


def _print_freshness(store) -> None:
    """Trials being run now (with their latest point), and stored trials whose code has changed since."""
    from harness.plugins.freshness import changed_code, describe

    drivers = store.live_claims()
    if drivers:
        print(f"{len(drivers)} trial(s) being run now by {', '.join(sorted(set(drivers.values())))}")
        print(running_table(store.running()))
    stale, changed = changed_code(store.trials_frame(expand_hparams=False))
    if stale.any():
        print(f"{int(stale.sum())} stored trial(s) were produced by code that has changed since: "
              f"{describe(changed)}. 'rnn-bench run' with their suite reruns them.")  # fmt: skip


def running_table(running, now: float | None = None) -> str:
    """'running: N trials' and one line per trial (``Store.running``): task, T, variant, framework, the
    latest step, the latest validation metric and the seconds since the latest point ('-' before the first)."""
    import math
    import time

    now = time.time() if now is None else now
    rows = [("task", "T", "variant", "framework", "step", "validation metric", "seconds since last point")]
    for r in running.itertuples(index=False):
        seen = isinstance(r.at, float) and math.isfinite(r.at)
        rows.append((str(r.task), str(r.length), str(r.variant), str(r.framework),
                     "-" if not seen else str(int(r.step)), _metric_text(r.metric),
                     "-" if not seen else f"{max(0.0, now - r.at):.0f}"))  # fmt: skip
    from harness.text_table import text_table

    return f"\nrunning: {len(running)} trial{'s' if len(running) != 1 else ''}\n" + text_table(rows)


def _metric_text(value) -> str:
    import math

    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else "-"


def cmd_export(args: argparse.Namespace) -> int:
    from harness.report.export import (
        comparisons_table,
        curves_table,
        export_format,
        lengths_table,
        trials_table,
        write_table,
    )  # fmt: skip
    from harness.store.database import Store

    fmt = export_format(args.output, args.format)
    if (args.suite or args.baseline or args.primary) and not args.comparisons:
        raise UsageError("--suite, --baseline and --primary choose what --comparisons compares and how; the trials "
                         "and curves exports hold every trial of the store (filter them with pandas)")  # fmt: skip
    if args.comparisons:
        df = comparisons_table(args.store, args.suite, args.baseline, args.primary)
        if df.attrs.get("note"):
            print(f"rnn-bench export: note: {df.attrs['note']}", file=sys.stderr)
    else:
        with Store(args.store, read_only=True) as store:
            df = curves_table(store) if args.curves else lengths_table(store) if args.lengths else trials_table(store)
    write_table(df, args.output, fmt)
    if args.output != "-":
        what = (f"{len(df)} comparisons" if args.comparisons else
                f"{len(df)} curve points of {df['trial_id'].nunique()} trials" if args.curves else
                f"{len(df)} test lengths of {df['trial_id'].nunique()} trials" if args.lengths else f"{len(df)} trials")
        print(f"wrote {what} to {args.output}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import build_report
    from harness.report.progress import Progress

    path = build_report(args.store, out_dir=args.out, suite=args.suite, baseline=args.baseline,
                        probe=not args.no_probe, primary=args.primary, progress=Progress(sys.stderr))  # fmt: skip
    print(f"report: {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.diagnostics.check import run_checks

    return run_checks(args.variant, args.frameworks)


def cmd_speed(args: argparse.Namespace) -> int:
    from harness.backends import installed_frameworks
    from harness.cli.speed import format_rows, measure
    from harness.plugins.registry import registry

    reg = registry()
    variants = [reg.canonical_variant(v, "--variants") for v in (args.variants or reg.variants)]
    frameworks = args.frameworks or installed_frameworks()
    _check_frameworks(frameworks)
    for flag, values in (("--populations", args.populations), ("--hidden-sizes", args.hidden_sizes),
                         ("--length", [args.length]), ("--batch-size", [args.batch_size]),
                         ("--steps", [args.steps]), ("--steps-per-trial", [args.steps_per_trial])):  # fmt: skip
        bad = [v for v in values if v < 1]
        if bad or not values:
            raise UsageError(f"{flag} {','.join(map(str, values))} is impossible; each value must be at least 1")
    if args.device == "cuda":
        from harness.execution.placement import check_gpus

        check_gpus(frameworks)
    rows = measure(variants, frameworks, args.device, args.hidden_sizes, args.populations, args.length,
                   args.batch_size, args.steps, args.steps_per_trial, fused=not args.no_fused,
                   scan=args.scan)  # fmt: skip
    print(format_rows(rows, args.format), end="")
    return 0


def _check_frameworks(frameworks: list[str]) -> None:
    from harness.backends import check_framework
    from harness.run.runner import check_installed

    for f in frameworks:
        check_framework(f, "--frameworks")
    check_installed(frameworks)


def _placement(args: argparse.Namespace) -> Placement:
    """The executor and its settings from ``run``'s flags; refuses Dask where it is not installed."""
    from harness.execution.cluster_security import exposure_warning, tls_security
    from harness.execution.placement import Placement, parse_resources

    tls = {"ca_file": args.tls_ca_file, "cert": args.tls_cert, "key": args.tls_key}
    placement = Placement(args.executor, args.workers, args.scheduler, parse_resources(args.resources),
                          args.retries, args.workers_per_gpu, args.scheduler_grace,
                          {k: v for k, v in tls.items() if v is not None})  # fmt: skip
    if placement.executor == "dask" and importlib.util.find_spec("distributed") is None:
        raise UsageError("--executor dask needs Dask's distributed scheduler, not installed here: "
                         "pip install -e '.[dask]'")  # fmt: skip
    tls_security(placement.scheduler, placement.tls)  # certificates checked before any work
    warning = exposure_warning(placement.scheduler)
    if warning:
        print(f"rnn-bench run: {warning}", file=sys.stderr)
    return placement




def cmd_new_variant(args: argparse.Namespace) -> int:
    from harness.plugins.scaffold import write_new_variant

    for path in write_new_variant(args.name, force=args.force):
        print(f"wrote {path}")
    print(f"next: edit the step, then 'rnn-bench check {args.name}' and "
          f"'rnn-bench run quick --variants {args.name}'")  # fmt: skip
    return 0


COMMANDS = {
    "list": cmd_list, "run": cmd_run, "status": cmd_status, "export": cmd_export, "report": cmd_report,
    "check": cmd_check, "speed": cmd_speed, "new-variant": cmd_new_variant,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGUSR1") and threading.current_thread() is threading.main_thread():
        # `kill -USR1 PID` prints every thread's stack to stderr: how to see where a run that seems stuck is
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        _vet_plugins()
        return COMMANDS[args.verb](args)
    except UsageError as e:
        return _fail(args.verb, e)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM outside a run's loop of jobs (which says more itself)
        return _interrupted(args.verb, e, getattr(args, "dry_run", False))
    except BrokenPipeError:  # `rnn-bench export -o - | head` closed our stdout: not an error
        if args.verb != "export":
            raise
        return 0
    except Exception as e:  # an SQLite error outside a `with Store(...)` (the runner's store): name the store
        fault = store_fault(args.store, e) if hasattr(args, "store") else None
        if fault is None:
            raise
        return _fail(args.verb, fault)
    finally:
        if main_thread:  # a caller in this process (the API, a test) keeps its own SIGTERM handling
            signal.signal(signal.SIGTERM, previous)


def _vet_plugins() -> None:
    """Import the user's plugin files first in a worker process, so one that ends or blocks its process
    costs that file, not this command (``harness.diagnostics.plugin_imports``)."""
    from harness.diagnostics.plugin_imports import vet_plugin_files
    from harness.plugins.registry import registry

    if vet_plugin_files():
        registry.cache_clear()  # a registry loaded before the verdicts would have imported those files


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def _interrupted(verb: str, interrupt: KeyboardInterrupt, dry_run: bool = False) -> int:
    """A clean line for Ctrl-C (exit 130) or SIGTERM (exit 143) at any moment: never a traceback. A run
    stores each trial the moment it finishes, so whatever finished is in the store."""
    how = "terminated (SIGTERM)" if isinstance(interrupt, Terminated) else "interrupted"
    kept = ""
    if verb == "run" and not dry_run:
        kept = "; every trial that finished is kept in the store. Run the same command again to do the rest"
    print(f"rnn-bench {verb}: {how}{kept}.", file=sys.stderr)
    return getattr(interrupt, "exit_code", 130)


def _fail(verb: str, error: UsageError) -> int:
    print(f"rnn-bench {verb}: error: {error}", file=sys.stderr)
    return error.exit_code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
