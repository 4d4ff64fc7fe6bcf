"""A plugin file that crashes its process at import (a segfault, as a broken extension does)
(tests/test_registry.py): it must be reported broken by name, and the command go on with the others."""

import ctypes

from harness.variant import Variant

ctypes.string_at(0)  # reads address 0: SIGSEGV


class CrashesAtImport(Variant):
    id = "crashes_at_import"
