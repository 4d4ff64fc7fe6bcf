"""Greff's marginals: points per hyperparameter value (named settings their own), exact median intervals,
the learning rate x hidden size cells and the strongest effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.analysis.marginals import interaction, marginal_effects, median_interval, points, strongest_effects


def _configs(n: int = 48, seed: int = 0) -> pd.DataFrame:
    """Configurations whose test MSE depends on the learning rate only (best near 1e-2) and on nothing else."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    return pd.DataFrame({
        "task": "adding", "length": 20, "variant": "v", "higher_is_better": False,
        "hp.learning_rate": lr, "hp.hidden_size": rng.choice([16, 32, 64], n),
        "hp.forget_bias": [[1.0, 3.0, "chrono"][i % 3] for i in range(n)],
        "hp.max_steps": 1000,  # not searched: constant
        "test_metric": 0.01 + 0.1 * (np.log10(lr) + 2) ** 2 + rng.normal(0, 1e-3, n),
    })  # fmt: skip


def test_median_interval_is_scipys_exact_order_statistic_interval():
    y = np.arange(20, dtype=float)
    assert median_interval(y) == (5.0, 14.0)  # binomial(20, 1/2) order statistics 6 and 15
    assert all(np.isnan(median_interval(y[:5])))  # under 6 values: no 95 % interval exists
    lo, hi = median_interval(y, confidence=0.5)
    assert lo > 5.0 and hi < 14.0


def test_points_keep_named_settings_apart_and_bin_continuous_values():
    assign, pts = points(pd.Series([1.0, 3.0, "chrono", 1.0, None]))
    assert pts["point"].tolist() == ["1", "3", "chrono"] and pts["named"].tolist() == [False, False, True]
    assert assign.tolist()[:4] == [0, 1, 2, 0] and np.isnan(assign.iloc[4])
    assign, pts = points(pd.Series(10 ** np.linspace(-4, -1, 40)), per_bin=8)
    assert len(pts) == 5 and pts["binned"].all() and (assign.value_counts() == 8).all()
    assert (np.diff(pts["x"]) > 0).all()  # bins in increasing order


def test_marginal_effects_find_the_learning_rate():
    m = marginal_effects(_configs())
    assert set(m["hyperparameter"]) == {"learning_rate", "hidden_size", "forget_bias"}  # max_steps does not vary
    fb = m[m["hyperparameter"] == "forget_bias"]
    assert fb["point"].tolist() == ["1", "3", "chrono"] and fb["configurations"].tolist() == [16, 16, 16]
    ok = m[np.isfinite(m["low"])]
    assert (ok["low"] <= ok["median"]).all() and (ok["median"] <= ok["high"]).all()
    s = strongest_effects(m)
    assert len(s) == 1 and s.loc[0, "hyperparameter"] == "learning_rate" and bool(s.loc[0, "separated"])
    assert s.loc[0, "effect"] == pytest.approx(s.loc[0, "worst_median"] - s.loc[0, "best_median"])


def test_marginal_medians_match_the_configurations():
    c = _configs()
    m = marginal_effects(c).set_index(["hyperparameter", "point"])
    expected = float(np.median(c.loc[c["hp.hidden_size"] == 32, "test_metric"]))
    assert m.loc[("hidden_size", "32"), "median"] == pytest.approx(expected, rel=0, abs=1e-15)
    low, high = stats.quantile_test(c.loc[c["hp.hidden_size"] == 32, "test_metric"].to_numpy(), q=expected) \
        .confidence_interval(0.95)  # fmt: skip
    assert (m.loc[("hidden_size", "32"), "low"], m.loc[("hidden_size", "32"), "high"]) == (low, high)


def test_interaction_cells_partition_the_configurations():
    c = _configs()
    cells = interaction(c)
    assert cells["configurations"].sum() == len(c)
    assert cells["x_order"].nunique() == 4 and set(cells["y_point"]) == {"16", "32", "64"}
    assert interaction(c.assign(**{"hp.hidden_size": 32})).empty  # one hidden size: no interaction to draw


def test_nothing_to_show_is_empty():
    assert marginal_effects(pd.DataFrame()).empty and strongest_effects(marginal_effects(pd.DataFrame())).empty
    assert interaction(pd.DataFrame()).empty
