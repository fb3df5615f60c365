"""Factor-table kernels of variable elimination (plain numpy; the specification).

Tables are float64 arrays with one axis per variable, optionally followed by a trailing case
axis ``N`` (one entry per evidence case; last, so that einsum's inner loop runs along the cases).
``spec`` is an ``numpy.einsum`` subscript string.

No Numba twin: ``numpy.einsum`` (a C loop over the union of the operands' axes, which is exactly
the cost of an elimination step), ``numpy.matmul`` (BLAS) and ``numpy.take`` already run these
without Python overhead per entry, and a generic Numba contraction would need one compiled
signature per operand count.
"""

from __future__ import annotations

import numpy as np

try:  # numpy's C einsum without the Python wrapper (no path search): ~0.5 us less per call
    from numpy._core.multiarray import c_einsum as _c_einsum
except ImportError:  # pragma: no cover - other numpy layouts
    _c_einsum = np.einsum

__all__ = ["factor_contract", "factor_gather", "factor_max_product", "factor_sum_product"]


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
    if blas:
        return np.einsum(spec, *tables, optimize="greedy")
    return _c_einsum(spec, *tables)


def factor_contract(
    a: np.ndarray,
    b: np.ndarray,
    layout: tuple[tuple[int, ...], ...],
) -> np.ndarray:
    """Contract two tables by one (batched) matrix product, with every axis move planned.

    With ``layout = (sum_a, perm_a, shape_a, sum_b, perm_b, shape_b, shape_out, perm_out)``:
    sum the axes ``sum_a`` out of ``a`` (variables only it has and the result lacks), move the
    rest to ``perm_a`` and reshape to ``shape_a`` = ``(P, M, K)`` (or ``(M, K)`` when there is
    no batch axis); the same for ``b`` with ``(P, K, N)``; then

        out[p, m, n] = sum_k a[p, m, k] * b[p, k, n]

    is reshaped to ``shape_out`` (batch, ``a``'s kept, ``b``'s kept axes) and its axes
    permuted by ``perm_out`` (a view). At most one entry of a shape may be ``-1``.

    Parameters
    ----------
    a, b : ndarray of float64
    layout : tuple of tuples of int
        As above, computed once when the step is planned.

    Returns
    -------
    ndarray of float64
        Shape ``shape_out`` permuted by ``perm_out`` (not necessarily contiguous).
    """
    sum_a, perm_a, shape_a, sum_b, perm_b, shape_b, shape_out, perm_out = layout
    if sum_a:
        a = a.sum(axis=sum_a)
    if sum_b:
        b = b.sum(axis=sum_b)
    out = np.matmul(a.transpose(perm_a).reshape(shape_a), b.transpose(perm_b).reshape(shape_b))
    return out.reshape(shape_out).transpose(perm_out)


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
