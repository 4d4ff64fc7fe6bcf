"""How a run scales with its workers: ``python benchmarks/scaling.py`` (``make scaling``).

Runs the same sample of ``quick``'s trials (``--trials K`` configurations per cell, default 2, both
frameworks, every task and length of ``quick``) three ways, each into a fresh store, one after the other
on this machine: the local executor with 1 worker, with 2 workers, and a local Dask cluster of 2
workers. For each it prints trials per hour (trials stored / the run's wall time from its start to its
end, worker start-up included) and the ratio to the 1-worker run, so the ratios are measured in one
sitting on the same machine. A benchmark, not a test: it asserts nothing; the README quotes its numbers.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

WAYS = (("local, 1 worker", ("--workers", "1")), ("local, 2 workers", ("--workers", "2")),
        ("Dask local cluster, 2 workers", ("--executor", "dask", "--workers", "2")))  # fmt: skip


def run_once(folder: Path, name: str, flags: tuple[str, ...], trials: int) -> dict:
    """One run of the sample with ``flags``; its trial count and wall seconds, read back from its store."""
    store = folder / f"{name.split(',')[0].split()[0].lower()}-{flags[-1]}.sqlite"
    argv = [sys.executable, "-m", "harness", "run", "quick", "--trials", str(trials), "--no-progress",
            *flags, "--store", str(store)]  # fmt: skip
    subprocess.run(argv, check=True, cwd=folder, stdout=subprocess.DEVNULL)
    conn = sqlite3.connect(store)
    try:
        count = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        started, finished = conn.execute("SELECT started_at, finished_at FROM runs").fetchone()
    finally:
        conn.close()
    return {"way": name, "trials": count, "seconds": finished - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/scaling.py", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2, help="configurations per cell of quick (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnn-bench-scaling-") as tmp:
        rows = [run_once(Path(tmp), name, flags, args.trials) for name, flags in WAYS]
    base = rows[0]["trials"] / rows[0]["seconds"]
    print(f"quick, {args.trials} configuration(s) per cell, {rows[0]['trials']} trials per run")
    print(f"{'executor':<32} {'seconds':>8} {'trials/hour':>12} {'vs 1 worker':>12}")
    for r in rows:
        rate = r["trials"] / r["seconds"]
        print(f"{r['way']:<32} {r['seconds']:>8.0f} {rate * 3600:>12.0f} {rate / base:>11.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
