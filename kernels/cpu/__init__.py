"""Numba CPU kernels, one module per family; names match :mod:`kernels.reference`.

Each module lists its kernels in ``__all__`` and they are re-exported here.
"""

from kernels._collect import collect as _collect

globals().update(_collect(__name__, __path__))
