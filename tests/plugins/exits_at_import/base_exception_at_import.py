"""A plugin file that raises a bare BaseException at import (tests/test_registry.py): reported broken by
name like any other import error."""

raise BaseException("a bare BaseException at import")
