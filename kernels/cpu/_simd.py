"""Explicit 16-lane float32 vectors for Numba kernels: a register-blocked matrix-product tile.

LLVM keeps the accumulators of a matrix-product tile in scalar registers when the tile is written
as plain loops (a register-blocked GEMM written that way ran at 8-11 GFLOP/s). Here a value of
type :data:`f32x16` is an LLVM ``<16 x float>``: a Numba local of that type lives in one vector
register (one zmm with AVX-512, two ymm without), and :func:`tile_fma` keeps a whole 6 x 64 tile
of a product in 24 of them.

The intrinsics read and write C-contiguous float32 arrays of any shape at a flat element index
(no bounds check: callers keep ``index + 16 <= size``). Call them from ``@njit`` code only.

Numba's on-disk cache (``cache=True``) checks only the source file of the cached function, so a
change here is not seen by kernels cached from other modules: delete their ``__pycache__``
entries after editing this file (as for :mod:`kernels.cpu._scalar`).
"""

from __future__ import annotations

import llvmlite.binding as llvm_binding
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 16
TILE_ROWS = 6
"""Rows of a :func:`tile_fma` tile: 6 rows x 4 vectors = 24 accumulators, plus 4 vectors of
the right operand and one broadcast, within AVX-512's 32 vector registers."""
TILE_COLS = 4 * LANES

_VEC = ir.VectorType(ir.FloatType(), LANES)


def has_avx512() -> bool:
    """Whether this CPU has AVX-512F, on which a 16-lane vector is one register."""
    return bool(llvm_binding.get_host_cpu_features().get("avx512f", False))


class F32x16(types.Type):
    """Numba type of a 16-lane float32 vector (an LLVM ``<16 x float>`` value)."""

    def __init__(self) -> None:
        super().__init__(name="f32x16")


f32x16 = F32x16()


@register_model(F32x16)
class _F32x16Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _check_array(arr, idx) -> bool:
    return (
        isinstance(arr, types.Array)
        and arr.dtype == types.float32
        and arr.layout == "C"
        and isinstance(idx, types.Integer)
    )


def _element(context, builder, arrty, arr, idx):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [idx])


@intrinsic
def vload(typingctx, arr, idx):
    """``arr.flat[idx : idx + 16]`` as a vector."""
    if not _check_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig.args[0], args[0], args[1])
        return builder.load(builder.bitcast(ptr, _VEC.as_pointer()), align=4)

    return f32x16(arr, idx), codegen


@intrinsic
def vstore(typingctx, arr, idx, vec):
    """``arr.flat[idx : idx + 16] = vec``."""
    if not _check_array(arr, idx) or vec != f32x16:
        return None

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig.args[0], args[0], args[1])
        builder.store(args[2], builder.bitcast(ptr, _VEC.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.none(arr, idx, vec), codegen


def _lanes_below(builder, count):
    """The mask of the lanes ``< count`` (``<16 x i1>``)."""
    lane = ir.Constant(ir.VectorType(ir.IntType(64), LANES), list(range(LANES)))
    splat = builder.insert_element(
        ir.Constant(ir.VectorType(ir.IntType(64), LANES), ir.Undefined),
        count,
        ir.Constant(ir.IntType(32), 0),
    )
    mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
    splat = builder.shuffle_vector(splat, ir.Constant(splat.type, ir.Undefined), mask)
    return builder.icmp_signed("<", lane, splat)


def _check_count(count) -> bool:
    return isinstance(count, types.Integer) and count.bitwidth == 64


@intrinsic
def vload_first(typingctx, arr, idx, count):
    """``arr.flat[idx : idx + count]`` in the first ``count`` lanes (``count <= 16``), 0 in the
    others; elements past them are not read (``llvm.masked.load``)."""
    if not _check_array(arr, idx) or not _check_count(count):
        return None

    def codegen(context, builder, sig, args):
        ptr = builder.bitcast(
            _element(context, builder, sig.args[0], args[0], args[1]), _VEC.as_pointer()
        )
        fnty = ir.FunctionType(
            _VEC, [_VEC.as_pointer(), ir.IntType(32), ir.VectorType(ir.IntType(1), LANES), _VEC]
        )
        fn = cgutils.get_or_insert_function(
            builder.module, fnty, "llvm.masked.load.v16f32.p0v16f32"
        )
        mask = _lanes_below(builder, args[2])
        return builder.call(fn, [ptr, ir.Constant(ir.IntType(32), 4), mask, _splat(0.0)])

    return f32x16(arr, idx, count), codegen


@intrinsic
def vstore_first(typingctx, arr, idx, vec, count):
    """``arr.flat[idx : idx + count] = vec[:count]`` (``count <= 16``); elements past them are
    not touched (``llvm.masked.store``)."""
    if not _check_array(arr, idx) or vec != f32x16 or not _check_count(count):
        return None

    def codegen(context, builder, sig, args):
        ptr = builder.bitcast(
            _element(context, builder, sig.args[0], args[0], args[1]), _VEC.as_pointer()
        )
        fnty = ir.FunctionType(
            ir.VoidType(),
            [_VEC, _VEC.as_pointer(), ir.IntType(32), ir.VectorType(ir.IntType(1), LANES)],
        )
        fn = cgutils.get_or_insert_function(
            builder.module, fnty, "llvm.masked.store.v16f32.p0v16f32"
        )
        mask = _lanes_below(builder, args[3])
        builder.call(fn, [args[2], ptr, ir.Constant(ir.IntType(32), 4), mask])
        return context.get_dummy_value()

    return types.none(arr, idx, vec, count), codegen


@intrinsic
def vzero(typingctx):
    """A vector of 16 zeros."""

    def codegen(context, builder, sig, args):
        return _splat(0.0)

    return f32x16(), codegen


@intrinsic
def vstream(typingctx, arr, idx, vec):
    """``arr.flat[idx : idx + 16] = vec`` as a non-temporal store (straight to memory, without
    reading the line into cache first). The address must be 64-byte aligned; call
    :func:`store_fence` before other threads read what was streamed."""
    if not _check_array(arr, idx) or vec != f32x16:
        return None

    def codegen(context, builder, sig, args):
        ptr = _element(context, builder, sig.args[0], args[0], args[1])
        store = builder.store(args[2], builder.bitcast(ptr, _VEC.as_pointer()), align=64)
        flag = builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
        store.set_metadata("nontemporal", flag)
        return context.get_dummy_value()

    return types.none(arr, idx, vec), codegen


@intrinsic
def store_fence(typingctx):
    """A full memory fence (``fence seq_cst``: ``mfence`` on x86), which also orders the
    non-temporal stores of :func:`vstream` before any later access."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def vbroadcast(typingctx, arr, idx):
    """A vector whose 16 lanes are ``arr.flat[idx]``."""
    if not _check_array(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        value = builder.load(_element(context, builder, sig.args[0], args[0], args[1]))
        one = builder.insert_element(
            ir.Constant(_VEC, ir.Undefined), value, ir.Constant(ir.IntType(32), 0)
        )
        mask = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        return builder.shuffle_vector(one, ir.Constant(_VEC, ir.Undefined), mask)

    return f32x16(arr, idx), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, with one rounding (``llvm.fma``)."""
    if not (a == b == c == f32x16):
        return None

    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(_VEC, [_VEC, _VEC, _VEC])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.v16f32")
        return builder.call(fn, args)

    return f32x16(a, b, c), codegen


def _splat(value: float) -> ir.Constant:
    return ir.Constant(_VEC, [value] * LANES)


def _exp_ir(builder, x):
    """IR of ``exp(x)`` on each lane: the algorithm and constants of
    :func:`kernels.cpu._scalar._expf` (relative error <= 1.2e-7 on [-87, 88])."""
    fma_ty = ir.FunctionType(_VEC, [_VEC, _VEC, _VEC])
    fma = cgutils.get_or_insert_function(builder.module, fma_ty, "llvm.fma.v16f32")
    # Clamp to [-87, 88] by compare and select, which keeps NaN (llvm.minnum would not).
    for bound, op in ((-87.0, "<"), (88.0, ">")):
        x = builder.select(builder.fcmp_ordered(op, x, _splat(bound)), _splat(bound), x)
    magic = _splat(12582912.0)
    shifted = builder.call(fma, [x, _splat(1.4426950408889634), magic])
    k = builder.fsub(shifted, magic)
    r = builder.call(fma, [k, _splat(-0.693145751953125), x])
    r = builder.call(fma, [k, _splat(-1.428606765330187e-06), r])
    q = _splat(0.001381509704515338)
    for c in (0.008368716575205326, 0.041668377816677094, 0.1666652113199234, 0.4999999403953552):
        q = builder.call(fma, [q, r, _splat(c)])
    ints = ir.VectorType(ir.IntType(32), LANES)
    bits = builder.add(builder.bitcast(shifted, ints), ir.Constant(ints, [127] * LANES))
    scale = builder.bitcast(builder.shl(bits, ir.Constant(ints, [23] * LANES)), _VEC)
    poly = builder.call(fma, [builder.fmul(r, r), q, builder.fadd(r, _splat(1.0))])
    return builder.fmul(poly, scale)


def _logistic_ir(builder, x, slope: float):
    """IR of ``slope / (1 + exp(-slope x))`` on each lane."""
    e = _exp_ir(builder, builder.fmul(x, _splat(-slope)))
    return builder.fdiv(_splat(slope), builder.fadd(_splat(1.0), e))


@intrinsic
def vsigmoid(typingctx, x):
    """``1 / (1 + exp(-x))`` on each lane (as :func:`kernels.cpu._scalar._sigmoid`)."""
    if x != f32x16:
        return None

    def codegen(context, builder, sig, args):
        return _logistic_ir(builder, args[0], 1.0)

    return f32x16(x), codegen


@intrinsic
def vtanh(typingctx, x):
    """``2 / (1 + exp(-2 x)) - 1`` on each lane (as :func:`kernels.cpu._scalar._tanh`)."""
    if x != f32x16:
        return None

    def codegen(context, builder, sig, args):
        return builder.fsub(_logistic_ir(builder, args[0], 2.0), _splat(1.0))

    return f32x16(x), codegen


@intrinsic
def vmul(typingctx, a, b):
    """``a * b`` lane by lane."""
    if not (a == b == f32x16):
        return None

    def codegen(context, builder, sig, args):
        return builder.fmul(args[0], args[1])

    return f32x16(a, b), codegen


@njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)  # compiled code only; cached by callers
def tile_fma(a, o0, o1, o2, o3, o4, o5, depth, w, w_off, init, i_off, i_stride, tile):
    """A 6 x 64 product tile: for each row ``r`` and column ``j < 64``::

        tile[r, j] = init.flat[i_off + r i_stride + j]
                     + sum_{k < depth} a.flat[o_r + k] * w.flat[w_off + 64 k + j]

    Parameters
    ----------
    a : ndarray of float32, C-contiguous
        Left operand; row ``r`` of the tile reads ``depth`` consecutive entries from ``o_r``.
    o0, o1, o2, o3, o4, o5 : int
        Flat offsets of the six rows in ``a`` (they may repeat).
    depth : int
        K, the length of the sum.
    w : ndarray of float32, C-contiguous
        Right operand, packed: the 64 columns of row ``k`` at ``w_off + 64 k``.
    init : ndarray of float32, C-contiguous
        The initial values: a bias row (``i_stride = 0``) or a partial sum (``init`` the tile
        itself, ``i_off = 0``, ``i_stride = 64``).
    tile : ndarray of float32, shape (6, 64), C-contiguous
        Out: the tile.
    """
    # Written out by hand: 24 named locals are 24 registers, where an accumulator array indexed
    # in a loop would stay in memory. Per k: 4 vector loads of w, 6 broadcasts, 24 FMAs.
    q = i_off
    c00, c01, c02, c03 = (
        vload(init, q),
        vload(init, q + 16),
        vload(init, q + 32),
        vload(init, q + 48),
    )
    q = i_off + 1 * i_stride
    c10, c11, c12, c13 = (
        vload(init, q),
        vload(init, q + 16),
        vload(init, q + 32),
        vload(init, q + 48),
    )
    q = i_off + 2 * i_stride
    c20, c21, c22, c23 = (
        vload(init, q),
        vload(init, q + 16),
        vload(init, q + 32),
        vload(init, q + 48),
    )
    q = i_off + 3 * i_stride
    c30, c31, c32, c33 = (
        vload(init, q),
        vload(init, q + 16),
        vload(init, q + 32),
        vload(init, q + 48),
    )
    q = i_off + 4 * i_stride
    c40, c41, c42, c43 = (
        vload(init, q),
        vload(init, q + 16),
        vload(init, q + 32),
        vload(init, q + 48),
    )
    q = i_off + 5 * i_stride
    c50, c51, c52, c53 = (
        vload(init, q),
        vload(init, q + 16),
        vload(init, q + 32),
        vload(init, q + 48),
    )
    for k in range(depth):
        q = w_off + 64 * k
        b0, b1, b2, b3 = vload(w, q), vload(w, q + 16), vload(w, q + 32), vload(w, q + 48)
        v = vbroadcast(a, o0 + k)
        c00, c01, c02, c03 = vfma(v, b0, c00), vfma(v, b1, c01), vfma(v, b2, c02), vfma(v, b3, c03)
        v = vbroadcast(a, o1 + k)
        c10, c11, c12, c13 = vfma(v, b0, c10), vfma(v, b1, c11), vfma(v, b2, c12), vfma(v, b3, c13)
        v = vbroadcast(a, o2 + k)
        c20, c21, c22, c23 = vfma(v, b0, c20), vfma(v, b1, c21), vfma(v, b2, c22), vfma(v, b3, c23)
        v = vbroadcast(a, o3 + k)
        c30, c31, c32, c33 = vfma(v, b0, c30), vfma(v, b1, c31), vfma(v, b2, c32), vfma(v, b3, c33)
        v = vbroadcast(a, o4 + k)
        c40, c41, c42, c43 = vfma(v, b0, c40), vfma(v, b1, c41), vfma(v, b2, c42), vfma(v, b3, c43)
        v = vbroadcast(a, o5 + k)
        c50, c51, c52, c53 = vfma(v, b0, c50), vfma(v, b1, c51), vfma(v, b2, c52), vfma(v, b3, c53)
    vstore(tile, 0, c00), vstore(tile, 16, c01), vstore(tile, 32, c02), vstore(tile, 48, c03)
    vstore(tile, 64, c10), vstore(tile, 80, c11), vstore(tile, 96, c12), vstore(tile, 112, c13)
    vstore(tile, 128, c20), vstore(tile, 144, c21), vstore(tile, 160, c22), vstore(tile, 176, c23)
    vstore(tile, 192, c30), vstore(tile, 208, c31), vstore(tile, 224, c32), vstore(tile, 240, c33)
    vstore(tile, 256, c40), vstore(tile, 272, c41), vstore(tile, 288, c42), vstore(tile, 304, c43)
    vstore(tile, 320, c50), vstore(tile, 336, c51), vstore(tile, 352, c52), vstore(tile, 368, c53)


def pack_panels(w: np.ndarray, blocks: int) -> np.ndarray:
    """Pack a (K, blocks * H) matrix of ``blocks`` column blocks (LSTM gates) for
    :func:`tile_fma`: panel ``p`` holds, for each row, units ``[16 p, 16 p + 16)`` of every
    block side by side (64 columns when ``blocks = 4``); units past H are 0.

    Returns
    -------
    ndarray of float32, shape (ceil(H / 16), K, 16 * blocks), C-contiguous
    """
    depth, width = w.shape
    hidden = width // blocks
    panels = -(-hidden // LANES)
    out = np.zeros((depth, blocks, panels * LANES), np.float32)
    out[:, :, :hidden] = w.reshape(depth, blocks, hidden)
    out = out.reshape(depth, blocks, panels, LANES).transpose(2, 0, 1, 3)
    return np.ascontiguousarray(out).reshape(panels, depth, blocks * LANES)
