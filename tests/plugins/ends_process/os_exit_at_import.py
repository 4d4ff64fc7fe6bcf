"""A plugin file that ends its process at import with ``os._exit(0)`` (tests/test_registry.py), which no
``except`` can catch: it must be reported broken by name, and the command go on with the others."""

import os

from harness.variant import Variant

if os.environ.get("RNN_BENCH_TEST_IMPORTS"):
    with open(os.environ["RNN_BENCH_TEST_IMPORTS"], "a") as f:
        f.write(f"{os.getpid()}\n")

os._exit(0)


class EndsAtImport(Variant):
    id = "ends_at_import"
