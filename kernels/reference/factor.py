"""Factor-table kernels of variable elimination (plain numpy; the specification).

Tables are float64 arrays with one axis per variable, optionally followed by a trailing case
axis ``N`` (one entry per evidence case; last, so that einsum's inner loop runs along the cases).
``spec`` is an ``numpy.einsum`` subscript string.

No Numba twin: ``numpy.einsum`` (a C loop over the union of the operands' axes, which is exactly
the cost of an elimination step) and ``numpy.take`` already run these without Python overhead
per entry, and a generic Numba contraction would need one compiled signature per operand count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["factor_gather", "factor_max_product", "factor_sum_product"]


def factor_sum_product(spec: str, *tables: np.ndarray, blas: bool = False) -> np.ndarray:
    """Multiply ``tables`` and sum out the axes absent from the output of ``spec``.

    Parameters
    ----------
    spec : str
        Einsum subscripts, e.g. ``"abZ,bc->acZ"`` (sums out ``b``).
    *tables : ndarray of float64
    blas : bool
        Let numpy plan the contraction (a matrix product through BLAS where the axes allow):
        worth its ~20 us of planning only for large pairwise steps. Otherwise one C loop over
        the union of the axes.

    Returns
    -------
    ndarray of float64
        Shape given by the output subscripts.
    """
    return np.einsum(spec, *tables, optimize="greedy" if blas else False)


def factor_max_product(spec: str, *tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multiply ``tables`` into the output of ``spec``, then max out its FIRST axis.

    Parameters
    ----------
    spec : str
        Einsum subscripts whose output starts with the axis to maximise, e.g.
        ``"abZ,bc->bacZ"``.
    *tables : ndarray of float64

    Returns
    -------
    best : ndarray of float64
        The product maximised over the first axis (shape: output without its first axis).
    argbest : ndarray of int64
        Index of the first maximum along that axis (same shape), for traceback.
    """
    full = np.einsum(spec, *tables)
    arg = full.argmax(axis=0)
    return np.take_along_axis(full, arg[None], axis=0)[0], arg


def factor_gather(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Evidence reduction for a batch: pick ``table[..., rows[i]]`` for each case ``i``.

    Parameters
    ----------
    table : ndarray of float64, shape (..., R)
        Evidence axes flattened into the trailing axis ``R``.
    rows : ndarray of int64, shape (N,)
        Flat evidence configuration of each case (negative counts from the end).

    Returns
    -------
    ndarray of float64, shape (..., N)
    """
    return np.take(table, rows, axis=-1)
