"""The fault campaign: many small runs with faults injected at random moments, each then resumed with the
same command until its plan is complete, and the count of what was lost, duplicated or stale.

    python -m benchmarks.faults --minutes 60 --seed 1      (make faults)
    python -m benchmarks.faults --runs 2 --seed 0          (a short one; tests/test_fault_campaign.py)

Each run is a fresh store and one plan (``smoke``, or ``smoke`` in PyTorch alone on a Dask cluster), and
one fault drawn from the seed, at a moment drawn from it:

* ``driver-sigkill``, ``driver-sigterm``: the driver killed, or told to stop as a batch system does;
* ``worker-sigkill``: one of the driver's worker processes killed (its job's unfinished trials are stored
  ``failed``, the trial's result when a step crashes its process; the resume retries them);
* ``disk-full``: the driver's files may not grow past a size a little above the store's (RLIMIT_FSIZE:
  writes fail as on a full disk, from that moment to the driver's end);
* ``second-driver``: the same command started again on the same store mid-run;
* on a cluster of separate processes (``benchmarks/dask_processes.py``): ``dask-worker-sigkill`` (the
  Dask worker's process), ``scheduler-sigkill`` (a new scheduler and worker start after a random
  delay, within the run's ``--scheduler-grace`` or not) and ``driver-sigkill``.

After the fault the run is resumed with the same command (``--retry-failed`` too, which reruns trials a
killed worker turned ``failed``) until it says the plan is done. Then the store must hold every planned
trial (``lost``: planned, not stored ``ok``), no finished trial stored twice (``duplicated``: a
finished row replaced, or a row the plan does not hold), nothing ``stale`` (code fingerprints that are not
the current code's, claims or progress rows left behind), and no output of any attempt a ``Traceback``.
With ``--fuzz N`` it first runs the fuzzed-input tests with N examples each and reports their count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script or a module, from any folder

from benchmarks.dask_processes import SeparateCluster  # noqa: E402

LOCAL_FAULTS = ("driver-sigkill", "driver-sigterm", "worker-sigkill", "disk-full", "second-driver")
DASK_FAULTS = ("driver-sigkill", "dask-worker-sigkill", "scheduler-sigkill")
ATTEMPT_TIMEOUT = 300.0  # seconds an attempt may take before the campaign kills it and says so
GRACE = 8.0  # the runs' --scheduler-grace: a scheduler back within it is waited for, one later is not


@dataclass
class Tally:
    """The campaign's figure."""

    runs: int = 0
    faults: Counter = field(default_factory=Counter)
    landed: Counter = field(default_factory=Counter)  # injected while the run was still in flight (it had a victim)
    attempts: int = 0
    planned: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    stale: int = 0
    tracebacks: int = 0
    failed_by_faults: int = 0  # trials a killed worker made ``failed``, then retried
    exit_codes: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    fuzz_examples: int = 0

    def line(self) -> str:
        faults = ", ".join(f"{k} {v} ({self.landed[k]} mid-run)" for k, v in sorted(self.faults.items()))
        return (f"{self.runs} runs, {sum(self.faults.values())} faults ({faults}), {self.attempts} attempts; "
                f"{self.planned} trials planned, {self.stored} stored ok, {self.lost} lost, {self.duplicated} "
                f"duplicated, {self.stale} stale, {self.tracebacks} tracebacks; {self.failed_by_faults} trials "
                f"failed by a killed worker and retried; exit codes {dict(sorted(self.exit_codes.items()))}"
                + (f"; {self.fuzz_examples} fuzzed inputs" if self.fuzz_examples else ""))  # fmt: skip


def command(store: Path, dask: str | None) -> list[str]:
    """The run's command: the same for the faulted attempt and every resume."""
    argv = [sys.executable, "-m", "harness", "run", "smoke", "--no-progress", "--store", str(store)]
    if dask:
        argv += ["--frameworks", "torch", "--executor", "dask", "--scheduler", dask, "--scheduler-grace", str(GRACE)]
    return argv


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}  # fmt: skip


def start(argv: list[str], folder: Path, name: str, file_limit: int | None = None) -> subprocess.Popen:
    def limits() -> None:
        os.setsid()  # its own group: a SIGTERM to the driver alone, as `kill PID` sends it
        if file_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    out = open(folder / f"{name}.out", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(argv, cwd=folder, env=environment(), stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=limits)  # fmt: skip


def finish(proc: subprocess.Popen, tally: Tally, what: str) -> int:
    try:
        code = proc.wait(timeout=ATTEMPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        tally.problems.append(f"{what}: still running after {ATTEMPT_TIMEOUT:.0f} s, killed")
    tally.attempts += 1
    tally.exit_codes[code] += 1
    return code


def framework_processes(driver: int, logs: Path) -> list[int]:
    """The driver's training workers: its children writing a log in the run's ``logs`` folder (the
    preflight's and the plugin vetting's workers write none)."""
    import psutil

    try:
        children = psutil.Process(driver).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if any(str(logs) in f for f in _open_files(c))]


def _open_files(proc) -> list[str]:
    try:
        return [f.path for f in proc.open_files()]
    except Exception:  # noqa: BLE001 (gone)
        return []


def stored(store: Path) -> bool:
    """Whether the store holds a finished trial yet (read without leaving files beside it)."""
    from harness.store.database import Store

    try:
        with Store(store, read_only=True) as s:
            return s.count() > 0
    except Exception:  # noqa: BLE001 (not created yet, or being created)
        return False


def dask_worker_processes(worker: int) -> list[int]:
    """The Dask worker processes under a `dask worker` nanny (not the framework processes below them)."""
    import psutil

    try:
        return [c.pid for c in psutil.Process(worker).children()]
    except psutil.NoSuchProcess:
        return []


def store_size(store: Path) -> int:
    return sum(p.stat().st_size for p in store.parent.glob(store.name + "*") if p.is_file())


def inject(fault: str, rng: random.Random, victims: random.Random, folder: Path, store: Path,
           cluster: SeparateCluster | None, tally: Tally, after_first_trial: bool = False) -> None:  # fmt: skip
    """One faulted attempt (and, for a second driver, both drivers), waited for to its end. The fault comes
    at a moment drawn from ``rng`` (or, with ``after_first_trial``, once a trial is stored); ``victims``
    picks which process."""
    argv = command(store, cluster.address if cluster else None)
    moment = rng.uniform(0.5, 12.0)
    if fault == "disk-full":
        limit = store_size(store) + rng.randint(60_000, 400_000)
        if finish(start(argv, folder, "attempt-0", file_limit=limit), tally, fault) == 2:
            tally.landed[fault] += 1  # the disk "filled" before the run ended
        return
    driver = start(argv, folder, "attempt-0")
    deadline = time.monotonic() + (ATTEMPT_TIMEOUT if after_first_trial else moment)
    while time.monotonic() < deadline and driver.poll() is None and not (after_first_trial and stored(store)):
        time.sleep(0.05)
    if driver.poll() is None:
        tally.landed[fault] += 1
        if fault == "driver-sigkill":
            driver.kill()
        elif fault == "driver-sigterm":
            driver.send_signal(signal.SIGTERM)
        elif fault == "worker-sigkill":
            found = framework_processes(driver.pid, folder / "logs")
            if found:
                os.kill(victims.choice(found), signal.SIGKILL)
            else:
                tally.landed[fault] -= 1
        elif fault == "second-driver":
            finish(start(argv, folder, "attempt-0b"), tally, fault)
        elif fault == "dask-worker-sigkill":
            found = dask_worker_processes(cluster.worker.pid)
            if found:
                os.kill(victims.choice(found), signal.SIGKILL)
            else:
                tally.landed[fault] -= 1
        elif fault == "scheduler-sigkill":
            cluster.kill_scheduler()
            time.sleep(rng.uniform(1.0, 2 * GRACE))
            cluster.start()
    finish(driver, tally, fault)


def resume(folder: Path, store: Path, cluster: SeparateCluster | None, tally: Tally) -> None:
    """The same command (with --retry-failed) until the run says the plan is done."""
    argv = command(store, cluster.address if cluster else None) + ["--retry-failed"]
    for k in range(1, 6):
        if cluster is not None and not cluster.alive():
            cluster.start()
        code = finish(start(argv, folder, f"attempt-{k}"), tally, "resume")
        text = (folder / f"attempt-{k}.out").read_text(errors="replace")
        if code == 0 and "Nothing to do" in text:
            return
    tally.problems.append(f"{folder.name}: the plan was not complete after 5 resumes")


def check(folder: Path, store: Path, dask: bool, tally: Tally) -> None:
    """Count lost, duplicated and stale trials and tracebacks of one run."""
    from harness.plugins.freshness import changed_code
    from harness.store.database import Store
    from harness.suites.suite import load_suite, plan

    suite = load_suite("smoke")
    planned = {t.id for t in plan(suite.narrowed(frameworks=["torch"]) if dask else suite)}
    if not store.exists():
        tally.runs += 1
        tally.planned += len(planned)
        tally.lost += len(planned)
        tally.problems.append(f"{folder}: no store after the resumes")
        return
    with Store(store, read_only=True) as s:
        rows = dict(s.conn.execute("SELECT trial_id, status FROM trials").fetchall())
        replaced = s.conn.execute("SELECT COUNT(*) FROM superseded WHERE reason NOT LIKE 'retry of a%'").fetchone()[0]
        retried = s.conn.execute("SELECT COUNT(*) FROM superseded WHERE reason LIKE 'retry of a%'").fetchone()[0]
        leftovers = sum(s.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("claims", "progress"))
        stale, _ = changed_code(s.trials_frame(expand_hparams=False))
    tally.runs += 1
    tally.planned += len(planned)
    tally.stored += sum(1 for t in planned if rows.get(t) == "ok")
    tally.lost += sum(1 for t in planned if rows.get(t) != "ok")
    tally.duplicated += replaced + len(set(rows) - planned)
    tally.stale += int(stale.sum()) + leftovers
    tally.failed_by_faults += retried
    for out in folder.glob("attempt-*.out"):
        tally.tracebacks += out.read_text(errors="replace").count("Traceback")


def fuzz(examples: int) -> int:
    """The fuzzed-input tests with ``examples`` examples each; the number run."""
    env = {**environment(), "RNN_BENCH_FUZZ": "long", "RNN_BENCH_FUZZ_EXAMPLES": str(examples)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzzed_input.py",
            "--hypothesis-show-statistics"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the fuzzed-input tests failed:\n{done.stdout[-3000:]}")
    return sum(int(line.split()[1]) for line in done.stdout.splitlines() if line.strip().startswith("- ")
               and "passing" in line)  # fmt: skip


def campaign(seed: int, minutes: float | None, runs: int | None, kinds: tuple[str, ...] | None = None,
             dask_share: float = 0.3, keep: Path | None = None, fuzz_examples: int = 0,
             after_first_trial: bool = False) -> Tally:  # fmt: skip
    """Runs until ``runs`` are done or ``minutes`` have passed (whichever is given first); with
    ``after_first_trial`` each fault comes once the run has stored a trial (the short test's choice)."""
    known = set(LOCAL_FAULTS + DASK_FAULTS)
    if kinds and not set(kinds) <= known:
        raise SystemExit(f"unknown fault kind(s) {sorted(set(kinds) - known)}; known: {', '.join(sorted(known))}")
    pools = [(on_dask, [f for f in faults if not kinds or f in kinds], share)
             for on_dask, faults, share in ((False, LOCAL_FAULTS, 1 - dask_share), (True, DASK_FAULTS, dask_share))]
    pools = [pool for pool in pools if pool[1] and pool[2] > 0]
    if not pools:
        raise SystemExit(f"no fault can be drawn: --faults {','.join(kinds or ())} with --dask-share {dask_share}")
    rng, victims = random.Random(seed), random.Random(seed + 1)  # victims apart: their count depends on timing
    tally = Tally()
    if fuzz_examples:
        tally.fuzz_examples = fuzz(fuzz_examples)
    base = Path(keep or tempfile.mkdtemp(prefix="rnn-bench-faults-"))
    stop_at = time.monotonic() + 60 * minutes if minutes else None
    cluster: SeparateCluster | None = None
    k = 0
    try:
        while (runs is None or k < runs) and (stop_at is None or time.monotonic() < stop_at):
            on_dask, choices, _ = rng.choices(pools, weights=[share for *_, share in pools])[0]
            fault = rng.choice(choices)
            folder = base / f"run-{k:04d}-{fault}"
            folder.mkdir(parents=True)
            store = folder / "s.sqlite"
            if on_dask and cluster is None:
                cluster = SeparateCluster(environment(), base)
            if on_dask and not cluster.alive():
                cluster.start()
            tally.faults[fault] += 1
            problems = len(tally.problems)
            try:
                inject(fault, rng, victims, folder, store, cluster if on_dask else None, tally, after_first_trial)
                resume(folder, store, cluster if on_dask else None, tally)
                check(folder, store, on_dask, tally)
            except Exception as e:  # noqa: BLE001 (the campaign's own failure on one run: counted, kept, go on)
                tally.problems.append(f"{folder}: {type(e).__name__}: {e}")
            print(f"run {k} ({'dask' if on_dask else 'local'}, {fault}): {tally.line()}", flush=True)
            if len(tally.problems) > problems:
                print(f"  problem: {tally.problems[-1]} (its folder is kept)", flush=True)
            elif not keep:
                shutil.rmtree(folder, ignore_errors=True)
            k += 1
    finally:
        if cluster is not None:
            cluster.stop()
        if not keep and not tally.problems:
            shutil.rmtree(base, ignore_errors=True)
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--minutes", type=float, help="run for this long (default: 60 unless --runs)")
    p.add_argument("--runs", type=int, help="stop after this many runs")
    every = ", ".join(sorted(set(LOCAL_FAULTS + DASK_FAULTS)))
    p.add_argument("--faults", help=f"only these kinds (comma-separated): {every}")
    p.add_argument("--dask-share", type=float, default=0.3, help="share of runs on a Dask cluster (default 0.3)")
    p.add_argument("--fuzz", type=int, default=0, help="first run the fuzzed-input tests with this many examples each")
    p.add_argument("--keep", type=Path, help="keep every run's folder (stores, outputs) here")
    p.add_argument("--json", type=Path, help="also write the figure as JSON")
    args = p.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else (None if args.runs else 60.0)
    kinds = tuple(k.strip() for k in args.faults.split(",")) if args.faults else None
    started = time.monotonic()
    tally = campaign(args.seed, minutes, args.runs, kinds, args.dask_share, args.keep, args.fuzz)
    print(f"\nfault campaign, seed {args.seed}, {(time.monotonic() - started) / 60:.1f} min: {tally.line()}")
    for problem in tally.problems:
        print(f"problem: {problem}")
    if args.json:
        args.json.write_text(json.dumps({**tally.__dict__, "faults": dict(tally.faults),
                                         "exit_codes": {str(k): v for k, v in tally.exit_codes.items()}}, indent=1))
    bad = tally.lost + tally.duplicated + tally.stale + tally.tracebacks + len(tally.problems) + (tally.runs == 0)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
