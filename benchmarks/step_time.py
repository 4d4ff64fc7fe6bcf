"""Training-step time per variant and framework at one reference size (a benchmark, not a test).

    python benchmarks/step_time.py --framework torch --variants np,v,gru --task adding --length 50

Prints ms per training step (median of the timed steps after a warm-up) with one intra-op thread,
as the benchmark's workers run. Run one framework per process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.update({"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                   "TF_CPP_MIN_LOG_LEVEL": "2"})  # fmt: skip

from harness.backends import load_backend  # noqa: E402
from harness.model import init_model_params  # noqa: E402
from harness.protocol import check_hparams  # noqa: E402
from harness.registry import registry  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", default="torch")
    p.add_argument("--variants", default=",".join(sorted(registry().variants)))
    p.add_argument("--task", default="adding")
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--no-fused", action="store_true")
    a = p.parse_args()
    backend = load_backend(a.framework)
    backend.setup("cpu")
    reg = registry()
    task = reg.task(a.task)
    batch = task.batch(a.length, a.batch_size, 0)
    print(f"{a.framework}: {a.task} T={a.length} H={a.hidden_size} B={a.batch_size}, ms per training step")
    for vid in a.variants.split(","):
        variant = reg.variant(vid)
        hp = check_hparams({"hidden_size": a.hidden_size, "batch_size": a.batch_size, "fused": not a.no_fused})
        model = backend.build_model(variant, task, hp, init_model_params(variant, task, a.hidden_size, 0, a.length))
        for _ in range(3):
            model.train_step(batch.inputs, batch.targets)
        times = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            model.train_step(batch.inputs, batch.targets)
            times.append(time.perf_counter() - t0)
        print(f"  {vid:<12} {model.path:<8} {1000 * statistics.median(times):8.2f} ms")


if __name__ == "__main__":
    main()
