"""The worker process (one framework per process) and the ``Job`` protocol it runs. A worker knows no
concrete job: each job lives beside the code it runs (training, diagnostics).
"""
