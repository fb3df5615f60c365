"""Plain-numpy reference of every hot loop: the specification every fast backend must match.

One module per family; each lists its kernels in ``__all__`` and they are re-exported here.
"""

from kernels._collect import collect as _collect

globals().update(_collect(__name__, __path__))
