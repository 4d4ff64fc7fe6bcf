"""Training trials: one trial alone (``solo``), many configurations as one population
(``population``), and the job that trains a batch of trials in a worker (``train_job``).
"""
