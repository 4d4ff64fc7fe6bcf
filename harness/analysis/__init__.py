"""The statistics of stored trials: the study tables (``study``), paired and unpaired comparisons with a
baseline (``comparisons``), the tests (``statistics``), power, replicates, hyperparameter importance,
marginals, verdicts, framework equivalence and the simulated studies that measure error rates.
"""
