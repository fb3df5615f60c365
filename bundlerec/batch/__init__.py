"""Batch jobs past one process: scoring many shoppers and counting large logs, on Dask.

:mod:`bundlerec.batch.jobs` scores shoppers in partitions (top items, bundles, campaign
audiences) and writes partitioned Parquet; :mod:`bundlerec.batch.counting` counts baskets per
partition of a log and reduces the counts; :mod:`bundlerec.batch.cluster` connects to a Dask
cluster (an embedded ``LocalCluster`` or a scheduler's address). Both kinds of job also run in
this process without Dask (``client=None``), with the same results. See docs/scale.md.
"""
