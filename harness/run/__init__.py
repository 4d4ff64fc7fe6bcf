"""One ``rnn-bench run``: the runner (preflight, plan, execute), the recorder that stores each finished
trial, scheduling into populations, time estimates and the environment a run records.
"""
