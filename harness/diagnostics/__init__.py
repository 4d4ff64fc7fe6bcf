"""Is the code right and how fast is it: the ``check`` verb and the run's preflight, framework parity,
the gradient-flow probe and the step-cost benchmark, each with the job its worker runs.
"""
