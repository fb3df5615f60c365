"""Row-sparse gradients: only the touched rows of a (V, D) table.

An embedding of a 1M x 64 table trained on a batch of ids produces a gradient with a few
thousand rows; :class:`RowSparse` keeps those rows and their indices so no dense (V, D) array is
ever built. Optimizers update just those rows (lazily).
"""

from __future__ import annotations

from typing import Any

import kernels


class RowSparse:
    """Gradient of a 2-D parameter with non-zero rows only at ``indices``.

    Parameters
    ----------
    indices : ndarray, shape (N,), int64
        Row indices, unique and sorted after :meth:`coalesce`; may repeat before.
    values : ndarray, shape (N, D)
        The rows, in the parameter's dtype.
    shape : tuple of int
        The dense shape (V, D).
    """

    __slots__ = ("indices", "values", "shape")
    __array_ufunc__ = None  # ``dense + RowSparse`` defers to __radd__ instead of broadcasting

    def __init__(self, indices: Any, values: Any, shape: tuple[int, ...]):
        self.indices = indices
        self.values = values
        self.shape = tuple(shape)

    @property
    def dtype(self):
        return self.values.dtype

    def coalesce(self) -> RowSparse:
        """Sum repeated rows (deterministically) and sort the indices."""
        uniq, summed = kernels.get("scatter_rows_sum", self.values)(self.indices, self.values)
        return RowSparse(uniq, summed, self.shape)

    def to_dense(self) -> Any:
        """The dense (V, D) array (for tests and small tables)."""
        xp = kernels.array_module(self.values)
        out = xp.zeros(self.shape, dtype=self.values.dtype)
        c = self.coalesce()
        out[c.indices] = c.values
        return out

    def __add__(self, other: Any) -> Any:
        if isinstance(other, RowSparse):
            xp = kernels.array_module(self.values)
            return RowSparse(
                xp.concatenate([self.indices, other.indices]),
                xp.concatenate([self.values, other.values]),
                self.shape,
            )
        return other + self

    def __radd__(self, other: Any) -> Any:
        dense = other.copy()
        c = self.coalesce()
        dense[c.indices] += c.values
        return dense

    def __repr__(self) -> str:
        return f"RowSparse(rows={len(self.indices)}, shape={self.shape}, dtype={self.dtype})"
