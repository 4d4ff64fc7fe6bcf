"""The ``rnn-bench`` command: one verb per user job (``main``), the ``speed`` verb (``speed``).
"""
