"""Running cells: which ones, in what order, where, and the one path their results take.

Lowest first: ``cells`` (which cells a sweep computes, in order, in batches), ``progress``
(the bar), ``pools`` (executors xsweep owns, dask clients), ``sink`` (the one write path of
computed cells, a sweep's options and report), ``parallel`` (batches on an executor),
``execution`` (the write session and the serial loop), ``jobs`` (background sweeps).
"""
