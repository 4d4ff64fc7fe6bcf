"""A plugin variant file that fails to import, for tests/test_runner.py."""

from harness.variant import Variant

raise RuntimeError("this plugin file is broken on purpose")


class Broken(Variant):
    id = "broken"
