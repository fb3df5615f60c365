"""Reference row sort: the ascending values of each row of a float matrix.

Letters: n rows, I entries per row.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sort_rows"]


def check_keys(keys) -> None:
    """Raise ValueError unless ``keys`` is a 2-D float32/float64 array (every twin checks so)."""
    if keys.ndim != 2 or keys.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"sort_rows takes a 2-D float32/float64 array, got {keys.dtype} {keys.shape}"
        )


def sort_rows(keys: np.ndarray) -> np.ndarray:
    """Each row of ``keys`` in ascending order (``np.sort(keys, axis=1)``).

    Parameters
    ----------
    keys : ndarray, shape (n, I), float32 or float64

    Returns
    -------
    ndarray, shape (n, I), the dtype of ``keys``
        Rows sorted ascending; NaN last; ``-0.0`` and ``0.0`` compare equal (either may come
        first among them).
    """
    keys = np.asarray(keys)
    check_keys(keys)
    return np.sort(keys, axis=1)
