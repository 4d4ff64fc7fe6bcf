"""Training trials: the protocol's bookkeeping and one trial alone (``solo``), many configurations as one
population (``population``), which planned trials may train together (``grouping``, driver side), and
the job that trains a batch of trials in a worker (``train_job``).
"""
