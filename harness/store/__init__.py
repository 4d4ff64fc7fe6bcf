"""The SQLite store of trials and runs (``database``) and the metadata of the variants and tasks a run
used (``metadata``), so a store describes itself.
"""
