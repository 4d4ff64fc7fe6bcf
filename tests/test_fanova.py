"""harness.analysis.fanova against the reference it replaces: Optuna's FanovaImportanceEvaluator on the same
configurations and seed grows the same forest, so the main effects must agree to rounding."""

import numpy as np
import pytest

from harness.analysis.fanova import encode, main_effects

optuna = pytest.importorskip("optuna")
pytest.importorskip("sklearn")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.importance import FanovaImportanceEvaluator, get_param_importances  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _configurations(n: int, seed: int) -> tuple[dict[str, tuple[list, bool]], np.ndarray]:
    """A float over two decades, an integer, a three-way category and a constant; y depends on the first three."""
    rng = np.random.default_rng(seed)
    lr = list(10 ** rng.uniform(-4, -2, n))
    hidden = [int(h) for h in rng.choice([8, 16, 32, 64], n)]
    cell = [str(c) for c in rng.choice(["gru", "lstm", "rnn"], n)]
    y = np.log10(lr) + 0.02 * np.array(hidden) + np.array([{"gru": 0.0, "lstm": 0.5, "rnn": 2.0}[c] for c in cell])
    y = y + 0.1 * rng.standard_normal(n)
    return {"hidden": (hidden, True), "lr": (lr, True), "cell": (cell, False), "fixed": ([1.0] * n, True)}, y


def _optuna(columns: dict[str, tuple[list, bool]], y: np.ndarray, idx: np.ndarray, trees: int) -> dict[str, float]:
    dists = {}
    for name, (values, numeric) in columns.items():
        if not numeric:
            dists[name] = CategoricalDistribution(sorted(set(values)))
        elif all(isinstance(v, int) for v in values):
            dists[name] = IntDistribution(min(values), max(values))
        else:
            dists[name] = FloatDistribution(min(values), max(values), log=True)
    made = [optuna.trial.create_trial(params={k: columns[k][0][i] for k in columns}, distributions=dists,
                                      value=float(y[i])) for i in range(len(y))]  # fmt: skip
    study = optuna.create_study()
    study.add_trials([made[i] for i in idx])
    return get_param_importances(study, evaluator=FanovaImportanceEvaluator(n_trees=trees, seed=0), normalize=False)


@pytest.mark.parametrize("trees", [8, 64])
@pytest.mark.parametrize("resample", [False, True])
def test_main_effects_are_optunas(trees, resample):
    columns, y = _configurations(120, seed=3)
    names = sorted(columns)
    X, bounds, groups = encode([columns[k] for k in names])
    idx = np.random.default_rng(5).integers(0, len(y), len(y)) if resample else np.arange(len(y))
    got = main_effects(X[idx], y[idx], bounds, groups, trees, seed=0)
    want = _optuna(columns, y, idx, trees)
    np.testing.assert_allclose(got, [want[k] for k in names], rtol=1e-9, atol=1e-12)
    assert got[names.index("fixed")] == 0.0
    assert got[names.index("cell")] > 0.5  # the largest effect in y, found as such


def test_encode_one_hot_and_bounds():
    X, bounds, groups = encode([([3, 1, 2], True), (["b", "a", "b"], False), (["z", "z", "z"], False)])
    np.testing.assert_array_equal(X, [[3, 0, 1], [1, 1, 0], [2, 0, 1]])
    np.testing.assert_array_equal(bounds, [[1, 3], [0, 1], [0, 1]])
    assert [g.tolist() for g in groups] == [[0], [1, 2], []]


def test_an_irrelevant_hyperparameter_explains_almost_nothing():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 200), rng.uniform(0, 1, 200)
    X, bounds, groups = encode([(list(a), True), (list(b), True)])
    got = main_effects(X, np.sin(6 * a), bounds, groups, trees=16, seed=0)
    assert got[0] > 0.9 and got[1] < 0.02


def test_a_category_cell_by_cell_and_a_large_offset_change_nothing(monkeypatch):
    """A category's cells taken one at a time (the bound on memory for many choices) give the same main
    effects; so do a tree's leaf values shifted by a million (a main effect is a variance: no offset may leak in)."""
    from sklearn.tree import DecisionTreeRegressor

    from harness.analysis import fanova

    columns, y = _configurations(120, seed=4)
    names = sorted(columns)
    X, bounds, groups = encode([columns[k] for k in names])
    whole = main_effects(X, y, bounds, groups, 16, seed=0)
    tree = fanova._Tree(DecisionTreeRegressor(random_state=0).fit(X, y).tree_, bounds)
    effects = [tree.main_effect(g) for g in groups if len(g)]
    tree.value = tree.value + 1e6
    np.testing.assert_allclose([tree.main_effect(g) for g in groups if len(g)], effects, rtol=1e-8)
    monkeypatch.setattr(fanova, "CELLS_TIMES_LEAVES", 1)
    np.testing.assert_allclose(main_effects(X, y, bounds, groups, 16, seed=0), whole, rtol=1e-12)
