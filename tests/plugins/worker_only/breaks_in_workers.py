"""A plugin that imports in the runner (and its preflight) but fails to import in a benchmark worker,
for tests/test_population_runs.py: the worker must store each trial's failure with the real reason."""

import multiprocessing

from variants.rnn import SimpleRNN

if multiprocessing.current_process().name in ("rnn-bench-torch", "rnn-bench-tf"):  # not the preflight's worker
    raise ImportError("this plugin refuses to load in a benchmark worker")


class BreaksInWorkers(SimpleRNN):
    id = "breaks_in_workers"
    name = "imports everywhere but in a worker"
    reference = "tests/plugins"
    fused_kernel = None
