"""What a GPU user needs to choose ``--population`` and ``--workers-per-gpu``: ``python benchmarks/gpu_bench.py``
(``make gpu-bench``).

For each of ``quick``'s cells (``v``, ``np``, ``cifg``, ``gru``, ``rnn``, PyTorch, at quick's largest shape:
adding T = 50, batch 32, hidden size 48), each population size (16 to 256), each way of running the step
(eager; ``torch.compile``; ``torch.compile(mode="reduce-overhead")``, which captures CUDA graphs, on a GPU
only) and each number of worker processes sharing the GPU (1, 2), it times training steps in that many
workers at once (``harness.diagnostics.speed.step_costs`` in ``WorkerProcess``es, the run's own
workers) and prints:

- ``ms/trial-step``: the median milliseconds of one training step divided by the population size (the
  slowest worker's, where several share the GPU);
- ``trials/hour``: what all the workers together finish in an hour at ``--budget`` training steps per
  trial (quick's 1,000), 3600 / (ms/trial-step x budget / 1000) per worker, summed; early stopping and
  evaluation not counted, so compare rows with one another, not with a run;
- ``compile s``: the first step's time beyond a steady one (the compilation, for compiled rows).

One run measures everything, each case once, in one sitting; a case that fails (out of memory, a
variant TorchDynamo cannot trace) prints its error in its row and the others go on. A benchmark, not a
test: it asserts nothing (tests/test_gpu_bench.py runs a tiny grid on the CPU). Numbers measured on a GPU
belong in the README's "Speed and scale" with the card's name and the date.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from harness.diagnostics.speed import SpeedJob
from harness.errors import UsageError
from harness.text_table import text_table
from harness.workers.worker import WorkerError, WorkerProcess

VARIANTS = ("v", "np", "cifg", "gru", "rnn")
POPULATIONS = (16, 32, 64, 128, 256)
COMPILES = ("off", "default", "reduce-overhead")
COLUMNS = ["variant", "population", "compile", "workers", "ms/trial-step", "trials/hour", "compile s", "error"]


def cases(args: argparse.Namespace) -> list[dict]:
    """One ``step_costs`` case per (variant, population, compile mode), in that order."""
    out = []
    for variant in args.variants:
        for members in args.populations:
            for mode in args.compile:
                out.append({"variant_id": variant, "members": members, "T": args.length, "batch": args.batch,
                            "hidden": args.hidden, "steps": args.steps, "device": args.device, "fused": False,
                            "compile": None if mode == "off" else mode})  # fmt: skip
    return out


def measure(args: argparse.Namespace) -> list[dict]:
    """Every case timed in 1, 2, ... workers at once (``--workers-per-gpu``): one row per case and count."""
    rows = []
    todo = cases(args)
    for workers in args.workers_per_gpu:
        processes = [WorkerProcess("torch", args.device) for _ in range(workers)]
        try:
            for process in processes:
                process.wait_ready()
            for case in todo:  # the same case in every worker at once: they share the GPU while timed
                for process in processes:
                    process.send(SpeedJob("torch", (case,)))
                answers = [process.answer()[0] for process in processes]
                rows.append(_row(case, workers, answers, args.budget))
        except WorkerError as e:
            raise UsageError(f"the benchmark's PyTorch workers could not run on {args.device}: {e}") from e
        finally:
            for process in processes:
                process.stop(kill=True)
    return rows


def _row(case: dict, workers: int, answers: list[dict], budget: int) -> dict:
    row = {"variant": case["variant_id"], "population": case["members"], "compile": case["compile"] or "off",
           "workers": workers, "ms/trial-step": None, "trials/hour": None, "compile s": None, "error": ""}  # fmt: skip
    errors = [a["error"] for a in answers if "error" in a]
    if errors:
        row["error"] = errors[0].strip().splitlines()[-1][:120]
        return row
    row["ms/trial-step"] = max(a["ms"] for a in answers)
    row["trials/hour"] = sum(3600 / (a["ms"] * budget / 1000) for a in answers)
    row["compile s"] = max(a["setup_ms"] for a in answers) / 1000
    return row


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.0f}"
    return str(value)


def print_rows(rows: list[dict], out: Path | None) -> None:
    print(text_table([COLUMNS, *[[_cell(r[c]) for c in COLUMNS] for r in rows]]))
    if out is not None:
        with open(out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {len(rows)} rows to {out}", file=sys.stderr)


def _list(kind):
    def parse(text: str) -> list:
        try:
            return [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {kind.__name__}") from None

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/gpu_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (to try the script)")
    parser.add_argument("--variants", type=_list(str), default=list(VARIANTS))
    parser.add_argument("--populations", type=_list(int), default=list(POPULATIONS))
    parser.add_argument("--compile", type=_list(str), default=None,
                        help="off, default, reduce-overhead (CUDA graphs), max-autotune, eager (tracing only); "
                             "default: off,default,reduce-overhead on cuda, off,default on cpu")  # fmt: skip
    parser.add_argument("--workers-per-gpu", type=_list(int), default=[1, 2])
    parser.add_argument("--length", type=int, default=50, help="T of adding (default 50, quick's longest)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=48, help="hidden size (default 48, quick's largest)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case (after two warm-up steps)")
    parser.add_argument("--budget", type=int, default=1000, help="training steps per trial (default: quick's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as CSV")
    args = parser.parse_args(argv)
    if args.compile is None:
        args.compile = list(COMPILES) if args.device == "cuda" else ["off", "default"]
    bad = [m for m in args.compile if m not in ("off", "default", "reduce-overhead", "max-autotune", "eager")]
    if bad or min(args.populations + args.workers_per_gpu + [args.length, args.batch, args.hidden, args.steps]) < 1:
        parser.error(f"--compile {bad} not known" if bad else "sizes, counts and steps must be at least 1")
    try:
        print_rows(measure(args), args.out)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
