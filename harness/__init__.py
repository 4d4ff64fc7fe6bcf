"""rnn-bench's harness: everything between a variant file and a report.

The packages are layers; a module imports only from its own package or a layer below, never from a
package on its own line (pyproject.toml's import-linter contracts, run by ``make lint`` and the tests).
Top to bottom:

    cli, api        the verbs and the Python API
    report          the report and the export, read from a store
    run, analysis   a run (plan, schedule, record) | the statistics of stored trials
    execution, diagnostics, store
                    where trials run (local pool, Dask) | check, parity, probes, speed | the SQLite store
    training        solo and population training, the training job a worker runs
    suites          the suite files, their schema, search spaces and analysis plans
    workers         the worker process and the Job protocol it runs
    plugins         the registry of variants and tasks, their fingerprints, the catalogue, the scaffold
    backends        PyTorch and TensorFlow (the only place a framework is imported)
    cell            a cell's contract, its unroll, stacking, fused kernels, the model around it
    trials          what a trial is: the protocol's settings, its identity, its result

The plugin API that variant and task files import stays at the top of the package: ``variant``,
``task``, ``ops``, ``lstm_cell``, ``initializers``, ``errors``; beside it two text helpers,
``error_text`` and ``text_table``. Moving those files would change every stored trial's code
fingerprint.
"""
