"""Hyperparameter importance (Greff et al. 2015, Fig. 4): the fraction of the test metric's variance that
each searched hyperparameter explains, per task, T and variant family, with a bootstrap interval.

The samples are **configurations**, not trials: a configuration's PyTorch and TensorFlow runs are
two measurements of one sample (``harness.analysis.study.configurations`` averages them), so pooling them would
count one point twice and make the forest fit its own duplicates.

``method`` "fanova": fANOVA (Hutter et al. 2014), the main-effect fraction of the variance, unnormalised:
Optuna's ``FanovaImportanceEvaluator``'s numbers (seeded; needs scikit-learn), computed by
``harness.analysis.fanova`` some 15 times faster. "eta2", the fallback: each
hyperparameter's one-way ANOVA η² (numbers binned by quartiles).

Every number is **per variant family** (``VariantInfo.family``: lstm, gru, rnn, ...): a family's
configurations are analysed on their own and no summary averages over families, since the families search
different hyperparameters (only the lstm family has a forget-gate bias) and a mean with equal weight per
family would credit a hyperparameter with variance in a family that does not have it. Next to the
``importance`` of the chosen method, the rows always carry ``eta2``: the one-way η² of the same
hyperparameter on the same configurations (``eta_squared``), a simple model to hold fANOVA against; where
their leaders differ within a family, the report says so.

The uncertainty is the bootstrap standard error over configurations (``scipy.stats.bootstrap``, seeded,
``RESAMPLES`` resamples, fANOVA's with a forest of ``RESAMPLE_TREES`` trees: few, to keep a report fast)
and the interval importance ± 1.96 SE, clipped to [0, 1]. Not the percentile interval: a resample repeats
about a third of its configurations, which the forest fits as if they were new evidence, so the
resamples' importances are biased and their percentiles need not even contain the estimate; their spread
is still a fair measure of how much the number moves with the sample.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.fanova import encode, main_effects
from harness.analysis.statistics import CONFIDENCE, present
from harness.trials.trial import NOT_SEARCHED

MIN_CONFIGURATIONS = 10
VARIANT_FACTOR = "hp.variant"  # the pseudo-hyperparameter "variant" in a family's importance
MISSING = "n/a"  # a hyperparameter that some variants of a family do not have (nfg has no forget bias)
RESAMPLES = 16  # bootstrap resamples per task, T and family
FULL_TREES = 64  # Optuna's default forest, for the importance itself
#: A resample's forest: fANOVA's time grows with its trees, and a resample only needs to say how far the
#: importance moves; the smaller forest's own noise widens the interval a little (the cautious side).
RESAMPLE_TREES = 8
SEED = 0
#: ``eta2``: the one-way η² on the same configurations, whatever ``importance``'s method (``eta_squared``)
COLUMNS = ["task", "length", "family", "hyperparameter", "importance", "eta2", "se", "low", "high", "configurations"]


def fanova_available() -> bool:
    try:
        import sklearn  # noqa: F401  (fANOVA's forest)
    except ImportError:
        return False
    return True


def searched_hparams(frame: pd.DataFrame) -> list[str]:
    """The ``hp.*`` columns that vary within ``frame`` (the searched hyperparameters)."""
    out = []
    for col in sorted(c for c in frame.columns if c.startswith("hp.")):
        if col[3:] in NOT_SEARCHED:
            continue
        if frame[col].dropna().map(_hashable).nunique() > 1:
            out.append(col)
    return out


def importance(
    configs: pd.DataFrame, families: dict[str, str], min_configurations: int = MIN_CONFIGURATIONS,
    method: str | None = None, resamples: int = RESAMPLES,
) -> tuple[pd.DataFrame, str]:  # fmt: skip
    """Per task, T and variant family with at least ``min_configurations`` configurations that have a
    test metric: each searched hyperparameter's importance, its bootstrap standard error ``se`` and the
    interval ``low``, ``high`` = importance ± 1.96 se within [0, 1] (NaN with ``resamples`` 0), and ``eta2``,
    its one-way η² on the same configurations (``eta_squared``; equal to ``importance`` when ``method`` is
    "eta2"). ``configs``: one row per configuration (``harness.analysis.study.configurations``). ``method``:
    "fanova" or "eta2"; None picks fANOVA when scikit-learn is installed. Returns (rows, method used).

    Where a family has several variants, "variant" is one of the factors; a hyperparameter that some of
    them lack (nfg has no forget-gate bias) takes the category "n/a" there."""
    from scipy import stats

    method = method or ("fanova" if fanova_available() else "eta2")
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))  # 1.96: the interval is importance ± z · SE
    rows = []
    for (task, length, family), group, params, y in _family_groups(configs, families, min_configurations):
        eta = _eta_scorer(group, params, y)
        score = _fanova_scorer(group, params, y) if method == "fanova" else eta
        value = score(np.arange(len(y)), FULL_TREES)
        eta2 = value if method == "eta2" else eta(np.arange(len(y)))
        se = _bootstrap_se(score, len(y), resamples, RESAMPLE_TREES)
        for i, name in enumerate(params):
            low, high = np.clip([value[i] - z * se[i], value[i] + z * se[i]], 0.0, 1.0)  # NaN stays NaN
            rows.append({"task": task, "length": int(length), "family": family, "hyperparameter": name[3:],
                         "importance": float(value[i]), "eta2": float(eta2[i]), "se": float(se[i]),
                         "low": float(low), "high": float(high), "configurations": len(group)})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS), method


class ImportanceJob:
    """``importance`` in a helper process (a ``harness.workers`` job of no framework), so that a report goes
    on with the rest of its analysis meanwhile: the answer is ``importance(configs, families)``."""

    framework = None

    def __init__(self, configs: pd.DataFrame, families: dict[str, str]) -> None:
        self.configs, self.families = configs, families

    def run(self, context: Any) -> tuple[pd.DataFrame, str]:
        return importance(self.configs, self.families)


def eta_squared(
    configs: pd.DataFrame, families: dict[str, str], min_configurations: int = MIN_CONFIGURATIONS
) -> pd.DataFrame:  # fmt: skip
    """The simple model alone: per task, T and variant family (the same groups and configurations as
    ``importance``), each searched hyperparameter's one-way ANOVA η² = between-group sum of squares / total
    sum of squares of the test metric, the groups being the hyperparameter's values (numbers with more than
    four values binned by quartiles, log-spaced when all positive; a value a variant lacks is the group
    "n/a"). A main effect, like fANOVA's; with few configurations per group it overstates a little (its
    expectation under no effect is about (groups - 1) / (configurations - 1)). Columns: task, length,
    family, hyperparameter, eta2, configurations."""
    cols = ["task", "length", "family", "hyperparameter", "eta2", "configurations"]
    rows = []
    for (task, length, family), group, params, y in _family_groups(configs, families, min_configurations):
        values = _eta_scorer(group, params, y)(np.arange(len(y)))
        rows += [{"task": task, "length": int(length), "family": family, "hyperparameter": name[3:],
                  "eta2": float(v), "configurations": len(group)} for name, v in zip(params, values)]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _family_groups(configs: pd.DataFrame, families: dict[str, str], min_configurations: int):
    """Yield ((task, T, family), configurations, factors, test metrics) for every task, T and variant family
    with at least ``min_configurations`` configurations with a test metric, a searched hyperparameter and
    some variance; "variant" is a factor where the family has several variants there."""
    if configs.empty:
        return
    df = configs[np.isfinite(configs["test_metric"].to_numpy(float))]
    df = df.assign(family=df["variant"].map(lambda v: families.get(v, "other")))
    for key, group in df.groupby(["task", "length", "family"], sort=True):
        if len(group) < min_configurations:
            continue
        params = searched_hparams(group)
        if not params:
            continue
        if group["variant"].nunique() > 1:  # the variant itself is a factor of a family's variance
            group = group.assign(**{VARIANT_FACTOR: group["variant"].astype(str)})
            params = [VARIANT_FACTOR, *params]
        group = group.sort_values(["variant", "configuration"], kind="stable")
        y = group["test_metric"].to_numpy(float)
        if np.var(y) == 0:
            continue
        yield key, group, params, y


def _bootstrap_se(score, n: int, resamples: int, trees: int) -> np.ndarray:
    """The bootstrap standard error of ``score(indices, trees)`` over resamples of the n configurations
    (with replacement; ``scipy.stats.bootstrap``, seeded); NaN with no resamples."""
    from scipy import stats

    if resamples <= 0:
        return np.full(len(score(np.arange(min(n, 2)), trees)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate resample (one value) only warns
        res = stats.bootstrap((np.arange(n),), lambda idx: score(np.asarray(idx, dtype=int), trees),
                              n_resamples=resamples, vectorized=False, method="percentile",
                              confidence_level=CONFIDENCE, rng=np.random.default_rng(SEED))  # fmt: skip
    return np.atleast_1d(res.standard_error)


def importance_by_task(imp: pd.DataFrame) -> pd.DataFrame:
    """Per task, variant family and hyperparameter: the mean ``importance`` (and ``eta2``, NaN where
    ``imp`` has none) over the lengths T at which the family was analysed (``groups``: how many), in
    decreasing importance within each task and family ("variant", the choice of variant within a family,
    included). Never a mean over families: each row is one family's (a hyperparameter that one family
    lacks, such as the forget-gate bias outside the lstm family, has no row for that family)."""
    cols = ["task", "family", "hyperparameter", "importance", "eta2", "groups"]
    if imp.empty:
        return pd.DataFrame(columns=cols)
    imp = imp if "eta2" in imp else imp.assign(eta2=np.nan)
    out = (
        imp.groupby(["task", "family", "hyperparameter"], sort=True)
        .agg(importance=("importance", "mean"), eta2=("eta2", "mean"), groups=("importance", "size"))
        .reset_index()
    )
    return out.sort_values(["task", "family", "importance", "hyperparameter"], ascending=[True, True, False, True],
                           kind="stable").reset_index(drop=True)[cols]  # fmt: skip


# ------------------------------------------------------------------------------------------------------
# the two scorers: index array of the configurations -> importance per parameter
# ------------------------------------------------------------------------------------------------------
def _fanova_scorer(group: pd.DataFrame, params: list[str], y: np.ndarray):
    """fANOVA of the configurations at the given indices (a resample may repeat one;
    ``harness.analysis.fanova``). The encoding is made once, from the whole group, so that every resample
    shares its bounds and categories; the hyperparameters are encoded in the order of their names, as
    Optuna's evaluator does, so that the same seed grows the same forest."""
    order = sorted(params)
    X, bounds, groups = encode([_column(group[col]) for col in order])
    columns = [groups[order.index(col)] for col in params]

    def score(idx: np.ndarray, trees: int) -> np.ndarray:
        if len(set(idx.tolist())) < 2 or np.var(y[idx]) == 0:
            return np.zeros(len(params))
        return main_effects(X[idx], y[idx], bounds, columns, trees, SEED)

    return score


def _eta_scorer(group: pd.DataFrame, params: list[str], y: np.ndarray):
    """η² = between-group sum of squares / total sum of squares of each parameter's categories (numbers
    with more than four values binned by quartiles of the whole group, log-spaced when all positive)."""
    labels = {}
    for col in params:
        values, numeric = _column(group[col])
        if numeric and len(set(values)) > 4:
            x = np.asarray(values, dtype=float)
            x = np.log(x) if (x > 0).all() else x
            labels[col] = np.asarray(pd.qcut(x, 4, labels=False, duplicates="drop"))
        else:
            labels[col] = np.array([str(v) for v in values], dtype=object)

    def score(idx: np.ndarray, trees: int = 0) -> np.ndarray:  # trees: the fANOVA scorer's; unused here
        yy = y[idx]
        total = float(np.sum((yy - yy.mean()) ** 2))
        if total <= 0:
            return np.zeros(len(params))
        out = []
        for col in params:
            lab = labels[col][idx]
            between = sum(len(g) * (g.mean() - yy.mean()) ** 2 for g in (yy[lab == k] for k in pd.unique(lab)))
            out.append(between / total)
        return np.array(out)

    return score


def _hashable(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _column(raw: pd.Series) -> tuple[list[Any], bool]:
    """(values, numeric): a column with a missing or non-numeric value becomes categories (strings)."""
    values = raw.tolist()
    if all(present(v) and _is_number(v) for v in values):
        return values, True
    return [str(v) if present(v) else MISSING for v in values], False
