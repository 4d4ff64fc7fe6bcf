"""Is a stored result still the result of the code that is here now?

Each stored trial carries the code fingerprints of its variant and task (``harness.plugins.fingerprint``).
``run`` reruns the trials whose code changed; ``status`` and ``report`` say how many stored trials
are out of date, and which variants and tasks changed, so an old number is never shown as current
without a word. Rows stored before fingerprints existed (NULL) are "unknown", not "changed".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.plugins.fingerprint import code_of
from harness.plugins.registry import registry


def expected_code(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """(variant, task) -> the fingerprints this checkout's code has, for the pairs it knows."""
    reg = registry()
    known = {(v, k) for v, k in pairs if v in reg.variants and reg.knows_task(k)}
    return {(v, k): code_of(reg.variants[v], reg.task_class(k)) for v, k in known}


def changed_code(trials: Any) -> tuple[Any, Counter]:
    """For a trials frame (``Store.trials_frame``): a boolean Series, True where the row's variant or
    task code differs from the code here, and a Counter of (kind, name) -> changed rows."""
    import pandas as pd

    mask = pd.Series(False, index=trials.index)
    changed: Counter = Counter()
    if trials.empty or "variant_code" not in trials:
        return mask, changed
    code = expected_code(set(zip(trials["variant"], trials["task"])))
    for i, row in trials.iterrows():
        want = code.get((row["variant"], row["task"]))
        if want is None:  # a variant or task this checkout does not have: nothing to compare with
            continue
        for kind in ("variant", "task"):
            have = row[f"{kind}_code"]
            if isinstance(have, str) and have != want[kind]:
                mask[i] = True
                changed[(kind, row[kind])] += 1
    return mask, changed


def describe(changed: Counter) -> str:
    """'variant 'mine' (12 trials), task 'adding' (3 trials)'."""
    return ", ".join(f"{kind} {name!r} ({n} trial{'s' * (n != 1)})" for (kind, name), n in sorted(changed.items()))
