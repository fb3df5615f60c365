"""Small pieces shared by the planning kernels.

``popcount``: the number of set bits of a ``uint64`` in a Numba kernel (LLVM ``ctpop``). Its
partner, ``trailing_zeros`` (LLVM ``cttz``), comes from ``numba.cpython.unsafe.numbers``.

``allocating_helper``: the decorator of a function called only from compiled code. Such a
function needs no Python or C wrapper (never called from Python) and no cache entry of its
own (its callers' entries hold its code); each wrapper and cache entry is compiled and written
on a first run, so leaving them out shortens it (see :mod:`kernels.cpu.steps`). ``helper``:
the same for a function that allocates nothing, also without reference counting (binding each
array argument would cost two atomic operations per call).
"""

from __future__ import annotations

from numba import njit, types
from numba.extending import intrinsic

allocating_helper = njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)
helper = njit(_nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)


@intrinsic
def popcount(typingctx, bits):
    """The number of set bits of a ``uint64``, as an int64."""

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(types.uint64), codegen
