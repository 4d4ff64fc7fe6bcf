"""Errors a user can act on. A ``UsageError`` is bad input: the CLI prints it and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UsageError(Exception):
    """Bad input from the user (an unknown name, a malformed suite, an impossible hyperparameter).

    The message names the bad value, where it came from, and what is allowed.
    """

    exit_code = 2


def unknown_name(kind: str, value: str, valid: Iterable[str], where: str = "") -> UsageError:
    """The error for an unknown task/variant/framework/suite, with a "did you mean" and the valid names."""
    valid = sorted(set(valid))
    close = difflib.get_close_matches(value, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    origin = f" (from {where})" if where else ""
    return UsageError(f"unknown {kind} {value!r}{origin}.{hint} Valid {kind}s: {', '.join(valid)}")
