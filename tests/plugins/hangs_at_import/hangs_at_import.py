"""A plugin file that does not finish importing (tests/test_registry.py): it must be reported broken once
RNN_BENCH_IMPORT_TIMEOUT runs out, in the process that loads the registry first; the processes that one
starts must not import it again. Each import that starts appends this process's id to the file named
by RNN_BENCH_TEST_IMPORTS (when set). After 60 s it gives up with an error of its own, so that a
broken time limit fails the tests instead of hanging them."""

import os
import time

if os.environ.get("RNN_BENCH_TEST_IMPORTS"):
    with open(os.environ["RNN_BENCH_TEST_IMPORTS"], "a") as f:
        f.write(f"{os.getpid()}\n")

started = time.monotonic()
while time.monotonic() - started < 60:
    try:
        time.sleep(0.05)
    except Exception:  # cannot swallow the time limit: it is a BaseException
        pass
raise RuntimeError("hangs_at_import.py was still importing after 60 s: the import time limit did not work")
