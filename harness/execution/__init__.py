"""Where trials run: the local pool of worker processes (``local``), a Dask cluster
(``dask_cluster``), and the placement of workers on devices (``placement``).
"""
