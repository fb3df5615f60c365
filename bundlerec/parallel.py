"""Row blocks of a batch on several threads, for numpy work that releases the GIL."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

import corenn


def map_blocks(fn: Callable[[np.ndarray], Any], rows: np.ndarray, step: int) -> list[Any]:
    """``[fn(block) for block in blocks]``, ``rows`` split into blocks of ``step``, the blocks
    run on ``corenn.get_num_threads()`` threads when there are several.

    Meant for numpy work (sorts, comparisons, gathers, single-threaded BLAS products), which
    releases the GIL, so the threads run on separate cores. ``fn`` must only write the rows of
    its own block, and must not launch Numba parallel kernels (some of Numba's threading layers
    refuse launches from several threads at once).

    Parameters
    ----------
    fn : callable
        Called with each block, an int64 array of at most ``step`` row numbers.
    rows : ndarray of int64, shape (n,)
    step : int
        Rows per block, >= 1.

    Returns
    -------
    list
        ``fn``'s results in block order.
    """
    blocks = [rows[i : i + step] for i in range(0, rows.size, step)]
    threads = min(corenn.get_num_threads(), len(blocks))
    if threads <= 1:
        return [fn(b) for b in blocks]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, blocks))
