"""Numba twin of :mod:`kernels.reference.steps`: name, signature and results of
``plan_steps`` (letters, slots, deferral, renaming and settings as defined there).

Single cases only: a batch's plan is made by the reference. A batch plan serves all its cases,
so the planning time is shared by them, and the batch paths (case axes) are then never
compiled; a program that only runs batches (the application's scoring) never compiles this
kernel at all (about 30 s on a 2-core machine, once per install: Numba's disk cache keeps it).

The query's variables are renumbered ``0..K-1`` in ascending id order (``K``: the variables of
the input tables and the query), so that a set of them is one ``uint64``. Renumbering keeps the
order of ids, hence every tie-break, the greedy order and the renaming of the reference. With
``K > 64``, or when a table would be refused (its size is then reported by the reference,
whose sizes saturate later), :func:`plan_steps` returns what the reference returns. Input is
not validated here (the reference validates).

Per slot ``s`` (an input table or a step's result) the kernel keeps its variable set
``scope[s]``, its axes ``axes[s, :naxes[s]]`` (compact ids, axis order), its executor
position, whether it is live, and, while its step is deferred, that step's operands and loop
(``d_*``). A set of slots is never a bitset here: the slots holding a
variable are found by a scan over the live ones (at most ``2 F + E`` slots). Integer work only;
table sizes saturate at ``2**62``.

The helpers that allocate nothing are compiled without reference counting (``_nrt=False``):
with it, binding the arrays of the state tuples cost two atomic operations per array per call,
half of the planning time.

The settings (``max_operands``, ``pairwise_min``...) are read from the problem array and the
length of its header is an argument: the compiled code, kept in Numba's disk cache (which only
watches this file), holds no value of another module.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

import kernels.reference.steps as reference
from kernels.cpu._bits import popcount
from kernels.cpu.planning import order_words

__all__ = ["plan_steps"]

_LIMIT = 1 << 62  # sizes saturate here
_PLAN_HEADER = 7  # the plan's fields before its order (written by _plan_steps)
# counters and settings kept in one int64 array (Numba functions cannot rebind their caller's
# scalars)
_SLOTS, _TABLES, _STEPS, _OPS, _OUTS, _UNION, _SPEC, _WIDTH, _BIG, _STATUS = range(10)
_ERR_VAR, _ERR_SIZE, _LIM, _GEMM = range(10, 14)
_MAX_OPERANDS, _PAIRWISE_MIN, _MATMUL_MIN, _MERGE_MAX = range(14, 18)


def plan_steps(problem: np.ndarray, cards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn an elimination into einsum steps; see :func:`kernels.reference.steps.plan_steps`
    for the problem array taken and the plan array and spec returned."""
    problem = np.ascontiguousarray(problem, dtype=np.int64)
    header = reference.PROBLEM_HEADER
    if problem.size < header or not problem[5]:
        return reference.plan_steps(problem, cards)  # a batch, or malformed (it says how)
    if not 2 <= problem[7] <= 64 or problem[8:header].min() < 0:
        return reference.plan_steps(problem, cards)  # settings out of range: it says which
    plan, spec = _plan_steps(problem, np.ascontiguousarray(cards, dtype=np.int64), header)
    if plan[0]:  # more than 64 variables, or a refusal: the reference's exact answer
        return reference.plan_steps(problem, cards)
    return plan, spec


@njit(cache=True, _nrt=False)
def _mul(a, b):
    """``a * b`` for sizes ``>= 0``, saturated at ``2**62``."""
    if a == 0 or b == 0:
        return np.int64(0)
    if a > (np.int64(1) << 62) // b:
        return np.int64(1) << 62
    return a * b


@njit(cache=True, _nrt=False)
def _size(bits, cards):
    """Entries of a table over the compact variables of ``bits`` (saturated)."""
    out = np.int64(1)
    while bits:
        out = _mul(out, cards[trailing_zeros(bits)])
        bits &= bits - np.uint64(1)
    return out


@njit(cache=True, _nrt=False)
def _bit(k):
    return np.uint64(1) << np.uint64(k)


@njit(cache=True, _nrt=False)
def _letter(rank):
    """The einsum letter of the ``rank``-th variable of a step (``LETTERS`` of the reference:
    ASCII letters without ``Z``)."""
    return np.uint8(97 + rank) if rank < 26 else np.uint8(65 + rank - 26)


@njit(cache=True, _nrt=False)
def _write_axes(o, union, axes, naxes, spec, cnt):
    """Append slot ``o``'s labels (renamed within ``union``) to ``spec``."""
    for i in range(naxes[o]):
        u = axes[o, i]
        spec[cnt[_SPEC]] = _letter(popcount(union & (_bit(u) - np.uint64(1))))
        cnt[_SPEC] += 1


@njit(cache=True, _nrt=False)
def _put(value, gemm, cnt):
    gemm[cnt[_GEMM]] = value
    cnt[_GEMM] += 1


@njit(cache=True, _nrt=False)
def _rank(row, n, among, v):
    """How many of ``row[:n]`` before ``v`` are in the set ``among``."""
    k = 0
    for i in range(n):
        if row[i] == v:
            break
        if among & _bit(row[i]):
            k += 1
    return k


@njit(cache=True, _nrt=False)
def _put_summed(x, nx, summed, gemm, cnt):
    """Append how many of the axes ``x[:nx]`` are in ``summed``, then their positions."""
    _put(popcount(summed), gemm, cnt)
    for i in range(nx):
        if summed & _bit(x[i]):
            _put(i, gemm, cnt)


@njit(cache=True, _nrt=False)
def _put_ranks(order, n, group, x, nx, kept, gemm, cnt):
    """Append, for each variable of ``group`` in the order of ``order[:n]``, its position among
    the axes of ``x[:nx]`` that are in ``kept``."""
    for i in range(n):
        if group & _bit(order[i]):
            _put(_rank(x, nx, kept, order[i]), gemm, cnt)


@njit(cache=True, _nrt=False)
def _put_shape(batch, p, rows, cols, gemm, cnt):
    """Append a matmul operand's shape: ``(p, rows, cols)``, or ``(rows, cols)`` without a
    batch."""
    if batch:
        _put(3, gemm, cnt)
        _put(p, gemm, cnt)
    else:
        _put(2, gemm, cnt)
    _put(rows, gemm, cnt)
    _put(cols, gemm, cnt)


@njit(cache=True, _nrt=False)
def _write_layout(a, na, b, nb, r, nr, cards, gemm, cnt):
    """Append the encoded ``matmul_layout`` of the einsum ``a[:na],b[:nb]->r[:nr]`` (compact
    ids) to ``gemm`` and return True, or return False when it is no matrix product."""
    sa = sb = sr = np.uint64(0)
    for i in range(na):
        sa |= _bit(a[i])
    for i in range(nb):
        sb |= _bit(b[i])
    for i in range(nr):
        sr |= _bit(r[i])
    batch, left, right = sr & sa & sb, sr & sa & ~sb, sr & sb & ~sa
    inner = sa & sb & ~sr
    if not left or not right:
        return False
    p = _size(batch, cards)
    m, k, n = _size(left, cards), _size(inner, cards), _size(right, cards)
    n_batch, n_left = popcount(batch), popcount(left)
    # a: its summed axes, then its kept axes as batch, left (r's order), inner (a's order)
    _put_summed(a, na, sa & ~(sb | sr), gemm, cnt)
    _put(n_batch + n_left + popcount(inner), gemm, cnt)
    _put_ranks(r, nr, batch, a, na, sb | sr, gemm, cnt)
    _put_ranks(r, nr, left, a, na, sb | sr, gemm, cnt)
    _put_ranks(a, na, inner, a, na, sb | sr, gemm, cnt)
    _put_shape(batch, p, m, k, gemm, cnt)
    # b: its summed axes, then batch (r's order), inner (a's order), right (r's order)
    _put_summed(b, nb, sb & ~(sa | sr), gemm, cnt)
    _put(n_batch + popcount(inner) + popcount(right), gemm, cnt)
    _put_ranks(r, nr, batch, b, nb, sa | sr, gemm, cnt)
    _put_ranks(a, na, inner, b, nb, sa | sr, gemm, cnt)
    _put_ranks(r, nr, right, b, nb, sa | sr, gemm, cnt)
    _put_shape(batch, p, k, n, gemm, cnt)
    _put(nr, gemm, cnt)  # shape_out: batch, left, right, each in r's order
    for part in (batch, left, right):
        for i in range(nr):
            if part & _bit(r[i]):
                _put(cards[r[i]], gemm, cnt)
    _put(nr, gemm, cnt)  # perm_out: where each of r sits in that order
    for i in range(nr):
        c = _bit(r[i])
        if batch & c:
            _put(_rank(r, nr, batch, r[i]), gemm, cnt)
        elif left & c:
            _put(n_batch + _rank(r, nr, left, r[i]), gemm, cnt)
        else:
            _put(n_batch + n_left + _rank(r, nr, right, r[i]), gemm, cnt)
    return True


@njit(cache=True, _nrt=False)
def _append(s, op, state, out):
    """Emit the recorded step of slot ``s`` (``op`` 0 sum, 1 max) as the next step."""
    scope, axes, naxes, position, live, deferred, d_ops, d_nops, d_var = state[:9]
    d_union, d_summed, d_blas, ids, cards = state[9:14]
    cnt, steps, ops_off, ops, outs_off, outs, union_off, union, spec, gemm_off, gemm = out
    k = cnt[_STEPS]
    loop = d_union[s]
    if k:
        spec[cnt[_SPEC]] = 59  # ";"
        cnt[_SPEC] += 1
    for i in range(d_nops[s]):
        o = d_ops[s, i]
        if i:
            spec[cnt[_SPEC]] = 44  # ","
            cnt[_SPEC] += 1
        _write_axes(o, loop, axes, naxes, spec, cnt)
        ops[cnt[_OPS]] = position[o]
        cnt[_OPS] += 1
    spec[cnt[_SPEC]] = 45  # "->"
    spec[cnt[_SPEC] + 1] = 62
    cnt[_SPEC] += 2
    var = d_var[s]
    if op == 1:
        spec[cnt[_SPEC]] = _letter(popcount(loop & (_bit(var) - np.uint64(1))))
        cnt[_SPEC] += 1
    _write_axes(s, loop, axes, naxes, spec, cnt)
    for i in range(naxes[s]):
        outs[cnt[_OUTS]] = ids[axes[s, i]]
        cnt[_OUTS] += 1
    _write_members(loop, ids, union, cnt)
    steps[k, 0] = -1 if var < 0 else ids[var]
    steps[k, 1] = op
    steps[k, 2] = 0  # no case axis
    blas = d_blas[s]
    if blas:  # a matrix product: its axis moves planned once
        a, b = d_ops[s, 0], d_ops[s, 1]
        found = _write_layout(axes[a], naxes[a], axes[b], naxes[b], axes[s], naxes[s], cards,
                              gemm, cnt)  # fmt: skip
        blas = 1 if found else 0
    steps[k, 3] = blas
    gemm_off[k + 1] = cnt[_GEMM]
    cnt[_STEPS] = k + 1
    ops_off[k + 1] = cnt[_OPS]
    outs_off[k + 1] = cnt[_OUTS]
    union_off[k + 1] = cnt[_UNION]
    position[s] = cnt[_TABLES]
    cnt[_TABLES] += 1


@njit(cache=True, _nrt=False)
def _write_members(bits, ids, union, cnt):
    """Append the variable ids of the compact set ``bits`` to ``union``, ascending."""
    while bits:
        union[cnt[_UNION]] = ids[trailing_zeros(bits)]
        cnt[_UNION] += 1
        bits &= bits - np.uint64(1)


@njit(cache=True, _nrt=False)
def _absorb(used, m, op, size, summed_size, blas, target, state, out):
    """Record at slot ``target`` the operands and loop of a step over slots ``used[:m]``: a
    deferred slot is replaced by its operands when the step can take them in (a chain of
    reductions of one table, or a small merged loop); other deferred slots are emitted first.
    """
    scope, axes, naxes, position, live, deferred, d_ops, d_nops, d_var = state[:9]
    d_union, d_summed, d_blas = state[9:12]
    cnt = out[0]
    n = 0
    loop = np.uint64(0)
    for i in range(m):
        s = used[i]
        if deferred[s]:
            if op == 0 and m == 1:  # it only sums axes out of that result: one pass
                deferred[s] = False
                for j in range(d_nops[s]):
                    d_ops[target, j] = d_ops[s, j]
                d_nops[target] = d_nops[s]
                d_union[target] = d_union[s]
                d_summed[target] = _mul(d_summed[s], summed_size)
                d_blas[target] = d_blas[s]
                return
            grown = _mul(size, d_summed[s])
            fits = n + d_nops[s] + m - i - 1 <= cnt[_MAX_OPERANDS]
            if op == 0 and grown <= cnt[_MERGE_MAX] and fits:  # small: one einsum for both
                deferred[s] = False
                for j in range(d_nops[s]):
                    d_ops[target, n] = d_ops[s, j]
                    n += 1
                loop |= d_union[s]
                size = grown
                summed_size = _mul(summed_size, d_summed[s])
                blas = 0
                continue
            deferred[s] = False
            _append(s, 0, state, out)
        d_ops[target, n] = s
        n += 1
        loop |= scope[s]
    d_nops[target] = n
    d_union[target] = loop
    d_summed[target] = summed_size
    d_blas[target] = blas


@njit(cache=True, _nrt=False)
def _measure(used, m, drop, finals, has_finals, state):
    """``(union, summed size, size)`` of a step over slots ``used[:m]`` that sums out the
    variables of ``drop`` (its output: ``finals`` if ``has_finals``, else the rest)."""
    scope, cards = state[0], state[13]
    union = np.uint64(0)
    for i in range(m):
        union |= scope[used[i]]
    if has_finals:
        kept = np.uint64(0)
        for i in range(finals.shape[0]):
            kept |= _bit(finals[i])
        out_size = _size(kept, cards)
    else:
        out_size = _size(union & ~drop, cards)
    summed_size = _size(union & drop, cards)
    return union, summed_size, _mul(out_size, summed_size)


@njit(cache=True, _nrt=False)
def _simple(used, m, drop, op, var, finals, has_finals, state, out):
    """Add the step over slots ``used[:m]`` (no grouping, no pairwise split)."""
    scope, axes, naxes, position, live, deferred, d_ops, d_nops, d_var = state[:9]
    ids = state[12]
    cnt, union_buf = out[0], out[7]
    union, summed_size, size = _measure(used, m, drop, finals, has_finals, state)
    width = popcount(union) - 1
    if size > cnt[_LIM] or size >= _LIMIT or width >= 51:
        cnt[_STATUS] = 1
        cnt[_ERR_VAR] = -1 if var < 0 else ids[var]
        cnt[_ERR_SIZE] = size
        _write_members(union, ids, union_buf, cnt)
        return
    if width > cnt[_WIDTH]:
        cnt[_WIDTH] = width
    if size > cnt[_BIG]:
        cnt[_BIG] = size
    blas = 0
    if op == 0 and m == 2 and size >= cnt[_MATMUL_MIN]:
        a, b = scope[used[0]], scope[used[1]]
        blas = 1 if a & ~b and b & ~a else 0
    target = cnt[_SLOTS]
    _absorb(used, m, op, size, summed_size, blas, target, state, out)
    cnt[_SLOTS] = target + 1
    for i in range(m):
        live[used[i]] = False
    live[target] = True
    kept = union & ~drop
    scope[target] = kept
    if has_finals:
        naxes[target] = finals.shape[0]
        for i in range(finals.shape[0]):
            axes[target, i] = finals[i]
    else:
        n = 0
        while kept:
            axes[target, n] = trailing_zeros(kept)
            n += 1
            kept &= kept - np.uint64(1)
        naxes[target] = n
    d_var[target] = var
    if op == 0:
        deferred[target] = True
    else:  # max-product: emitted at once, the first axis is var's
        _append(target, 1, state, out)


@njit(cache=True, _nrt=False)
def _split(used_in, m, drop, op, var, finals, has_finals, state, out):
    """Add the steps over slots ``used_in[:m]`` (at most ``max_operands``): pairwise products
    first while the step is large (the pair of least product size each time)."""
    scope, cards, cnt, work = state[0], state[13], out[0], state[14]
    used, pair, none = work[1], work[2, :2], work[2, :0]
    for i in range(m):
        used[i] = used_in[i]
    while True:
        union, summed_size, size = _measure(used, m, drop, finals, has_finals, state)
        if size < cnt[_PAIRWISE_MIN] or m <= 2:
            _simple(used, m, drop, op, var, finals, has_finals, state, out)
            return
        keep = union & ~drop
        if op == 1:
            keep |= _bit(var)
        best, bi, bj = np.int64(-1), 0, 0
        for i in range(m):
            for j in range(i + 1, m):
                s = _size(scope[used[i]] | scope[used[j]], cards)
                if best < 0 or s < best:
                    best, bi, bj = s, i, j
        pair[0], pair[1] = used[bi], used[bj]
        n = 0
        for i in range(m):
            if i != bi and i != bj:
                used[n] = used[i]
                n += 1
        needed = keep
        for i in range(n):
            needed |= scope[used[i]]
        _simple(pair, 2, ~needed, 0, -1, none, False, state, out)
        if cnt[_STATUS]:
            return
        used[n] = cnt[_SLOTS] - 1  # the pair's product, the newest slot
        m = n + 1


@njit(cache=True, _nrt=False)
def _emit(used, m, drop, op, var, finals, has_finals, state, out):
    """Add the step(s) multiplying slots ``used[:m]`` (ascending) and summing (``op`` 0) or
    maximising (``op`` 1, ``var``) out the variables of ``drop``: grouped products first if
    there are more than ``max_operands`` operands."""
    cnt, work = out[0], state[14]
    none, rest = work[2, :0], work[0]
    most = cnt[_MAX_OPERANDS]
    for i in range(m):
        rest[i] = used[i]
    while m > most:
        _split(rest, most, np.uint64(0), 0, -1, none, False, state, out)
        if cnt[_STATUS]:
            return
        for i in range(m - most):
            rest[i] = rest[most + i]
        m -= most
        rest[m] = cnt[_SLOTS] - 1
        m += 1
    _split(rest, m, drop, op, var, finals, has_finals, state, out)


@njit(cache=True)
def _plan_steps(problem, cards_all, header):
    """The plan of a single case (``header``: the problem's entries before its tables)."""
    n_inputs, n_query, n_elim, heuristic, mode = (
        problem[0],
        problem[1],
        problem[2],
        problem[3],
        problem[4],
    )
    limit, max_operands = min(problem[6], _LIMIT), problem[7]
    axes_off = problem[header : header + n_inputs + 1]
    at = header + n_inputs + 1
    axes_in = problem[at : at + axes_off[n_inputs]]
    at += axes_off[n_inputs] + n_inputs  # past the tables' case flags (a single case: none)
    query_in = problem[at : at + n_query]
    elim_in = problem[at + n_query : at + n_query + n_elim]
    n_vars = cards_all.shape[0]
    # -- renumber the variables of the inputs and the query ------------------------------------
    compact = np.full(n_vars, -1, np.int64)
    for i in range(axes_in.shape[0]):
        compact[axes_in[i]] = 0
    for i in range(query_in.shape[0]):
        compact[query_in[i]] = 0
    n_kept = 0
    for v in range(n_vars):
        if compact[v] == 0:
            compact[v] = n_kept
            n_kept += 1
    if n_kept > 64:  # status 2: for the reference
        return np.full(1, 2, np.int64), np.zeros(0, np.uint8)
    ids = np.empty(n_kept, np.int64)
    for v in range(n_vars):
        if compact[v] >= 0:
            ids[compact[v]] = v
    cards = np.empty(n_kept, np.int64)
    for k in range(n_kept):
        cards[k] = cards_all[ids[k]]
    query = np.empty(query_in.shape[0], np.int64)
    qbits = np.uint64(0)
    for i in range(query.shape[0]):
        query[i] = compact[query_in[i]]
        qbits |= _bit(query[i])

    # -- slots ---------------------------------------------------------------------------------
    n_max = 2 * n_inputs + n_kept + 4
    scope = np.zeros(n_max, np.uint64)
    axes = np.empty((n_max, max(n_kept, 1)), np.int64)
    naxes = np.zeros(n_max, np.int64)
    position = np.full(n_max, -1, np.int64)
    live = np.zeros(n_max, np.bool_)
    deferred = np.zeros(n_max, np.bool_)
    d_ops = np.empty((n_max, max_operands), np.int64)
    d_nops = np.zeros(n_max, np.int64)
    d_var = np.full(n_max, -1, np.int64)
    d_union = np.zeros(n_max, np.uint64)
    d_summed = np.zeros(n_max, np.int64)
    d_blas = np.zeros(n_max, np.int64)
    adj = np.zeros(n_kept, np.uint64)
    kept = qbits
    for f in range(n_inputs):
        bits = np.uint64(0)
        for i in range(axes_off[f], axes_off[f + 1]):
            u = compact[axes_in[i]]
            axes[f, i - axes_off[f]] = u
            bits |= _bit(u)
        naxes[f] = axes_off[f + 1] - axes_off[f]
        scope[f] = bits
        position[f] = f
        live[f] = True
        kept |= bits
        for i in range(axes_off[f], axes_off[f + 1]):
            adj[compact[axes_in[i]]] |= bits
    hidden = kept & ~qbits

    # -- the elimination order -----------------------------------------------------------------
    if heuristic < 0:
        order = np.empty(elim_in.shape[0], np.int64)
        for i in range(order.shape[0]):
            order[i] = compact[elim_in[i]]
    else:
        graph = np.empty((n_kept, 1), np.uint64)  # open neighbourhoods, one word each
        for u in range(n_kept):
            graph[u, 0] = adj[u] & ~_bit(u)
        stages = np.empty((2 if mode == 2 else 1, 1), np.uint64)
        stages[0, 0] = hidden
        if mode == 2:
            stages[1, 0] = qbits
        order = order_words(graph, stages, cards, heuristic)

    # -- outputs -------------------------------------------------------------------------------
    steps = np.zeros((n_max, 4), np.int64)
    ops_off = np.zeros(n_max + 1, np.int64)
    ops = np.empty(n_max * max_operands, np.int64)
    outs_off = np.zeros(n_max + 2, np.int64)
    outs = np.empty(n_max * max(n_kept, 1), np.int64)
    union_off = np.zeros(n_max + 2, np.int64)
    union = np.empty((n_max + 1) * max(n_kept, 1), np.int64)
    spec = np.empty(n_max * (max_operands + 1) * (n_kept + 4) + 1, np.uint8)
    gemm_off = np.zeros(n_max + 1, np.int64)
    gemm = np.empty(n_max * (6 * n_kept + 12), np.int64)
    cnt = np.zeros(18, np.int64)
    cnt[_SLOTS] = n_inputs
    cnt[_TABLES] = n_inputs
    cnt[_LIM] = limit
    cnt[_MAX_OPERANDS] = max_operands
    cnt[_PAIRWISE_MIN], cnt[_MATMUL_MIN], cnt[_MERGE_MAX] = problem[8], problem[9], problem[10]
    cnt[_WIDTH] = query.shape[0] - 1
    big = np.int64(1)
    for i in range(query.shape[0]):
        big = _mul(big, cards[query[i]])
    cnt[_BIG] = big
    work = np.empty((3, n_max), np.int64)  # slot lists of _emit (0), _split (1), a pair (2)
    state = (scope, axes, naxes, position, live, deferred, d_ops, d_nops, d_var, d_union,
             d_summed, d_blas, ids, cards, work)  # fmt: skip
    out = (cnt, steps, ops_off, ops, outs_off, outs, union_off, union, spec, gemm_off, gemm)
    used = np.empty(n_max, np.int64)
    no_outs = np.empty(0, np.int64)

    n_hidden = popcount(hidden)
    for k in range(order.shape[0]):
        var = order[k]
        m = 0
        for s in range(cnt[_SLOTS]):
            if live[s] and scope[s] & _bit(var):
                used[m] = s
                m += 1
        op = 1 if mode == 2 and k >= n_hidden else 0
        _emit(used, m, _bit(var), op, var, no_outs, False, state, out)
        if cnt[_STATUS]:
            break
    if not cnt[_STATUS]:  # finish: the product of what is left, into the query's axes
        m = 0
        for s in range(cnt[_SLOTS]):
            if live[s]:
                used[m] = s
                m += 1
        if m:
            finals = query if mode == 0 else no_outs
            _emit(used, m, ~qbits if mode == 0 else ~np.uint64(0), 0, -1, finals, True, state,
                  out)  # fmt: skip
            last = cnt[_SLOTS] - 1
            if not cnt[_STATUS] and deferred[last]:
                deferred[last] = False
                _append(last, 0, state, out)
    n = cnt[_STEPS]
    if cnt[_STATUS]:
        union_off[n + 1] = cnt[_UNION]
        n_union = n + 1
    else:
        n_union = n
    size = _PLAN_HEADER + order.shape[0] + 4 * n + 3 * (n + 1) + n_union + 1
    plan = np.empty(size + cnt[_OPS] + cnt[_OUTS] + cnt[_UNION] + cnt[_GEMM], np.int64)
    plan[0], plan[1], plan[2] = cnt[_STATUS], cnt[_WIDTH], cnt[_BIG]
    plan[3], plan[4], plan[5], plan[6] = cnt[_ERR_VAR], cnt[_ERR_SIZE], n, order.shape[0]
    at = _PLAN_HEADER
    for i in range(order.shape[0]):
        plan[at + i] = ids[order[i]]
    at += order.shape[0]
    for k in range(n):
        for c in range(4):
            plan[at + 4 * k + c] = steps[k, c]
    at += 4 * n
    at = _put_group(plan, at, ops_off, n, ops)
    at = _put_group(plan, at, outs_off, n, outs)
    at = _put_group(plan, at, union_off, n_union, union)
    _put_group(plan, at, gemm_off, n, gemm)
    return plan, spec[: cnt[_SPEC]]


@njit(cache=True, _nrt=False)
def _put_group(plan, at, offsets, n, values):
    """Write ``offsets[:n + 1]`` then ``values[:offsets[n]]`` into ``plan`` at ``at``; return
    the position after them."""
    for k in range(n + 1):
        plan[at + k] = offsets[k]
    at += n + 1
    for k in range(offsets[n]):
        plan[at + k] = values[k]
    return at + offsets[n]
