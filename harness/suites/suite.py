"""Suite files (TOML) and planning: a suite names tasks, lengths, variants, frameworks, the search space,
configurations per cell, seeds and the training budget; ``plan`` turns it into a deterministic list of
trials (same suite, same trial ids).

    name = "quick"
    description = "..."
    tasks = ["adding", "delayed_recall"]
    variants = ["rnn", "lstm", "gru"]          # ids or aliases
    frameworks = ["torch", "tf"]
    baseline = "np"                            # the reference variant of the report
    trials = 3                                 # random-search configurations per (task, T)
    parameters = 20000                         # optional: every cell at this many weights (harness.suites.budget)
    replicates = 1                             # independent seeds per configuration (``seeds``: old name)
    device = "cpu"
    time_limit = 600                           # seconds per job (a trial, or a population of trials)
    search_seed = 0

    [lengths]                                  # dependency lengths per task
    adding = [20, 50]

    [training]                                 # fixed protocol settings (harness.trials.protocol.DEFAULTS)
    max_steps = 1000

    [search]                                   # random search (harness.suites.search_space)
    learning_rate = { log_uniform = [1e-3, 3e-2] }

    [overrides.copy]                           # per-task training settings
    max_steps = 3000
    train_lengths = "uniform"                  # length generalisation (harness.training.lengths)
    test_lengths = [2, 4, 8]                   # ... tested at 2T, 4T, 8T too

    [statistics]                               # how verdicts are tested (harness.suites.analysis_plan)
    primary = "metric"

Tables keyed by task (``[lengths]``, ``[overrides.TASK]``) may name only the tasks in ``tasks``, the
baseline must be one of ``variants``, and a variant hyperparameter in ``[search]`` must belong to one
of them: anything else would be silently ignored, so it is refused (exit 2), naming the file and key.

A plan holds at most ``MAX_TRIALS`` (100,000) trials, about five times the ``full`` study: its size is
computed from the suite before any trial is built, and a larger one is refused with its size and how to
narrow it (``--trials``, ``--replicates``, ``--tasks``, ``--lengths``, ``--variants``, ``--frameworks``, or
several suite files, each with its own ``name``, run one after the other into the same store: a suite's
name identifies its plan in the store, which a run of the whole file replaces).
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.backends import check_framework
from harness.errors import UsageError, unknown_name
from harness.plugins.registry import registry
from harness.suites.analysis_plan import AnalysisPlan, parse_analysis_plan
from harness.suites.budget import budget_hidden_size
from harness.suites.search_space import check_distribution, sample
from harness.trials.protocol import DEFAULTS, DEVICES, check_hparams, id_hparams
from harness.trials.trial import Trial

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITES_DIR = Path(__file__).resolve().parent
MAX_TRIALS = 100_000  # under 1 kB and ~0.2 ms per planned trial; the full study plans 20,900
SEED_STRIDE = 1_000_003  # seed of replicate r of configuration k: k + r * SEED_STRIDE
TOP_KEYS = {
    "name", "description", "tasks", "variants", "frameworks", "baseline", "trials", "replicates", "seeds",
    "device", "time_limit", "search_seed", "lengths", "training", "search", "overrides", "statistics",
    "parameters",
}  # fmt: skip


def split_seed(seed: int) -> tuple[int, int]:
    """(k, r) of a planned trial's seed ``k + r * SEED_STRIDE``: k is the index of its configuration in
    its (task, T)'s random search (the same k-th configuration for every variant and framework), r its
    replicate (0 for a suite's first seed). A seed set by hand reads as (seed mod SEED_STRIDE, seed div
    SEED_STRIDE)."""
    r, k = divmod(int(seed), SEED_STRIDE)
    return k, r


@dataclass
class Suite:
    name: str
    source: str
    tasks: list[str]
    lengths: dict[str, list[int]]
    variants: list[str]
    frameworks: list[str]
    baseline: str
    trials: int = 1
    replicates: int = 1  # independent seeds (initial weights and training stream) per configuration
    device: str = "cpu"
    time_limit: float = 600.0
    search_seed: int = 0
    parameters: int | None = None  # an equal parameter budget: each variant's hidden size from it (budget.py)
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    statistics: AnalysisPlan = field(default_factory=AnalysisPlan)
    text: str = ""  # the suite file's TOML text as read (recorded with each run); "" when built otherwise
    whole: bool = True  # the suite file's entire plan (False once the command line narrowed or changed it)
    notes: list[str] = field(default_factory=list, compare=False)  # what validation folded (duplicates), to say

    def narrowed(self, **changes: Any) -> Suite:
        """A copy with command-line narrowing applied (None means: keep the suite's value), re-validated.
        A change to what is planned (anything but the time limit) makes the copy not ``whole``."""
        s = copy.deepcopy(self)
        for key, value in changes.items():
            if value is None:
                continue
            if key == "lengths":
                value = _folded(list(value), list(value), "length", "--lengths", s.notes)
                s.lengths = {t: list(value) for t in s.tasks}
            elif key == "max_steps":
                s.training["max_steps"] = value
                for o in s.overrides.values():
                    o.pop("max_steps", None)
            else:
                setattr(s, key, value)
        validate(s, "the command line")  # first: it folds names given twice, which change no plan
        s.whole = self.whole and replace(s, time_limit=self.time_limit) == self
        return s


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name (``quick``) or a suite file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and not path.exists():
        raise UsageError(f"suite file {path} does not exist; shipped suites: {', '.join(list_suites())}")
    if path.suffix != ".toml":
        if name_or_path not in list_suites():
            raise unknown_name("suite", name_or_path, list_suites())
        path = SUITES_DIR / f"{name_or_path}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"suite file {path} is not UTF-8 text (byte {e.start}: {e.reason}); a suite is a TOML "
                         "file") from e  # fmt: skip
    except OSError as e:
        raise UsageError(f"suite file {path} cannot be read: {e.strerror or e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"suite file {path} is not valid TOML: {e}") from e
    suite = parse_suite(data, str(path))
    suite.text = text
    return suite


def _names(data: dict, key: str, where: str, default: list[str] | None = None) -> list[str]:
    """A list of names (a lone string is refused rather than split into letters)."""
    value = data.get(key, default)
    if value is None:
        raise UsageError(f"suite file {where}: missing key {key!r}")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f'suite file {where}: {key} = {value!r} should be a list of names, e.g. {key} = ["..."]')
    if not value:
        raise UsageError(f"suite file {where}: {key} is empty; the suite would plan no trials")
    return list(value)


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"suite file {where}: [{key}] should be a table, got {value!r}")
    return value


def parse_suite(data: dict[str, Any], where: str) -> Suite:
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise unknown_name("suite key", unknown[0], TOP_KEYS, f"suite file {where}")
    tasks = _names(data, "tasks", where)
    variants = _names(data, "variants", where)
    frameworks = _names(data, "frameworks", where, ["torch"])
    lengths = _table(data, "lengths", where)
    overrides = _table(data, "overrides", where)
    for task, table in overrides.items():
        if not isinstance(table, dict):
            raise UsageError(f"suite file {where}: [overrides.{task}] should be a table, got {table!r}")
    for key in ("device", "name", "description", "baseline"):
        if key in data and not isinstance(data[key], str):
            raise UsageError(f"suite file {where}: {key} = {data[key]!r} should be a string")
    # an unknown task in the list first: the keys below are checked against the list; every name in its
    # canonical spelling (associative_recall[pairs=2], harness.plugins.task_names)
    tasks = [registry().canonical_task(task, f"suite file {where}") for task in tasks]
    lengths = _task_keyed(lengths, f"suite file {where}, [lengths]")
    overrides = _task_keyed(overrides, f"suite file {where}, [overrides]")
    _check_task_keys("lengths", list(lengths), tasks, where)
    _check_task_keys("overrides", list(overrides), tasks, where)
    suite = Suite(
        name=str(data.get("name", Path(where).stem)),
        source=where,
        tasks=tasks,
        lengths={k: list(v) if isinstance(v, list) else [v] for k, v in lengths.items()},
        variants=variants,
        frameworks=frameworks,
        baseline=str(data.get("baseline", variants[0])),
        trials=data.get("trials", 1),
        replicates=_replicates(data, where),
        device=data.get("device", "cpu"),
        time_limit=data.get("time_limit", 600.0),
        search_seed=data.get("search_seed", 0),
        parameters=data.get("parameters"),
        description=str(data.get("description", "")),
        training=dict(_table(data, "training", where)),
        search=dict(_table(data, "search", where)),
        overrides={k: dict(v) for k, v in overrides.items()},
        statistics=parse_analysis_plan(data.get("statistics"), where),
    )
    validate(suite, f"suite file {where}")
    _check_variant_keys(suite, where)
    return suite


def _replicates(data: dict, where: str) -> Any:
    """``replicates``, or its old name ``seeds`` (suite files written before the rename); not both."""
    if "replicates" in data and "seeds" in data:
        raise UsageError(f"suite file {where}: give replicates or its old name seeds, not both")
    return data.get("replicates", data.get("seeds", 1))


def _task_keyed(table: dict[str, Any], where: str) -> dict[str, Any]:
    """A table keyed by task with each key in its canonical spelling (an unknown task stays as written,
    for ``_check_task_keys`` to name)."""
    reg = registry()
    return {reg.canonical_task(k, where) if reg.knows_task(k) else k: v for k, v in table.items()}


def _check_task_keys(table: str, keys: list[str], tasks: list[str], where: str) -> None:
    """A table keyed by task (``lengths``, ``overrides``) may name only the tasks the suite lists; any
    other key would be ignored."""
    for key in keys:
        if key in tasks:
            continue
        shown = f"[overrides.{key}]" if table == "overrides" else f"[{table}] {key}"
        if registry().knows_task(key):
            raise UsageError(
                f"suite file {where}: {shown} names task {key!r}, which the suite does not list, so it would be "
                f"ignored. The suite's tasks: {', '.join(tasks)}; add {key!r} to tasks or remove {shown}"
            )
        err = unknown_name("task", key, tasks, f"suite file {where}, {shown}")
        raise UsageError(f"{err} (the tasks this suite lists: [{table}] may name no other)")


def _check_variant_keys(s: Suite, where: str) -> None:
    """The baseline and the searched variant hyperparameters must concern the suite's own variants."""
    if s.baseline not in s.variants:
        raise UsageError(
            f"suite file {where}: baseline = {s.baseline!r} is not among the suite's variants "
            f"({', '.join(s.variants)}), so the report would have nothing to compare against"
        )
    reg = registry()
    used = {k for v in s.variants for k in reg.variant_class(v).hyperparameters}
    for key in s.search:
        if key not in DEFAULTS and key not in used:
            owners = sorted(v for v, cls in reg.variants.items() if key in cls.hyperparameters)
            raise UsageError(
                f"suite file {where}: [search] {key} is a hyperparameter only of {', '.join(owners)}, and "
                f"the suite lists none of them ({', '.join(s.variants)}), so it would be ignored; remove it "
                "or add one of them to variants"
            )


def validate(s: Suite, where: str) -> None:
    """Every name known, every number possible; errors name the file (or flag) and the key."""
    reg = registry()
    s.tasks = _folded(s.tasks, [reg.canonical_task(t, where) for t in s.tasks], "task", where, s.notes)
    s.lengths = _task_keyed(s.lengths, where)
    for t in s.tasks:
        reg.task(t, where)  # its parameters possible together (associative_recall: pairs <= keys)
        if isinstance(s.lengths.get(t), list):
            s.lengths[t] = _folded(s.lengths[t], s.lengths[t], "length", f"{where}, [lengths] {t}", s.notes)
    s.variants = _folded(s.variants, [reg.canonical_variant(v, where) for v in s.variants], "variant", where,
                         s.notes)  # fmt: skip
    s.frameworks = _folded(s.frameworks, s.frameworks, "framework", where, s.notes)
    if s.baseline:
        s.baseline = reg.canonical_variant(s.baseline, f"{where}, key 'baseline'")
    for f in s.frameworks:
        check_framework(f, where)
    if s.device not in DEVICES:
        raise unknown_name("device", s.device, DEVICES, where)
    for key in ("trials", "replicates"):
        value = getattr(s, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{where}: {key} = {value!r} must be an integer >= 1")
    if isinstance(s.search_seed, bool) or not isinstance(s.search_seed, int) or s.search_seed < 0:
        raise UsageError(f"{where}: search_seed = {s.search_seed!r} must be an integer >= 0")
    if isinstance(s.time_limit, bool) or not isinstance(s.time_limit, (int, float)) or not s.time_limit > 0:
        raise UsageError(f"{where}: time_limit = {s.time_limit!r} must be a positive number of seconds")
    _check_budget(s, where)
    for task in s.tasks:
        if task not in s.lengths or not s.lengths[task]:
            raise UsageError(f"{where}: no lengths for task {task!r}; add it to [lengths] (e.g. {task} = [20, 50])")
        for T in s.lengths[task]:
            reg.task(task).check_length(T, f"{where}, [lengths] {task}")
    for key in ("tasks", "variants", "frameworks"):
        if not getattr(s, key):
            raise UsageError(f"{where}: no {key} selected; the suite would plan no trials")
    # A search key is any protocol setting or any variant's hyperparameter: narrowing to variants that
    # ignore a key (--variants rnn on a suite that searches forget_bias) leaves it unused, not wrong.
    variant_keys = {k for cls in reg.variants.values() for k in cls.hyperparameters}
    for key, spec in s.search.items():
        if key not in DEFAULTS and key not in variant_keys:
            allowed = sorted(set(DEFAULTS) | variant_keys)
            raise unknown_name("search key", key, allowed, f"{where}, [search]")
        check_distribution(key, spec, where)
        # every value the search can draw (a choice's values, a range's bounds) is checked now, not when
        # a configuration happens to sample it
        if key in DEFAULTS:
            for value in _search_values(spec):
                check_hparams({key: value}, f"{where}, [search] {key}")
        else:
            _check_variant_values(s, key, spec, where)
    for table, values in [("training", s.training)] + [(f"overrides.{t}", o) for t, o in s.overrides.items()]:
        for key in values:
            if key not in DEFAULTS:
                raise unknown_name("training key", key, DEFAULTS, f"{where}, [{table}]")
        check_hparams(values, f"{where}, [{table}]")


def _folded(written: list[Any], canonical: list[Any], kind: str, where: str, notes: list[str]) -> list[Any]:
    """``canonical`` (the names of ``written`` in their canonical spelling) with repeats dropped, first
    place kept: a cell is planned once however often it is named. Each repeat adds a line to ``notes``
    (an alias naming a variant already listed says which)."""
    if not all(isinstance(v, (str, int, float)) for v in canonical):
        return canonical  # malformed: refused by the checks that follow, with their own message
    kept: dict[Any, Any] = {}
    for name, value in zip(written, canonical):
        if value not in kept:
            kept[value] = name
            continue
        was = kept[value]
        also = f" ({name!r} and {was!r} name the same {kind})" if name != was else ""
        note = f"{where}: {kind} {value!r} is listed more than once{also}; it is planned once"
        if note not in notes:
            notes.append(note)
    return list(kept)


def _check_budget(s: Suite, where: str) -> None:
    """``parameters`` is a positive integer, and it replaces any hidden size the suite would set."""
    if s.parameters is None:
        return
    if isinstance(s.parameters, bool) or not isinstance(s.parameters, int) or s.parameters < 1:
        raise UsageError(f"{where}: parameters = {s.parameters!r} must be an integer >= 1 (weights per cell)")
    tables = [("search", s.search), ("training", s.training)] + [(f"overrides.{t}", o) for t, o in s.overrides.items()]
    for table, values in tables:
        if "hidden_size" in values:
            raise UsageError(f"{where}: [{table}] hidden_size and parameters = {s.parameters} both set the hidden "
                             "size; with parameters each variant's hidden size is the one that brings its cell "
                             "closest to that many weights, so remove hidden_size")  # fmt: skip


def _check_variant_values(s: Suite, key: str, spec: Any, where: str) -> None:
    """Each value of a variant hyperparameter's search must be one that every variant of the suite taking
    ``key`` accepts (its constructor validates it)."""
    reg = registry()
    for variant_id in s.variants:
        cls = reg.variant_class(variant_id)
        if key not in cls.hyperparameters:
            continue
        for value in _search_values(spec):
            try:
                cls(**{key: value})
            except UsageError as e:
                raise UsageError(f"{where}, [search] {key}: {e}") from e


def _search_values(spec: Any) -> list[Any]:
    if not isinstance(spec, dict):
        return [spec]
    return [v for k, args in spec.items() if k != "multiple_of" for v in args]


def plan_size(s: Suite) -> int:
    """How many trials ``plan`` builds, computed without building them."""
    cells = sum(len(s.lengths[task]) for task in s.tasks)
    return cells * s.trials * len(s.variants) * len(s.frameworks) * s.replicates


def check_plan_size(s: Suite) -> None:
    """Refuse a plan over ``MAX_TRIALS`` before building it (it would take minutes and gigabytes)."""
    n = plan_size(s)
    if n > MAX_TRIALS:
        cells = sum(len(s.lengths[task]) for task in s.tasks)
        raise UsageError(
            f"suite {s.name!r} ({s.source}) would plan {n:,} trials ({cells} task-length cell(s) x "
            f"{s.trials:,} configuration(s) x {len(s.variants)} variant(s) x {len(s.frameworks)} framework(s) "
            f"x {s.replicates:,} replicate(s)), over the limit of {MAX_TRIALS:,} trials per plan. Narrow it with "
            "--trials, --replicates, --tasks, --lengths, --variants or --frameworks, or split it into several "
            "suite files, each with its own name, run one after the other into the same store"
        )


def plan(s: Suite) -> list[Trial]:
    """The suite's trials, in a deterministic order: task, T, configuration, variant, framework, replicate.
    A plan over ``MAX_TRIALS`` is refused before any trial is built."""
    check_plan_size(s)
    reg = registry()
    trials = []
    for task in s.tasks:
        for T in s.lengths[task]:
            for k in range(s.trials):
                config = sample(s.search, s.search_seed, task, T, k)
                for variant_id in s.variants:
                    variant_cls = reg.variant_class(variant_id)
                    where = f"suite {s.name!r}, {task} T={T} configuration {k}, variant {variant_id!r}"
                    common = {key: v for key, v in config.items() if key in DEFAULTS}
                    hp = check_hparams({**s.training, **s.overrides.get(task, {}), **common}, where)
                    own = {key: v for key, v in config.items() if key in variant_cls.hyperparameters}
                    variant = variant_cls(**own)
                    hp.update(variant.hparams)  # validated, defaults filled
                    if s.parameters is not None:  # an equal budget: the width that brings the cell closest
                        hp["hidden_size"] = budget_hidden_size(variant, reg.task(task).input_size, s.parameters)
                    # Settings that cannot change this trial's arithmetic must not change its id either
                    if variant_cls.fused_kernel is None:
                        hp["fused"] = False
                    variant.parameter_shapes(
                        reg.task(task).input_size, hp["hidden_size"]
                    )  # e.g. clockwork's H % modules
                    for framework in s.frameworks:
                        fw_hp = id_hparams(hp if framework == "tf" else {k2: v for k2, v in hp.items() if k2 != "xla"})
                        for r in range(s.replicates):
                            # replicate r of configuration k; replicate 0 keeps seed k whatever
                            # --replicates says, so adding replicates never changes a stored trial
                            seed = k + r * SEED_STRIDE
                            trials.append(Trial(task, T, variant_id, framework, s.device, fw_hp, seed))
    return trials
