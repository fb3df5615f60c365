"""corenn.Embedding and the embedding kernels.

Oracles: the reference kernels (the Numba twins must equal them bit for bit), a naive loop for
the scatter-add, np.add.at for the dense gradient, and central differences. The gradient is an
uncoalesced RowSparse (one row per lookup); its coalesced form is checked against np.unique.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import corenn
import kernels
from kernels import cpu, reference
from kernels.cpu import embedding as embedding_cpu

DTYPES = [np.float32, np.float64]


@st.composite
def table_and_ids(draw, dtype=np.float64, max_rows=8):
    """A (V, D) table and ids of any shape, with repeats likely (N up to 3 V)."""
    v, d = draw(st.integers(1, max_rows)), draw(st.integers(1, 4))
    table = draw(hnp.arrays(dtype, (v, d), elements=st.floats(-2, 2, width=32)))
    ids = draw(
        hnp.arrays(
            np.int64,
            hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=5),
            elements=st.integers(0, v - 1),
        )
    )
    return table, ids  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_numba_kernels_equal_reference(dtype, data):
    table, ids = data.draw(table_and_ids(dtype))
    flat = ids.reshape(-1)
    got, want = cpu.embedding_fwd(table, flat), reference.embedding_fwd(table, flat)
    assert got.dtype == want.dtype and np.array_equal(got, want), "embedding_fwd differs"
    values = data.draw(
        hnp.arrays(dtype, (flat.size, table.shape[1]), elements=st.floats(-2, 2, width=32))
    )
    (gu, gs), (wu, ws) = (
        cpu.scatter_rows_sum(flat, values),
        reference.scatter_rows_sum(flat, values),
    )
    assert np.array_equal(gu, wu), f"unique ids {gu} != {wu}"
    assert gs.dtype == ws.dtype and np.array_equal(gs, ws), (
        f"scatter_rows_sum differs from the reference by {np.max(np.abs(gs - ws), initial=0):.3g}"
    )  # fmt: skip


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_parallel_gather_equals_serial(blocks, rng):
    table = rng.standard_normal((6, 3)).astype(np.float32)
    ids = rng.integers(0, 6, 8)
    out = np.full((8, 3), np.nan, np.float32)
    embedding_cpu._gather_blocks(table, ids, out, blocks)
    assert np.array_equal(out, table[ids]), f"{blocks} blocks: gather differs from table[ids]"


@pytest.mark.parametrize("spread", [5, 10**12], ids=["dense-span", "wide-span"])
def test_scatter_rows_sum_sums_in_input_order(spread, rng):
    ids = rng.choice(rng.integers(0, spread, 5), 300)  # 300 ids, at most 5 distinct
    values = rng.standard_normal((300, 3)).astype(np.float32) * 1e3
    unique, sums = kernels.get("scatter_rows_sum", values)(ids, values)
    for u, row in zip(unique, sums, strict=True):
        naive = np.zeros(3, np.float32)
        for n in np.flatnonzero(ids == u):  # left to right, as documented
            naive += values[n]
        assert np.array_equal(row, naive), f"row {u}: {row} != naive {naive}"


@given(pair=table_and_ids(), pad=st.booleans(), data=st.data())
def test_gradient_is_row_sparse_and_matches_dense_scatter(pair, pad, data):
    table, ids = pair
    padding_idx = int(ids.reshape(-1)[0]) if pad and ids.size else None
    weight = corenn.Parameter(table.copy())
    out = corenn.F.embedding(ids, weight, padding_idx)
    assert out.shape == ids.shape + (table.shape[1],)
    assert np.array_equal(out.data, table[ids]), "lookup differs from table[ids]"
    g = data.draw(hnp.arrays(np.float64, out.shape, elements=st.floats(-2, 2)))
    out.backward(g)
    grad = weight.grad
    assert isinstance(grad, corenn.RowSparse), f"gradient is {type(grad).__name__}"
    looked_up = ids.reshape(-1)[ids.reshape(-1) != padding_idx] if pad else ids.reshape(-1)
    assert np.array_equal(grad.indices, looked_up), f"rows {grad.indices}, ids {looked_up}"
    touched = np.unique(looked_up)
    coalesced = grad.coalesce()
    assert np.array_equal(coalesced.indices, touched), f"rows {coalesced.indices} != {touched}"
    dense = np.zeros_like(table)
    np.add.at(dense, ids.reshape(-1), g.reshape(-1, table.shape[1]))
    if padding_idx is not None:
        dense[padding_idx] = 0
    err = np.max(np.abs(grad.to_dense() - dense), initial=0)
    assert err < 1e-12, f"row-sparse gradient differs from np.add.at by {err:.3g}"


@given(pair=table_and_ids(max_rows=5))
def test_gradcheck(pair):
    table, ids = pair
    w = corenn.tensor(table, requires_grad=True)
    corenn.gradcheck(lambda t: corenn.F.embedding(ids, t) * 1.5, [w], rng=np.random.default_rng(0))


def test_layer_repeats_padding_and_accumulation(rng):
    emb = corenn.Embedding(6, 3, padding_idx=-1, dtype=np.float64, rng=rng)
    assert emb.padding_idx == 5 and not emb.weight.data[5].any(), "padding row not zero"
    ids = corenn.tensor(np.array([[1, 1, 5], [2, 1, 5]]))  # a Tensor of ids works too
    for _ in range(2):  # gradients accumulate over two backward calls
        emb(ids).sum().backward()
    dense = emb.weight.grad.to_dense()
    expected = np.zeros((6, 3))
    expected[1], expected[2] = 6.0, 2.0  # id 1 three times per call, id 2 once
    assert np.array_equal(dense, expected), f"accumulated gradient\n{dense}"


def test_initial_table_is_standard_normal_and_reproducible():
    a = corenn.Embedding(2000, 16, rng=np.random.default_rng(3))
    b = corenn.Embedding(2000, 16, rng=np.random.default_rng(3))
    assert a.weight.dtype == np.float32 and np.array_equal(a.weight.data, b.weight.data)
    w = a.weight.data
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02, f"mean {w.mean()}, std {w.std()}"


def test_a_large_table_gets_no_dense_gradient(rng):
    emb = corenn.Embedding(200_000, 8, rng=rng)
    ids = rng.integers(0, 200_000, (64, 10))
    emb(ids).sum().backward()
    grad = emb.weight.grad
    assert isinstance(grad, corenn.RowSparse) and grad.values.shape == (ids.size, 8)
    assert grad.coalesce().values.shape == (len(np.unique(ids)), 8)


def test_gradient_does_not_follow_a_refilled_id_buffer(rng):
    emb = corenn.Embedding(10, 2, dtype=np.float64, rng=rng)
    ids = np.array([1, 2, 2])
    out = emb(ids)
    ids[:] = 7  # a data loader reusing its buffer for the next batch
    out.sum().backward()
    assert np.array_equal(emb.weight.grad.indices, [1, 2, 2]), f"{emb.weight.grad.indices}"


def test_bad_ids_raise_clear_errors():
    emb = corenn.Embedding(10, 2)
    with pytest.raises(IndexError, match="index 10 is out of range for a table of 10 rows"):
        emb(np.array([[0, 10]]))
    with pytest.raises(IndexError, match="index -1 is out of range for a table of 10 rows"):
        emb(np.array([-1, 3]))
    with pytest.raises(TypeError, match="ids must be integers, got dtype float64"):
        emb(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="padding_idx 10 is out of range"):
        corenn.Embedding(10, 2, padding_idx=10)


@pytest.mark.parametrize("sparse_first", [True, False])
def test_tied_table_adds_row_sparse_and_dense_gradients(sparse_first):
    w = corenn.Parameter(np.ones((4, 2)))
    lookup = corenn.F.embedding(np.array([1, 1, 3]), w).sum()
    dense = (w * 2.0).sum()
    (lookup + dense if sparse_first else dense + lookup).backward()
    expected = np.array([[2.0, 2], [4, 4], [2, 2], [3, 3]])
    assert isinstance(w.grad, np.ndarray) and np.array_equal(w.grad, expected), f"{w.grad}"


@st.composite
def table_and_rows(draw):
    """A float64 table of shape (V,) + R (R of 0 to 2 axes) and ids of any shape, with
    repeats likely (N up to 3 V)."""
    v = draw(st.integers(1, 5))
    rest = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    table = draw(hnp.arrays(np.float64, (v, *rest), elements=st.floats(-2, 2)))
    ids = draw(
        hnp.arrays(
            np.int64,
            hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4),
            elements=st.integers(0, v - 1),
        )
    )
    return table, ids


@given(pair=table_and_rows(), data=st.data())
def test_take_rows_values_and_gradient(pair, data):
    table, ids = pair
    t = corenn.tensor(table, requires_grad=True)
    out = corenn.F.take_rows(t, ids)
    assert out.shape == ids.shape + table.shape[1:], f"shape {out.shape}"
    assert np.array_equal(out.data, table[ids]), "take_rows differs from table[ids]"
    g = data.draw(hnp.arrays(np.float64, out.shape, elements=st.floats(-2, 2)))
    out.backward(g)
    dense = np.zeros_like(table)
    np.add.at(dense, ids.reshape(-1), g.reshape((-1,) + table.shape[1:]))
    assert isinstance(t.grad, np.ndarray), f"gradient is {type(t.grad).__name__}, not dense"
    err = np.max(np.abs(t.grad - dense), initial=0)
    assert err < 1e-12, f"take_rows gradient differs from np.add.at by {err:.3g}"
    corenn.gradcheck(
        lambda a: corenn.F.take_rows(a * 1.5, ids), [corenn.tensor(table, requires_grad=True)],
        rng=np.random.default_rng(0),
    )  # fmt: skip


@given(ids=st.lists(st.integers(0, 3), min_size=2, max_size=12))
def test_take_rows_gradient_is_the_reference_scatter_bit_for_bit(ids):
    ids = np.array(ids)
    g = np.random.default_rng(len(ids)).standard_normal((len(ids), 3)).astype(np.float32) * 1e3
    grads = []
    for backend in ("cpu", "reference"):
        kernels.set_backend_override(backend)
        try:
            t = corenn.tensor(np.zeros((4, 3), np.float32), requires_grad=True)
            corenn.F.take_rows(t, ids).backward(g)
        finally:
            kernels.set_backend_override(None)
        grads.append(t.grad)
    assert np.array_equal(grads[0], grads[1]), "Numba scatter differs from the reference"


def test_take_rows_bad_ids_raise():
    table = corenn.tensor(np.zeros((3, 2)))
    with pytest.raises(IndexError, match="index 3 is out of range for a table of 3 rows"):
        corenn.F.take_rows(table, np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        corenn.F.take_rows(table, np.array([0.5]))
