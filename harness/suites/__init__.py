"""The benchmark suites: the ``.toml`` files here, their schema and plan (``suite``), search spaces
(``search_space``) and each suite's analysis plan (``analysis_plan``).
"""
