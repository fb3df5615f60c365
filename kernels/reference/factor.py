"""Factor-table kernels of variable elimination (plain numpy; the specification).

Tables are float64 arrays with one axis per variable, optionally behind a leading case axis
``N`` (one row per evidence case). ``spec`` is an ``numpy.einsum`` subscript string.

No Numba twin: ``numpy.einsum`` (a C loop over the union of the operands' axes, which is exactly
the cost of an elimination step) and ``numpy.take`` already run these without Python overhead
per entry, and a generic Numba contraction would need one compiled signature per operand count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["factor_gather", "factor_max_product", "factor_sum_product"]


def factor_sum_product(spec: str, *tables: np.ndarray, path: list | bool = False) -> np.ndarray:
    """Multiply ``tables`` and sum out the axes absent from the output of ``spec``.

    Parameters
    ----------
    spec : str
        Einsum subscripts, e.g. ``"Zab,bc->Zac"`` (sums out ``b``).
    *tables : ndarray of float64
    path : list or False
        A contraction path from ``numpy.einsum_path`` (pairwise, BLAS where it can), or
        ``False`` for one C loop over all axes (cheapest for small tables).

    Returns
    -------
    ndarray of float64
        Shape given by the output subscripts.
    """
    return np.einsum(spec, *tables, optimize=path)


def factor_max_product(
    spec: str, *tables: np.ndarray, path: list | bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Multiply ``tables`` into the output of ``spec``, then max out its LAST axis.

    Parameters
    ----------
    spec : str
        Einsum subscripts whose output ends with the axis to maximise, e.g. ``"Zab,bc->Zacb"``.
    *tables : ndarray of float64
    path : list or False
        As in :func:`factor_sum_product`.

    Returns
    -------
    best : ndarray of float64
        The product maximised over the last axis (shape: output without its last axis).
    argbest : ndarray of int64
        Index of the first maximum along that axis (same shape), for traceback.
    """
    full = np.einsum(spec, *tables, optimize=path)
    arg = full.argmax(axis=-1)
    return np.take_along_axis(full, arg[..., None], axis=-1)[..., 0], arg


def factor_gather(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Evidence reduction for a batch: pick ``table[rows[i]]`` for each case ``i``.

    Parameters
    ----------
    table : ndarray of float64, shape (R, ...)
        Evidence axes flattened into the leading axis ``R``.
    rows : ndarray of int64, shape (N,)
        Flat evidence configuration of each case.

    Returns
    -------
    ndarray of float64, shape (N, ...)
    """
    return np.take(table, rows, axis=0)
