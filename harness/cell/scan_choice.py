"""Which path computes a layer whose variant has a linear form (``harness.scan``): the loop of steps or
the parallel scan, as a run's ``--scan`` asks.

``on`` scans wherever a variant has a linear form, ``off`` never does, and ``auto`` (the default) scans
where it was measured faster: ``SCAN_AUTO`` names, per framework and device, the jobs (a trial alone,
or a population) in which the elementwise scans were, and a form registered with its own measurement
(``harness.scan.FASTER_WHERE``: mLSTM's) replaces that table for its variant (``rnn-bench speed --scan
both``; docs/variants.md, "Parallel scans").
A variant without a linear form always runs its loop. The choice changes only the order of float
additions (the tests hold both paths to float64 rounding at T = 256), so it is not part of a trial's
id; the result records ``path = "scan"``.
"""

from __future__ import annotations

from harness.errors import UsageError
from harness.scan import FASTER_WHERE, LINEAR_FORMS
from harness.variant import Variant

SCAN_CHOICES = ("auto", "on", "off")
#: (framework, device) -> the jobs in which ``auto`` runs an elementwise scan: "solo" (a trial alone),
#: "population". (mLSTM's chunkwise form has its own measurement: ``MLSTM_SCAN_FASTER`` in variants/xlstm_scan.py.)
#: Measured with ``rnn-bench speed --scan both`` on the reference machine (min_gru, min_lstm, rg_lru;
#: H = 32, B = 32, T = 100 and 1000; docs/variants.md, "Parallel scans"): in PyTorch a solo trial's scan is
#: 1.6-3.7x faster than its loop of small steps, while a population's loop (hoisted products, tensors that
#: stay in cache) is 1.5-6.5x faster than its scan; in TensorFlow the traced loop beats the scan everywhere. On a GPU
#: nothing is measured yet, so ``auto`` keeps the loop there (``--scan on`` and ``rnn-bench speed
#: --device cuda --scan both`` measure it on yours).
SCAN_AUTO: dict[tuple[str, str], frozenset[str]] = {
    ("torch", "cpu"): frozenset({"solo"}),
    ("tf", "cpu"): frozenset(),
    ("torch", "cuda"): frozenset(),
    ("tf", "cuda"): frozenset(),
}


def check_scan_choice(choice: str) -> str:
    """``choice`` if it is one of ``SCAN_CHOICES``; else a usage error naming it."""
    if choice not in SCAN_CHOICES:
        raise UsageError(f"--scan {choice!r} is not a choice; use one of {', '.join(SCAN_CHOICES)}")
    return choice


def uses_scan(variant: Variant, choice: str, framework: str, device: str, members: int) -> bool:
    """Whether a job of ``members`` trials (1: solo) of ``variant`` runs its layer as a scan."""
    if variant.id not in LINEAR_FORMS or check_scan_choice(choice) == "off":
        return False
    measured = FASTER_WHERE.get(variant.id, SCAN_AUTO)
    return choice == "on" or ("solo" if members == 1 else "population") in measured.get((framework, device), ())
