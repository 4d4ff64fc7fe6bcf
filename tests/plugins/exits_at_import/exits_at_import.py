"""A plugin file that calls sys.exit at import (tests/test_registry.py): it must be reported broken by
name, not end the program."""

import sys

from harness.variant import Variant

sys.exit(3)


class ExitsAtImport(Variant):
    id = "exits_at_import"
