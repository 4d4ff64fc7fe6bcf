"""fANOVA main effects (Hutter, Hoos & Leyton-Brown 2014) of a random forest, computed for a whole forest
at once with array operations.

The numbers are Optuna's ``FanovaImportanceEvaluator``'s (unnormalised, ``normalize=False``), and
tests/test_fanova.py holds them to Optuna's to 1e-9 on the same configurations and seed. Written by hand
because Optuna walks each tree once per grid point in Python: about 3 s for one 64-tree forest on 360
configurations, and a report refits a forest for each of its bootstrap resamples (the ``greff`` report fits
510 forests: three minutes where this takes seconds). No other library computes a fitted forest's main
effects.

**The forest.** scikit-learn's ``RandomForestRegressor(n_trees, max_depth=64, min_samples_split=2,
min_samples_leaf=1, random_state=seed)``, Optuna's settings, fitted to the encoded configurations
(``encode``): a number is one column with bounds [min, max] (no log transform), a category one column per
choice (one-hot, bounds [0, 1]), the hyperparameters in the order of their names.

**One tree.** Its leaves ℓ split the bounds' box into boxes B_ℓ with values v_ℓ. With volumes |B| as
weights, the tree's variance is

    V = Σ_ℓ |B_ℓ| (v_ℓ − v̄)² / Σ_ℓ |B_ℓ|,          v̄ = Σ_ℓ |B_ℓ| v_ℓ / Σ_ℓ |B_ℓ|.

A hyperparameter's columns R are cut into cells by the tree's split values on them; at each cell's midpoint
x the marginal prediction averages the leaves whose box contains x along R, weighted by their volume along
the other columns:

    m(x) = Σ_{ℓ: x ∈ B_ℓ|R} |B_ℓ|_{¬R} v_ℓ / Σ_{ℓ: x ∈ B_ℓ|R} |B_ℓ|_{¬R},

and the main effect V_R is the variance of m over the cells, each weighted by its volume along R times
that denominator (Optuna's weights; the denominator is the same for every cell, the slices of a partition).

**The importance** of R is the mean over the trees with V > 0 of max(V_R, 0) / V; 0 where no tree has
variance (Optuna raises there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_DEPTH = 64  # Optuna's FanovaImportanceEvaluator defaults
MIN_SAMPLES_SPLIT = 2
MIN_SAMPLES_LEAF = 1
CELLS_TIMES_LEAVES = 1 << 22  # the largest (cells x leaves) array a category's main effect builds at once


def encode(columns: list[tuple[list[Any], bool]]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The configurations as the forest sees them. ``columns``: per hyperparameter, its values (one per
    configuration) and whether they are numbers. Returns (X, bounds, groups): X of shape (configurations,
    encoded columns), bounds of shape (encoded columns, 2), and per hyperparameter, in the order given,
    the indices of its encoded columns (none for a hyperparameter with a single value). Numbers keep their
    value within [min, max]; categories become one column per choice (sorted), 1 where the configuration
    has it, within [0, 1]. Encoded columns follow the given order; callers pass the hyperparameters sorted
    by name to reproduce Optuna's forest."""
    blocks, bounds, groups, start = [np.zeros((len(columns[0][0]) if columns else 0, 0))], [], [], 0
    for values, numeric in columns:
        if len(set(values)) < 2:  # a single value explains nothing; Optuna leaves it out of the forest
            groups.append(np.arange(0))
            continue
        if numeric:
            x = np.asarray(values, dtype=float)[:, None]
            bounds.append([[x.min(), x.max()]])
        else:
            choices = sorted(set(values))
            x = (np.asarray(values, dtype=object)[:, None] == np.asarray(choices, dtype=object)[None, :]).astype(float)
            bounds.append([[0.0, 1.0]] * len(choices))
        blocks.append(x)
        groups.append(np.arange(start, start + x.shape[1]))
        start += x.shape[1]
    return np.hstack(blocks), np.asarray([b for bs in bounds for b in bs], dtype=float).reshape(-1, 2), groups


def main_effects(X: np.ndarray, y: np.ndarray, bounds: np.ndarray, groups: list[np.ndarray], trees: int,
                 seed: int) -> np.ndarray:  # fmt: skip
    """The fANOVA importance of each group of encoded columns (a hyperparameter), as the module says: a
    forest of ``trees`` trees seeded with ``seed`` fitted to (X, y), then per group the mean over trees of
    its main effect's share of the tree's variance. A group without columns scores 0."""
    from sklearn.ensemble import RandomForestRegressor

    out = np.zeros(len(groups))
    if not X.shape[1] or len(y) < 2:
        return out
    forest = RandomForestRegressor(n_estimators=trees, max_depth=MAX_DEPTH, min_samples_split=MIN_SAMPLES_SPLIT,
                                   min_samples_leaf=MIN_SAMPLES_LEAF, random_state=seed)  # fmt: skip
    forest.fit(X, y)
    fitted = {i: g for i, g in enumerate(groups) if len(g)}
    shares = {i: [] for i in fitted}
    for estimator in forest.estimators_:
        tree = _Tree(estimator.tree_, bounds)
        if tree.variance <= 0:
            continue
        for i, cols in fitted.items():
            shares[i].append(max(tree.main_effect(cols), 0.0) / tree.variance)
    for i, s in shares.items():
        out[i] = float(np.mean(s)) if s else 0.0
    return out


class _Tree:
    """One fitted tree as leaf boxes: ``lo``, ``hi`` (leaves × columns), ``value`` and ``volume`` per leaf,
    and ``splits[c]``, the tree's sorted split values on column c."""

    def __init__(self, tree: Any, bounds: np.ndarray) -> None:
        left, right = tree.children_left, tree.children_right
        feature, threshold = tree.feature, tree.threshold
        lo = np.empty((tree.node_count, len(bounds)))
        hi = np.empty_like(lo)
        lo[0], hi[0] = bounds[:, 0], bounds[:, 1]
        level = np.array([0])
        while level.size:  # level by level from the root: a child's box is its parent's, cut at the split
            parents = level[feature[level] >= 0]
            f, t = feature[parents], threshold[parents]
            lc, rc = left[parents], right[parents]
            lo[lc], hi[lc] = lo[parents], hi[parents]
            lo[rc], hi[rc] = lo[parents], hi[parents]
            hi[lc, f] = t  # x <= threshold goes left
            lo[rc, f] = t
            level = np.concatenate([lc, rc])
        leaves = feature < 0
        self.lo, self.hi = lo[leaves], hi[leaves]
        self.value = np.asarray(tree.value)[leaves, 0, 0].astype(float)
        self.volume = np.prod(self.hi - self.lo, axis=1)
        self.variance = _weighted_variance(self.value, self.volume)
        inner = ~leaves
        self.splits = [np.unique(threshold[inner & (feature == c)]) for c in range(len(bounds))]
        self.bounds = bounds

    def main_effect(self, cols: np.ndarray) -> float:
        """V_R of the columns ``cols``: the variance of the marginal prediction over the cells that the
        tree's split values cut along them. Several columns are a category's one-hot columns, valued 0 or
        1, which a tree can split only once each (at 0.5)."""
        if len(cols) == 1:
            return self._main_effect_of_one(int(cols[0]))
        if any(len(self.splits[c]) > 1 for c in cols):
            raise ValueError(f"columns {list(cols)} are not one-hot: a tree splits one of them twice")
        return self._main_effect_of_halves(cols)

    def _main_effect_of_one(self, c: int) -> float:
        """``main_effect`` of one column (a number), in time linear in the leaves: a leaf's box spans a run of
        consecutive cells, from the edge at its lower bound to the edge at its upper bound (its bounds are
        edges), so the sums over the leaves that contain each cell are running sums of differences."""
        edges = np.concatenate([[self.bounds[c, 0]], self.splits[c], [self.bounds[c, 1]]])
        first, last = np.searchsorted(edges, self.lo[:, c]), np.searchsorted(edges, self.hi[:, c])
        other = np.ones(self.lo.shape[1], dtype=bool)
        other[c] = False
        weight = np.prod(self.hi[:, other] - self.lo[:, other], axis=1)
        n = len(edges)
        total = np.cumsum(np.bincount(first, weight, n) - np.bincount(last, weight, n))[:-1]
        # centred, so the running sums do not cancel a large common offset (the variance ignores it)
        weighted = weight * (self.value - np.average(self.value, weights=self.volume))
        marginal = np.cumsum(np.bincount(first, weighted, n) - np.bincount(last, weighted, n))[:-1] / total
        return _weighted_variance(marginal, total * np.diff(edges))

    def _main_effect_of_halves(self, cols: np.ndarray) -> float:
        """``main_effect`` of columns that the tree splits once at most (a category's one-hot columns): each
        cell is a choice of lower or upper half in each split column, numbered by the bits of an integer,
        and a leaf contains a cell where the bits it fixes (the columns its box halves) are those it keeps."""
        split = [int(c) for c in cols if len(self.splits[c])]
        lows = np.array([self.splits[c][0] - self.bounds[c, 0] for c in split])
        highs = np.array([self.bounds[c, 1] - self.splits[c][0] for c in split])
        bits = 1 << np.arange(len(split))
        fixed = np.zeros(len(self.value), dtype=np.int64)  # per leaf: the columns its box halves ...
        upper = np.zeros(len(self.value), dtype=np.int64)  # ... and where it keeps the upper half
        for bit, c in zip(bits, split):
            lower_only, upper_only = self.hi[:, c] <= self.splits[c][0], self.lo[:, c] >= self.splits[c][0]
            fixed |= np.where(lower_only | upper_only, bit, 0)
            upper |= np.where(upper_only, bit, 0)
        other = np.ones(self.lo.shape[1], dtype=bool)
        other[cols] = False
        weight = np.prod(self.hi[:, other] - self.lo[:, other], axis=1)
        cells = np.arange(1 << len(split))
        total, marginal = np.empty(len(cells)), np.empty(len(cells))
        step = max(1, CELLS_TIMES_LEAVES // len(self.value))  # cells at a time: a category of many choices
        for start in range(0, len(cells), step):  # has 2^choices cells (as in Optuna), bounded memory here
            part = cells[start : start + step]
            weights = ((part[:, None] & fixed[None, :]) == upper[None, :]) * weight[None, :]
            total[start : start + step] = weights.sum(axis=1)
            marginal[start : start + step] = weights @ self.value / total[start : start + step]
        is_upper = (cells[:, None] & bits[None, :]) != 0
        size = np.prod(np.where(is_upper, highs, lows), axis=1) * np.prod(
            [self.bounds[c, 1] - self.bounds[c, 0] for c in cols if not len(self.splits[c])])
        return _weighted_variance(marginal, total * size)


def _weighted_variance(values: np.ndarray, weights: np.ndarray) -> float:
    """Σ w (v − v̄)² / Σ w, with v̄ the weighted mean."""
    mean = np.average(values, weights=weights)
    return float(np.average((values - mean) ** 2, weights=weights))
