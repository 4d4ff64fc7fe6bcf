"""The bytes of memory a training step needs per float its step allocates: ``python -m benchmarks.memory_ratios``.

For every variant of the catalogue (or ``--variants``) and framework, a fresh process builds a population
(``--members``, batch ``--batch``, hidden size ``--hidden``) on the adding task, trains one step at
L = 50 and then one at L = 200, and reports the growth of its peak resident memory per sequence and
added time step; that divided by ``harness.run.memory.floats_per_step`` (the floats the step allocates,
counted in numpy) is the variant's ratio. ``harness.run.memory.BYTES_PER_FLOAT`` holds the largest ratio
per framework. With ``--scan`` the population runs its variant's linear form (``harness.scan``), and the
floats are the growth of what the form allocates from L = 50 to L = 200 (``floats_of_linear_form``),
per added step. A benchmark, not a test: it asserts nothing; docs/variants.md ("Memory") quotes its
numbers. One framework per process, one after the other, so that they do not share cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

SHORT, LONG = 50, 200


def growth_per_step(framework: str, variant_id: str, hidden: int, members: int, batch: int, scan: bool) -> float:
    """In this process: bytes of peak resident memory per sequence and time step that a training step
    at L = LONG needs beyond one at L = SHORT."""
    import importlib

    import numpy as np

    from harness.backends import load_backend
    from harness.cell.model import init_model_params
    from harness.plugins.registry import registry
    from harness.task import stack_batches
    from harness.training.population import ENGINES
    from harness.trials.protocol import Settings

    load_backend(framework).setup("cpu")
    reg = registry()
    task, variant = reg.task("adding"), reg.variant(variant_id)
    params = [init_model_params(variant, task, hidden, seed, lag=SHORT) for seed in range(members)]
    engine = importlib.import_module(ENGINES[framework])
    settings = [Settings(hidden_size=hidden, batch_size=batch)] * members
    population = engine.Population(variant, task, settings, params, scan=scan)
    rng = np.random.default_rng(0)
    peaks = []
    for length in (SHORT, LONG):
        population.train_step(*stack_batches([task.generate(length, batch, rng) for _ in range(members)]))
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # kilobytes on Linux
    return (peaks[1] - peaks[0]) / (members * batch * (LONG - SHORT))


def added_floats_per_step(variant: object, hidden: int) -> float:
    """Floats a linear form allocates per sequence for each step from L = SHORT to L = LONG (a form's count
    per step may depend on L: mLSTM's chunks)."""
    from harness.run.memory import floats_of_linear_form

    total = {length: length * floats_of_linear_form(variant, hidden, length)[0] for length in (SHORT, LONG)}
    return (total[LONG] - total[SHORT]) / (LONG - SHORT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory_ratios", description=__doc__.splitlines()[0])
    parser.add_argument("--variants", help="comma-separated ids (default: the catalogue)")
    parser.add_argument("--frameworks", default="torch,tf")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--scan", action="store_true", help="the linear forms (default variants: those that have one)")
    parser.add_argument("--one", nargs=2, metavar=("FRAMEWORK", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:  # the child: one measurement, as JSON
        print(json.dumps(growth_per_step(*args.one, args.hidden, args.members, args.batch, args.scan)))
        return 0
    from harness.plugins.catalogue import CATALOGUE_ORDER
    from harness.plugins.registry import registry
    from harness.run.memory import floats_per_step
    from harness.scan import LINEAR_FORMS

    registry()  # the variant files register their linear forms as they load
    catalogue = [v for v in CATALOGUE_ORDER if v in LINEAR_FORMS] if args.scan else list(CATALOGUE_ORDER)
    variants = args.variants.split(",") if args.variants else catalogue
    worst: dict[str, tuple[float, str]] = {}
    print("framework variant bytes_per_step floats_per_step ratio")
    for framework in args.frameworks.split(","):
        for vid in variants:
            sizes = ["--hidden", str(args.hidden), "--members", str(args.members), "--batch", str(args.batch),
                     *(["--scan"] if args.scan else [])]  # fmt: skip
            child = [sys.executable, "-m", "benchmarks.memory_ratios", "--one", framework, vid, *sizes]
            out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            growth = float(out.strip().splitlines()[-1])
            variant = registry().variant(vid)
            counted = (added_floats_per_step if args.scan else floats_per_step)(variant, args.hidden)
            ratio = growth / counted
            worst[framework] = max(worst.get(framework, (0.0, "")), (ratio, vid))
            print(f"{framework} {vid} {growth:.0f} {counted:.0f} {ratio:.2f}", flush=True)
    for framework, (ratio, vid) in worst.items():
        print(f"largest ratio, {framework}: {ratio:.2f} ({vid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
