"""Basket counts of a large log, counted per partition and reduced, here or on a Dask cluster.

What is counted is :class:`~bundlerec.lift.BasketStatistics`: the number of baskets and the
Gram matrix of basket indicators, whose diagonal is each item's popularity (baskets holding it),
whose off-diagonal entries are the pair co-occurrence counts, and which holds every count the
co-purchase network's Chow-Liu tree and CPTs need (attribute columns included,
:meth:`~bundlerec.models.copurchase.CoPurchaseNetwork.fit_counts`). Statistics of disjoint
sets of whole baskets add up, so each partition is counted where it lies and the partial
counts are summed on the workers, each block of rows of the counts by its own tasks
(:func:`_reduce`). Through files, a worker holds one partition's events and pair counts (at most
the sum of its baskets' squared sizes) or one block of the reduced counts, never the whole
log's; only this process receives the whole reduced matrix, one entry per distinct pair of the
log (docs/scale.md).

Two entries:

- :func:`count_interactions`: encoded :class:`~bundlerec.prep.Interactions` cut into
  partitions at shopper boundaries (what ``bundlerec train --engine dask`` uses, so the counts
  are those of the training split the rest of the model sees);
- :func:`count_parquet`: a Parquet events dataset, one partition per file, read by the workers
  themselves; the partial counts are exchanged through files (``scratch``), so a worker's
  memory is set by the partition size, not by the log's. A shopper's events must all lie in
  one file (a dataset partitioned by shopper): baskets are found per shopper
  (:func:`bundlerec.prep.clean`), and a basket cut in two by the partitioning would count as
  two. Item codes come from one vocabulary for all files (given, or found by a first pass over
  the ``item_id`` column of each file).
"""

from __future__ import annotations

import operator
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bundlerec.lift import BasketStatistics
from bundlerec.prep import Encoder, Interactions
from bundlerec.progress import bar

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["count_interactions", "count_parquet", "item_vocabulary", "shopper_partitions"]


def shopper_partitions(train: Interactions, partitions: int) -> list[Interactions]:
    """``train`` cut into at most ``partitions`` row ranges of about equal size, each holding
    whole shoppers (so whole baskets); empty ranges are left out."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    n = len(train)
    cuts = np.linspace(0, n, partitions + 1).astype(np.int64)[1:-1]
    # Move each cut back to the first row of the shopper it falls in.
    cuts = np.searchsorted(train.user, train.user[np.minimum(cuts, max(n - 1, 0))], "left")
    bounds = np.unique(np.concatenate([[0], cuts, [n]]))
    return [
        replace(train, **{name: getattr(train, name)[a:b] for name in _COLUMNS})
        for a, b in zip(bounds[:-1], bounds[1:])
        if b > a
    ]


_COLUMNS = ("user", "item", "basket", "timestamp", "event")


def _count_blocks(
    part: Any, count: Callable[..., BasketStatistics], shared: dict, blocks: int
) -> tuple[tuple, list[sp.csr_matrix]]:
    """One partition's counts: ``((n_baskets, n_items, attributes), gram row blocks)``."""
    stats = count(part, **shared)
    edges = np.linspace(0, stats.gram.shape[0], blocks + 1).astype(np.int64)
    rows = [stats.gram[a:b] for a, b in zip(edges[:-1], edges[1:])]
    return (stats.n_baskets, stats.n_items, stats.attributes), rows


def _tree_sum(client: Client, futures: list, retries: int):
    """The sum of ``futures`` as pairwise additions on the workers (depth log2(n))."""
    while len(futures) > 1:
        pairs = zip(futures[0::2], futures[1::2])
        futures = [
            client.submit(operator.add, a, b, retries=retries, priority=1) for a, b in pairs
        ] + ([futures[-1]] if len(futures) % 2 else [])
    return futures[0]


def _reduce(
    client: Client | None,
    count: Callable[..., BasketStatistics],
    parts: Sequence[Any],
    shared: Mapping[str, Any],
    *,
    desc: str,
    verbose: bool,
    scratch: str | None = None,
    retries: int = 2,
) -> BasketStatistics:
    """``sum(count(part, **shared) for part in parts)``, here or on the workers.

    On a cluster each partition's Gram matrix is cut into ``len(parts)`` blocks of rows, and
    block ``r`` of every partition is summed by its own tasks; the blocks meet only in this
    process, which returns the whole matrix. Without ``scratch`` the blocks travel in memory and
    are summed pairwise as soon as two are in: the partial sums waiting on the workers together
    hold about as many entries as the reduced counts (the distinct pairs). With ``scratch`` (a
    directory every worker shares) a partition's blocks go to files there and each block is
    summed from its files once every partition is counted, so a worker holds one partition's
    counts or one block (about ``1 / len(parts)`` of the pairs), whatever the log's size.
    """
    progress = bar(desc=desc, enabled=verbose, total=len(parts), unit="partitions")
    with progress:
        if client is None:
            total = None
            for part in parts:
                stats = count(part, **shared)
                total = stats if total is None else total + stats
                progress.update(1)
            return total
        from distributed import as_completed

        shared = {
            name: client.scatter(value, broadcast=True, hash=False)
            for name, value in shared.items()
        }
        if scratch is not None:
            return _reduce_on_disk(client, count, parts, shared, scratch, progress, retries)
        blocks = len(parts)
        leaves = client.map(
            _count_blocks,
            parts,
            count=count,
            shared=shared,
            blocks=blocks,
            retries=retries,
            pure=False,
        )
        # The reduction (priority 1) runs before further partitions are counted (priority 0).
        heads = [client.submit(operator.itemgetter(0), leaf, priority=1) for leaf in leaves]
        sums = []
        for r in range(blocks):
            pieces = [client.submit(_block, leaf, r, priority=1) for leaf in leaves]
            sums.append(_tree_sum(client, pieces, retries))
        done = as_completed(leaves)
        del leaves, pieces  # let the workers drop what the reduction no longer needs
        try:
            for future in done:
                future.result()
                progress.update(1)
            heads = client.gather(heads)
            gram = sp.vstack(client.gather(sums), format="csr")
        except BaseException:
            client.cancel(sums + heads)
            raise
    return _assemble(heads, gram)


def _assemble(heads: list[tuple], gram: sp.csr_matrix) -> BasketStatistics:
    n_items, attributes = heads[0][1:]
    if any(h[1:] != (n_items, attributes) for h in heads):
        raise ValueError("partitions were counted with different items or attributes")
    return BasketStatistics(sum(h[0] for h in heads), gram, n_items, attributes)


def _block(counted: tuple, r: int) -> sp.csr_matrix:
    return counted[1][r]


def _count_to_files(
    part: Any, index: int, count: Callable, shared: dict, blocks: int, scratch: str
) -> tuple:
    """Count one partition and write its row blocks to ``scratch`` (``.npz``, no pickle)."""
    head, rows = _count_blocks(part, count, shared, blocks)
    for r, block in enumerate(rows):
        target = os.path.join(scratch, f"block-{r:05d}-part-{index:05d}.npz")
        tmp = f"{target}.{os.getpid()}.tmp.npz"
        sp.save_npz(tmp, block)
        os.replace(tmp, target)  # a rerun of the partition replaces its files whole
    return head


def _sum_files(scratch: str, r: int, n_parts: int, _after: list) -> sp.csr_matrix:
    """Block ``r`` of the reduced counts, read file by file (``_after``: the partitions)."""
    total = None
    for index in range(n_parts):
        block = sp.load_npz(os.path.join(scratch, f"block-{r:05d}-part-{index:05d}.npz"))
        total = block if total is None else total + block
    return total


def _reduce_on_disk(client, count, parts, shared, scratch, progress, retries) -> BasketStatistics:
    """:func:`_reduce` through files under a fresh directory in ``scratch``."""
    from distributed import as_completed

    work = tempfile.mkdtemp(prefix="bundlerec-counts-", dir=scratch)
    try:
        blocks = len(parts)
        leaves = client.map(
            _count_to_files,
            parts,
            range(blocks),
            count=count,
            shared=shared,
            blocks=blocks,
            scratch=work,
            retries=retries,
            pure=False,
        )
        for future in as_completed(leaves):
            future.result()
            progress.update(1)
        heads = client.gather(leaves)
        sums = client.map(
            _sum_files, [work] * blocks, range(blocks), n_parts=blocks, _after=leaves,
            retries=retries, pure=False,
        )  # fmt: skip
        del leaves
        rows = [None] * blocks
        for future in as_completed(sums):
            rows[sums.index(future)] = future.result()
            future.release()  # the worker drops the block once it is here
        return _assemble(heads, sp.vstack(rows, format="csr"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count_interactions(
    train: Interactions,
    user_features: Mapping[str, np.ndarray] | None = None,
    *,
    client: Client | None = None,
    partitions: int | None = None,
    verbose: bool = False,
) -> BasketStatistics:
    """Basket statistics of ``train``, counted in partitions of whole shoppers.

    Equal to ``BasketStatistics.from_interactions(train, user_features)`` (exact integer
    counts). ``partitions`` defaults to twice the cluster's workers (4 without a cluster).
    """
    if partitions is None:
        partitions = 2 * len(client.scheduler_info()["workers"]) if client else 4
    if len(train) == 0:
        return BasketStatistics.from_interactions(train, user_features)
    parts = shopper_partitions(train, partitions)
    return _reduce(
        client,
        BasketStatistics.from_interactions,
        parts,
        {"user_features": dict(user_features or {})},
        desc="counting baskets",
        verbose=verbose,
    )


def _file_items(path: str) -> np.ndarray:
    """The distinct item ids of one Parquet file, as text."""
    ids = pd.read_parquet(path, columns=["item_id"])["item_id"]
    return pd.unique(ids.astype(str).to_numpy())


def item_vocabulary(paths: Sequence[str], client: Client | None = None) -> Encoder:
    """An item encoder fitted on the ids of every file (read one column per file)."""
    if client is None:
        found = [_file_items(p) for p in paths]
    else:
        found = client.gather(client.map(_file_items, list(paths)))
    return Encoder().fit(pd.unique(np.concatenate(found)) if found else [])


def _count_file(path: str, items: Encoder, window: int) -> BasketStatistics:
    """Basket statistics of one file of shoppers' events (item codes from ``items``)."""
    from bundlerec.data import load_events
    from bundlerec.prep import clean, to_interactions

    events = clean(load_events(path), window=window)
    users = Encoder().fit(events["user_id"])
    return BasketStatistics.from_interactions(to_interactions(events, users, items, window=window))


def count_parquet(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    items: Encoder | None = None,
    client: Client | None = None,
    window: int = 1800,
    scratch: str | os.PathLike | None = None,
    verbose: bool = False,
) -> tuple[BasketStatistics, Encoder]:
    """Basket statistics of a Parquet events dataset, one partition per file.

    Parameters
    ----------
    paths : path or sequence of paths
        A directory (its ``*.parquet`` files, sorted) or the files; each file holds whole
        shoppers (module docstring) in the events schema of docs/data.md.
    items : Encoder, optional
        Item vocabulary (e.g. a model's ``items``); events of other items are dropped. Default:
        every item of the dataset (:func:`item_vocabulary`).
    client : distributed.Client, optional
        Count on this cluster; None counts here, file after file.
    window : int
        Seconds between a shopper's events that still belong to one basket (no ``basket_id``).
    scratch : path, optional
        Where the workers exchange the partial counts (a temporary directory is made there
        and removed): a directory every worker shares, like the dataset. Default: this
        machine's temporary directory, which suits an embedded cluster.
    verbose : bool
        A progress bar of the files on stderr.

    Returns
    -------
    stats : BasketStatistics
        Items only (no attribute columns).
    items : Encoder
        The vocabulary of the item codes.
    """
    if isinstance(paths, (str, os.PathLike)):
        root = os.fspath(paths)
        paths = (
            sorted(
                os.path.join(root, name) for name in os.listdir(root) if name.endswith(".parquet")
            )
            if os.path.isdir(root)
            else [root]
        )
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("no Parquet files to count")
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(2, "No such file", path)
    if items is None:
        items = item_vocabulary(paths, client)
    stats = _reduce(
        client,
        _count_file,
        paths,
        {"items": items, "window": window},
        desc="counting baskets",
        verbose=verbose,
        scratch=os.fspath(scratch) if scratch is not None else tempfile.gettempdir(),
    )
    return stats, items
