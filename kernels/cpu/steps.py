"""Numba twin of :mod:`kernels.reference.steps`: name, signature and results of
``plan_steps`` (letters, slots, deferral, renaming and settings as defined there).

Single cases only: a batch's plan is made by the reference. A batch plan serves all its cases,
so the planning time is shared by them, and the batch paths (case axes) are then never
compiled; a program that only runs batches (the application's scoring) never compiles this
kernel at all.

The query's variables are renumbered ``0..K-1`` in ascending id order (``K``: the variables of
the input tables and the query), so that a set of them is one ``uint64``. Renumbering keeps the
order of ids, hence every tie-break, the greedy order and the renaming of the reference. With
``K > 64``, or when a table would be refused (its size is then reported by the reference,
whose sizes saturate later), :func:`plan_steps` returns what the reference returns. Input is
not validated here (the reference validates).

State, in a few flat arrays (``S`` slots, at most ``2 F + K + 4``)
    ``slot[s]`` (int64, ``S x 8``): the axis count, executor position, live and deferred
    flags of slot ``s`` (an input table or a step's result), and, while its step is deferred,
    that step's operand count, variable, summed entries and BLAS flag; ``sets[s]`` (uint64,
    ``S x 2``): its variable set and its deferred step's loop; ``axes[s]`` (compact ids, axis
    order) and ``d_ops[s]`` (the deferred step's operand slots). The slots holding a variable
    are found by a scan over the live ones. ``cnt`` holds the counters and settings; the four
    output groups (operand positions, result axes, loop variables, matmul layouts) are views
    of one buffer, each its length then its values, and ``offs`` holds their lengths before
    each step. Integer work only; table sizes saturate at ``2**62``.

Compile time
    The first single query on a fresh install compiles this kernel (Numba's disk cache then
    keeps it). Numba compiles each callee on its own, then links and re-optimises it into
    every caller, so the cost grows with the depth of the call chain, the number of helpers
    and their arguments (a tuple of arrays is one struct per array, and each literal argument
    value compiles a helper again). So the planning loop (groups of ``max_operands``, pairwise
    products) runs in :func:`_plan_steps` itself, which calls :func:`_step` (record a step)
    and :func:`_append` (emit one) from one place each: ``_step`` queues the deferred operands
    it emits, and the caller emits them in order. Helpers have no wrappers or cache entries
    (``helper`` of :mod:`kernels.cpu._bits`). The first call went from ~25 s to ~6 s of CPU
    time on the loaded 2-core machine (``inline="always"`` on the small helpers: slower).

The settings (``max_operands``, ``pairwise_min``...) are read from the problem array and the
length of its header is an argument: the compiled code, kept in Numba's disk cache (which only
watches this file), holds no value of another module.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

import kernels.reference.steps as reference
from kernels.cpu._bits import helper, popcount
from kernels.cpu.planning import order_words

__all__ = ["plan_steps"]

_LIMIT = 1 << 62  # sizes saturate here
_PLAN_HEADER = 7  # the plan's fields before its order (written by _plan_steps)
# counters and settings, in one int64 array ``cnt``
_SLOTS, _TABLES, _STEPS, _SPEC, _WIDTH, _BIG, _STATUS, _ERR_VAR, _ERR_SIZE = range(9)
_LIM, _MAX_OPERANDS, _PAIRWISE_MIN, _MATMUL_MIN, _MERGE_MAX = range(9, 14)
# columns of ``slot`` and ``sets``
_NAXES, _POSITION, _LIVE, _DEFERRED, _NOPS, _VAR, _SUMMED, _BLAS = range(8)
_SCOPE, _LOOP = range(2)


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


@helper
def _mul(a, b):
    """``a * b`` for sizes ``>= 0``, saturated at ``2**62``."""
    if a == 0 or b == 0:
        return np.int64(0)
    if a > (np.int64(1) << 62) // b:
        return np.int64(1) << 62
    return a * b


@helper
def _size(bits, cards):
    """Entries of a table over the compact variables of ``bits`` (saturated)."""
    out = np.int64(1)
    while bits:
        out = _mul(out, cards[trailing_zeros(bits)])
        bits &= bits - np.uint64(1)
    return out


@helper
def _bit(k):
    return np.uint64(1) << np.uint64(k)


@helper
def _letter(rank):
    """The einsum letter of the ``rank``-th variable of a step (``LETTERS`` of the reference:
    ASCII letters without ``Z``)."""
    return np.uint8(97 + rank) if rank < 26 else np.uint8(65 + rank - 26)


@helper
def _push(group, value):
    """Append ``value`` to the output group ``group`` (its length in ``group[0]``, its values
    after it)."""
    group[0] += 1
    group[group[0]] = value


@helper
def _write_members(bits, ids, loops):
    """Append the variable ids of the compact set ``bits`` to the group ``loops``, ascending."""
    while bits:
        _push(loops, ids[trailing_zeros(bits)])
        bits &= bits - np.uint64(1)


@helper
def _write_axes(row, n, union, spec, cnt):
    """Append the labels of the axes ``row[:n]`` (renamed within ``union``) to ``spec``."""
    for i in range(n):
        spec[cnt[_SPEC]] = _letter(popcount(union & (_bit(row[i]) - np.uint64(1))))
        cnt[_SPEC] += 1


@helper
def _rank(row, n, among, v):
    """How many of ``row[:n]`` before ``v`` are in the set ``among``."""
    k = 0
    for i in range(n):
        if row[i] == v:
            break
        if among & _bit(row[i]):
            k += 1
    return k


@helper
def _put_summed(x, nx, summed, gemm):
    """Append how many of the axes ``x[:nx]`` are in ``summed``, then their positions."""
    _push(gemm, popcount(summed))
    for i in range(nx):
        if summed & _bit(x[i]):
            _push(gemm, i)


@helper
def _put_ranks(order, n, group, x, nx, kept, gemm):
    """Append, for each variable of ``group`` in the order of ``order[:n]``, its position among
    the axes of ``x[:nx]`` that are in ``kept``."""
    for i in range(n):
        if group & _bit(order[i]):
            _push(gemm, _rank(x, nx, kept, order[i]))


@helper
def _put_shape(batch, p, rows, cols, gemm):
    """Append a matmul operand's shape: ``(p, rows, cols)``, or ``(rows, cols)`` without a
    batch."""
    _push(gemm, 3 if batch else 2)
    if batch:
        _push(gemm, p)
    _push(gemm, rows)
    _push(gemm, cols)


@helper
def _write_layout(a, na, b, nb, r, nr, cards, gemm):
    """Append the encoded ``matmul_layout`` of the einsum ``a[:na],b[:nb]->r[:nr]`` (compact
    ids) to the group ``gemm`` and return True, or return False when it is no matrix
    product."""
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
    _put_summed(a, na, sa & ~(sb | sr), gemm)
    _push(gemm, n_batch + n_left + popcount(inner))
    _put_ranks(r, nr, batch, a, na, sb | sr, gemm)
    _put_ranks(r, nr, left, a, na, sb | sr, gemm)
    _put_ranks(a, na, inner, a, na, sb | sr, gemm)
    _put_shape(batch, p, m, k, gemm)
    # b: its summed axes, then batch (r's order), inner (a's order), right (r's order)
    _put_summed(b, nb, sb & ~(sa | sr), gemm)
    _push(gemm, n_batch + popcount(inner) + popcount(right))
    _put_ranks(r, nr, batch, b, nb, sa | sr, gemm)
    _put_ranks(a, na, inner, b, nb, sa | sr, gemm)
    _put_ranks(r, nr, right, b, nb, sa | sr, gemm)
    _put_shape(batch, p, k, n, gemm)
    _push(gemm, nr)  # shape_out: batch, left, right, each in r's order
    for part in (batch, left, right):
        for i in range(nr):
            if part & _bit(r[i]):
                _push(gemm, cards[r[i]])
    _push(gemm, nr)  # perm_out: where each of r sits in that order
    for i in range(nr):
        c = _bit(r[i])
        if batch & c:
            _push(gemm, _rank(r, nr, batch, r[i]))
        elif left & c:
            _push(gemm, n_batch + _rank(r, nr, left, r[i]))
        else:
            _push(gemm, n_batch + n_left + _rank(r, nr, right, r[i]))
    return True


@helper
def _append(s, op, slot, sets, axes, d_ops, ids, cards, cnt, steps, offs, ops, outs, loops,
            gemm, spec):  # fmt: skip
    """Emit the recorded step of slot ``s`` (``op`` 0 sum, 1 max) as the next step: its row
    of ``steps``, its spec, its operand positions, result axes, loop variables and matmul
    layout appended to the groups ``ops``, ``outs``, ``loops`` and ``gemm``, whose lengths
    after it go to column ``k + 1`` of ``offs``."""
    k = cnt[_STEPS]
    loop = sets[s, _LOOP]
    if k:
        spec[cnt[_SPEC]] = 59  # ";"
        cnt[_SPEC] += 1
    for i in range(slot[s, _NOPS]):
        o = d_ops[s, i]
        if i:
            spec[cnt[_SPEC]] = 44  # ","
            cnt[_SPEC] += 1
        _write_axes(axes[o], slot[o, _NAXES], loop, spec, cnt)
        _push(ops, slot[o, _POSITION])
    spec[cnt[_SPEC]] = 45  # "->"
    spec[cnt[_SPEC] + 1] = 62
    cnt[_SPEC] += 2
    var = slot[s, _VAR]
    if op == 1:
        spec[cnt[_SPEC]] = _letter(popcount(loop & (_bit(var) - np.uint64(1))))
        cnt[_SPEC] += 1
    n = slot[s, _NAXES]
    _write_axes(axes[s], n, loop, spec, cnt)
    for i in range(n):
        _push(outs, ids[axes[s, i]])
    _write_members(loop, ids, loops)
    steps[k, 0] = -1 if var < 0 else ids[var]
    steps[k, 1] = op
    steps[k, 2] = 0  # no case axis
    blas = slot[s, _BLAS]
    if blas:  # a matrix product: its axis moves planned once
        a, b = d_ops[s, 0], d_ops[s, 1]
        found = _write_layout(axes[a], slot[a, _NAXES], axes[b], slot[b, _NAXES], axes[s], n,
                              cards, gemm)  # fmt: skip
        blas = 1 if found else 0
    steps[k, 3] = blas
    offs[0, k + 1], offs[1, k + 1], offs[3, k + 1] = ops[0], outs[0], gemm[0]
    offs[2, k + 1] = loops[0]
    cnt[_STEPS] = k + 1
    slot[s, _POSITION] = cnt[_TABLES]
    cnt[_TABLES] += 1


@helper
def _measure(used, m, drop, finals, has_finals, sets, cards):
    """``(union, summed size, size)`` of a step over slots ``used[:m]`` that sums out the
    variables of ``drop`` (its output: the set ``finals`` if ``has_finals``, else the
    rest)."""
    union = np.uint64(0)
    for i in range(m):
        union |= sets[used[i], _SCOPE]
    out_size = _size(finals if has_finals else union & ~drop, cards)
    summed_size = _size(union & drop, cards)
    return union, summed_size, _mul(out_size, summed_size)


@helper
def _take_pair(group, n, keep, sets, cards, pair):
    """Move the pair of slots of ``group[:n]`` whose union spans the fewest entries (the first
    such pair) to ``pair``, the others keeping their order in ``group[:n - 2]``. Returns what
    the pair's product sums out: the variables in neither ``keep`` nor another slot."""
    best, bi, bj = np.int64(-1), 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            size = _size(sets[group[i], _SCOPE] | sets[group[j], _SCOPE], cards)
            if best < 0 or size < best:
                best, bi, bj = size, i, j
    pair[0], pair[1] = group[bi], group[bj]
    left = 0
    for i in range(n):
        if i != bi and i != bj:
            group[left] = group[i]
            keep |= sets[group[i], _SCOPE]
            left += 1
    return ~keep


@helper
def _step(used, m, drop, op, var, emit, finals, n_finals, union, summed_size, size,
          slot, sets, axes, d_ops, cnt, queue):  # fmt: skip
    """Record the step over slots ``used[:m]`` (measured by :func:`_measure`) at a new slot:
    its result's axes are ``finals[:n_finals]`` (``n_finals < 0``: its kept variables,
    ascending). A deferred operand is replaced by its operands when the step can take them
    in (a chain of reductions of one table, or a small merged loop). Returns how many slots
    it put in ``queue`` (as ``2 slot + op``) for the caller to emit, in that order: the
    deferred operands not merged, then the step itself if it is a max step or ``emit``."""
    blas = 0
    if op == 0 and m == 2 and size >= cnt[_MATMUL_MIN]:
        a, b = sets[used[0], _SCOPE], sets[used[1], _SCOPE]
        blas = 1 if a & ~b and b & ~a else 0
    target = cnt[_SLOTS]
    cnt[_SLOTS] = target + 1
    queued = 0
    n = 0
    loop = np.uint64(0)
    for i in range(m):
        s = used[i]
        slot[s, _LIVE] = 0
        if not slot[s, _DEFERRED]:
            d_ops[target, n] = s
            n += 1
            loop |= sets[s, _SCOPE]
            continue
        slot[s, _DEFERRED] = 0
        if op == 0 and m == 1:  # it only sums axes out of that result: one pass
            n = slot[s, _NOPS]
            for j in range(n):
                d_ops[target, j] = d_ops[s, j]
            loop = sets[s, _LOOP]
            summed_size = _mul(slot[s, _SUMMED], summed_size)
            blas = slot[s, _BLAS]
            break
        grown = _mul(size, slot[s, _SUMMED])
        fits = n + slot[s, _NOPS] + m - i - 1 <= cnt[_MAX_OPERANDS]
        if op == 0 and grown <= cnt[_MERGE_MAX] and fits:  # small: one einsum for both
            for j in range(slot[s, _NOPS]):
                d_ops[target, n] = d_ops[s, j]
                n += 1
            loop |= sets[s, _LOOP]
            size = grown
            summed_size = _mul(summed_size, slot[s, _SUMMED])
            blas = 0
            continue
        queue[queued] = 2 * s
        queued += 1
        d_ops[target, n] = s
        n += 1
        loop |= sets[s, _SCOPE]
    kept = union & ~drop
    sets[target, _SCOPE] = kept
    sets[target, _LOOP] = loop
    slot[target, _LIVE] = 1
    slot[target, _NOPS] = n
    slot[target, _VAR] = var
    slot[target, _SUMMED] = summed_size
    slot[target, _BLAS] = blas
    if n_finals >= 0:
        slot[target, _NAXES] = n_finals
        for i in range(n_finals):
            axes[target, i] = finals[i]
    else:
        k = 0
        while kept:
            axes[target, k] = trailing_zeros(kept)
            k += 1
            kept &= kept - np.uint64(1)
        slot[target, _NAXES] = k
    deferred = op == 0 and not emit  # a max step is emitted at once (its first axis: var's)
    slot[target, _DEFERRED] = deferred
    if not deferred:
        queue[queued] = 2 * target + op
        queued += 1
    return queued


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
    limit, most = min(problem[6], _LIMIT), problem[7]
    axes_off = problem[header : header + n_inputs + 1]
    at = header + n_inputs + 1
    axes_in = problem[at : at + axes_off[n_inputs]]
    at += axes_off[n_inputs] + n_inputs  # past the tables' case flags (a single case: none)
    query_in = problem[at : at + n_query]
    elim_in = problem[at + n_query : at + n_query + n_elim]
    n_vars = cards_all.shape[0]
    # -- renumber the variables of the inputs and the query ------------------------------------
    compact = np.empty(n_vars, np.int64)
    for v in range(n_vars):
        compact[v] = -1
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
        status = np.empty(1, np.int64)
        status[0] = 2
        return status, np.empty(0, np.uint8)
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
    width = max(n_kept, 1)
    slot = np.empty((n_max, 8), np.int64)  # each field written when its slot is made
    sets = np.empty((n_max, 2), np.uint64)
    axes = np.empty((n_max, width), np.int64)
    d_ops = np.empty((n_max, most), np.int64)
    graph = np.empty((n_kept, 1), np.uint64)  # closed neighbourhoods, one word each
    for u in range(n_kept):
        graph[u, 0] = 0
    kept = qbits
    for f in range(n_inputs):
        bits = np.uint64(0)
        for i in range(axes_off[f], axes_off[f + 1]):
            u = compact[axes_in[i]]
            axes[f, i - axes_off[f]] = u
            bits |= _bit(u)
        slot[f, _NAXES] = axes_off[f + 1] - axes_off[f]
        slot[f, _POSITION] = f
        slot[f, _LIVE] = 1
        slot[f, _DEFERRED] = 0
        sets[f, _SCOPE] = bits
        kept |= bits
        for i in range(axes_off[f], axes_off[f + 1]):
            graph[compact[axes_in[i]], 0] |= bits
    hidden = kept & ~qbits

    # -- the elimination order -----------------------------------------------------------------
    if heuristic < 0:
        order = np.empty(elim_in.shape[0], np.int64)
        for i in range(order.shape[0]):
            order[i] = compact[elim_in[i]]
    else:
        for u in range(n_kept):  # open neighbourhoods
            graph[u, 0] &= ~_bit(u)
        stages = np.empty((2 if mode == 2 else 1, 1), np.uint64)
        stages[0, 0] = hidden
        if mode == 2:
            stages[1, 0] = qbits
        order = order_words(graph, stages, cards, heuristic)

    # -- outputs -------------------------------------------------------------------------------
    steps = np.empty((n_max, 4), np.int64)
    offs = np.empty((4, n_max + 2), np.int64)  # column k: the groups' lengths before step k
    cnt = np.zeros(14, np.int64)
    # the four output groups, each its length then its values, one after the other in ``buf``
    e_ops = 1 + n_max * most
    e_outs = e_ops + 1 + n_max * width
    e_loops = e_outs + 1 + (n_max + 1) * width
    buf = np.empty(e_loops + 1 + n_max * (6 * n_kept + 12), np.int64)
    groups = (buf[:e_ops], buf[e_ops:e_outs], buf[e_outs:e_loops], buf[e_loops:])
    ops, outs, loops, gemm = groups
    for g in range(4):
        groups[g][0] = 0
        offs[g, 0] = 0
    spec = np.empty(n_max * (most + 1) * (n_kept + 4) + 1, np.uint8)
    cnt[_SLOTS] = n_inputs
    cnt[_TABLES] = n_inputs
    cnt[_LIM] = limit
    cnt[_MAX_OPERANDS] = most
    cnt[_PAIRWISE_MIN], cnt[_MATMUL_MIN], cnt[_MERGE_MAX] = problem[8], problem[9], problem[10]
    cnt[_WIDTH] = query.shape[0] - 1
    big = np.int64(1)
    for i in range(query.shape[0]):
        big = _mul(big, cards[query[i]])
    cnt[_BIG] = big

    # -- the steps: per elimination (then the final product), groups of at most ``most``
    # operands, each split into pairwise products while large --------------------------------
    rest = np.empty(n_max, np.int64)  # the slots of the elimination still to multiply
    group = np.empty(n_max, np.int64)  # those of the current group
    pair = np.empty(2, np.int64)
    queue = np.empty(most + 1, np.int64)  # slots to emit, as 2 slot + op (from _step)
    fbits = qbits if mode == 0 else np.uint64(0)  # the final product's variables
    n_hidden = popcount(hidden)
    n_order = order.shape[0]
    for k in range(n_order + 1):
        m = 0
        if k < n_order:  # eliminate order[k]: sum (max, for MAP's query variables) it out
            var = order[k]
            drop = _bit(var)
            op = 1 if mode == 2 and k >= n_hidden else 0
            n_finals = -1
        else:  # the product of what is left, into the query's axes
            var = -1
            drop = ~qbits if mode == 0 else ~np.uint64(0)
            op = 0
            n_finals = query.shape[0] if mode == 0 else 0
        for s in range(cnt[_SLOTS]):
            if slot[s, _LIVE] and (var < 0 or sets[s, _SCOPE] & drop):
                rest[m] = s
                m += 1
        if k == n_order and not m:
            break
        while not cnt[_STATUS]:  # one group per round
            grouped = m > most
            n = most if grouped else m
            for i in range(n):
                group[i] = rest[i]
            g_drop, g_op, g_var, g_finals = drop, op, var, n_finals
            if grouped:  # a product of the leading group, into a new operand
                g_drop, g_op, g_var, g_finals = np.uint64(0), 0, -1, -1
            last = False
            while not last:  # one step per round: a pair's product, then the group's
                union, summed, size = _measure(group, n, g_drop, fbits, g_finals >= 0, sets,
                                               cards)  # fmt: skip
                last = size < cnt[_PAIRWISE_MIN] or n <= 2
                operands, m_step, s_drop = group, n, g_drop
                s_op, s_var, s_finals = g_op, g_var, g_finals
                if not last:  # the pair of least product size first
                    keep = union & ~g_drop
                    if g_op == 1:
                        keep |= _bit(g_var)
                    s_drop = _take_pair(group, n, keep, sets, cards, pair)
                    operands, m_step, s_op, s_var, s_finals = pair, 2, 0, -1, -1
                    n -= 2
                    union, summed, size = _measure(pair, pair.shape[0], s_drop, fbits,
                                                   s_finals >= 0, sets, cards)  # fmt: skip
                loop_width = popcount(union) - 1
                if size > cnt[_LIM] or size >= _LIMIT or loop_width >= 51:
                    cnt[_STATUS] = 1
                    cnt[_ERR_VAR] = -1 if s_var < 0 else ids[s_var]
                    cnt[_ERR_SIZE] = size
                    _write_members(union, ids, loops)
                    break
                cnt[_WIDTH] = max(cnt[_WIDTH], loop_width)
                cnt[_BIG] = max(cnt[_BIG], size)
                emit = k == n_order and last and not grouped
                queued = _step(operands, m_step, s_drop, s_op, s_var, emit, query, s_finals,
                               union, summed, size, slot, sets, axes, d_ops, cnt,
                               queue)  # fmt: skip
                for i in range(queued):
                    _append(queue[i] >> 1, queue[i] & 1, slot, sets, axes, d_ops, ids, cards,
                            cnt, steps, offs, ops, outs, loops, gemm, spec)  # fmt: skip
                if not last:
                    group[n] = cnt[_SLOTS] - 1  # the pair's product, the newest slot
                    n += 1
            if not grouped:
                break
            for i in range(m - most):
                rest[i] = rest[most + i]
            m -= most
            rest[m] = cnt[_SLOTS] - 1
            m += 1
        if cnt[_STATUS]:
            break
    n = cnt[_STEPS]
    n_union = n
    if cnt[_STATUS]:
        n_union = n + 1
        offs[2, n_union] = loops[0]
    size = _PLAN_HEADER + n_order + 4 * n + 3 * (n + 1) + n_union + 1
    plan = np.empty(size + ops[0] + outs[0] + loops[0] + gemm[0], np.int64)
    plan[0], plan[1], plan[2] = cnt[_STATUS], cnt[_WIDTH], cnt[_BIG]
    plan[3], plan[4], plan[5], plan[6] = cnt[_ERR_VAR], cnt[_ERR_SIZE], n, n_order
    at = _PLAN_HEADER
    for i in range(n_order):
        plan[at + i] = ids[order[i]]
    at += n_order
    for k in range(n):
        for c in range(4):
            plan[at + 4 * k + c] = steps[k, c]
    at += 4 * n
    for g in range(4):  # each group's offsets, then its values
        last_step = n_union if g == 2 else n
        for k in range(last_step + 1):
            plan[at + k] = offs[g, k]
        at += last_step + 1
        for k in range(offs[g, last_step]):
            plan[at + k] = groups[g][1 + k]
        at += offs[g, last_step]
    return plan, spec[: cnt[_SPEC]]
