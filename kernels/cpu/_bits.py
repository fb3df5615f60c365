"""``popcount``: the number of set bits of a ``uint64`` in a Numba kernel (LLVM ``ctpop``).
Its partner, ``trailing_zeros`` (LLVM ``cttz``), comes from
``numba.cpython.unsafe.numbers``."""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic


@intrinsic
def popcount(typingctx, bits):
    """The number of set bits of a ``uint64``, as an int64."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(types.uint64), codegen
