"""The fault campaign (benchmarks/faults.py), short and seeded: one run with the driver killed, one with a
training worker killed, each once the run has stored a trial, each resumed with the same command; nothing may
be lost, stored twice or left stale, and no attempt may print a traceback. (`make faults` runs it for an
hour, the Dask faults included.)"""

from __future__ import annotations

import importlib.util

import pytest

from benchmarks.faults import campaign

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("tensorflow")
                                is None, reason="smoke runs both frameworks")  # fmt: skip


@pytest.mark.parametrize("fault", ["driver-sigkill", "worker-sigkill"])
def test_a_short_seeded_campaign_loses_duplicates_and_leaves_nothing(tmp_path, fault):
    tally = campaign(seed=0, minutes=None, runs=1, kinds=(fault,), dask_share=0.0, keep=tmp_path,
                     after_first_trial=True)  # fmt: skip
    assert tally.landed[fault] == 1, f"the fault came after the run ended, or found no victim: {tally.line()}"
    assert tally.planned == 18 and tally.stored == 18, tally.line()
    assert (tally.lost, tally.duplicated, tally.stale, tally.tracebacks) == (0, 0, 0, 0), tally.line()
    assert not tally.problems, tally.problems
