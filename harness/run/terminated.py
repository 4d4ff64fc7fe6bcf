"""SIGTERM, handled as Ctrl-C is."""

from __future__ import annotations


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the driver (``kill PID``, a batch system ending the job): handled as Ctrl-C is (every
    finished trial kept, the summary printed), with exit code 143 (128 + 15, a shell's code for SIGTERM).
    (Not in ``harness.errors``: that module is part of the plugin API, whose every edit would mark every
    stored trial's code as changed.)"""

    exit_code = 143
