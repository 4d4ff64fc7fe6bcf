"""Plugin variants that misbehave on purpose, for tests/test_runner.py (loaded via RNN_BENCH_PLUGINS).

Each is a tanh RNN (no fused kernel, so its ``step`` really runs) plus one fault, which shows only
in a benchmark worker, not in the contract preflight that ``rnn-bench run`` does first in a child
process. Environment variables tune them from the test:

    RNN_BENCH_TEST_SLEEP   seconds ``sleepy`` sleeps in every step call (default 0)
    RNN_BENCH_TEST_HOLD    a file: while it exists, ``sleepy`` waits in its step
    RNN_BENCH_TEST_PARENTS a file: ``sleepy`` appends its worker's parent pid (the driver, or the Dask worker
                           that started it) at its first step in each worker
    RNN_BENCH_TEST_HEAL    when set, ``exits`` and ``killed`` behave (to test --retry-failed)
    RNN_BENCH_TEST_PROBE   file ``probe`` appends "pid backend torch_loaded tf_loaded CUDA_VISIBLE_DEVICES" lines to
"""

import multiprocessing
import os
import signal
import sys
import time

from variants.rnn import SimpleRNN


def in_worker(ops) -> bool:
    """In a benchmark worker (named rnn-bench-<framework> by harness.workers.worker), not in run's contract preflight
    (a worker of no framework, rnn-bench-harness)."""
    return ops.backend in ("torch", "tf") and multiprocessing.current_process().name in ("rnn-bench-torch",
                                                                                          "rnn-bench-tf")


class _TanhRNN(SimpleRNN):
    id = ""  # no id of its own: not registered itself
    family = "test"
    reference = "tests/plugins"
    fused_kernel = None  # the step must really run, so no library kernel


class Sleepy(_TanhRNN):
    id = "sleepy"
    name = "sleeps in its step"

    told = False

    def step(self, ops, p, x, state):
        if in_worker(ops):
            parents = os.environ.get("RNN_BENCH_TEST_PARENTS")
            if parents and not Sleepy.told:
                Sleepy.told = True
                with open(parents, "a") as f:
                    f.write(f"{os.getppid()}\n")
            time.sleep(float(os.environ.get("RNN_BENCH_TEST_SLEEP", "0")))
            hold = os.environ.get("RNN_BENCH_TEST_HOLD")
            while hold and os.path.exists(hold):
                time.sleep(0.05)
        return super().step(ops, p, x, state)


class Exits(_TanhRNN):
    id = "exits"
    name = "its worker exits with code 7"

    def step(self, ops, p, x, state):
        if in_worker(ops) and not os.environ.get("RNN_BENCH_TEST_HEAL"):
            os._exit(7)
        return super().step(ops, p, x, state)


class Killed(_TanhRNN):
    id = "killed"
    name = "its worker is killed by SIGKILL"

    def step(self, ops, p, x, state):
        if in_worker(ops) and not os.environ.get("RNN_BENCH_TEST_HEAL"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().step(ops, p, x, state)


class GoesNan(_TanhRNN):
    id = "goes_nan"
    name = "its outputs become NaN after a few steps"
    calls = 0

    def step(self, ops, p, x, state):
        GoesNan.calls += in_worker(ops)
        h, (h,) = super().step(ops, p, x, state)
        if GoesNan.calls > 8:  # a few good training steps first, then NaN for ever
            h = h * float("nan")
        return h, (h,)


class Probe(_TanhRNN):
    id = "probe"
    name = "records which frameworks its process has imported"

    def step(self, ops, p, x, state):
        if in_worker(ops):
            gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
            line = f"{os.getpid()} {ops.backend} {'torch' in sys.modules} {'tensorflow' in sys.modules} {gpu}\n"
            with open(os.environ["RNN_BENCH_TEST_PROBE"], "a") as f:
                f.write(line)
        return super().step(ops, p, x, state)
