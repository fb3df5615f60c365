"""Adam steps: ours (fused Numba kernel) vs torch.optim.Adam / SparseAdam, same thread count.

- dense: one Adam step on 10M float32 parameters with a fixed gradient; the peer is
  ``torch.optim.Adam(fused=True)`` (``foreach=True`` where this torch build has no fused CPU Adam;
  ``extra_info["variant"]`` says which ran).
- sparse: one lazy Adam step on a 1M x 64 float32 table with a row-sparse gradient of 12,800
  distinct rows (ours coalesces it first; the peer is ``torch.optim.SparseAdam``, which coalesces
  too). Our reference kernel is timed as well, to show what the Numba twin buys.

Compilation is excluded by a warm-up step. Run:
``BENCH_THREADS=2 python -m pytest bench/bench_optim.py``.
"""

import numpy as np
import pytest

import corenn
import kernels

N_DENSE = 10_000_000
V, D, ROWS = 1_000_000, 64, 12_800


@pytest.fixture(scope="module")
def dense_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal(N_DENSE, dtype=np.float32), rng.standard_normal(
        N_DENSE, dtype=np.float32
    )


@pytest.fixture(scope="module")
def sparse_data():
    rng = np.random.default_rng(1)
    table = rng.standard_normal((V, D), dtype=np.float32)
    rows = np.sort(rng.choice(V, ROWS, replace=False)).astype(np.int64)
    return table, rows, rng.standard_normal((ROWS, D), dtype=np.float32)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_adam_dense_ours(benchmark, threads, dense_data, backend):
    p0, g = dense_data
    p = corenn.Parameter(p0.copy())
    p.grad = g
    opt = corenn.optim.Adam([p], lr=1e-3)
    kernels.set_backend_override(backend)
    try:
        opt.step()  # warm-up: Numba compilation (or cache load), state allocation
        benchmark.extra_info["threads"] = threads
        benchmark(opt.step)
    finally:
        kernels.set_backend_override(None)
    assert np.all(np.isfinite(p.data))


def test_adam_dense_torch(benchmark, torch, threads, dense_data):
    p0, g = dense_data
    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    p.grad = torch.from_numpy(g.copy())
    try:
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
        opt.step()
        variant = "fused"
    except RuntimeError:  # no fused Adam on CPU in this build
        opt = torch.optim.Adam([p], lr=1e-3, foreach=True)
        opt.step()
        variant = "foreach"
    benchmark.extra_info.update(threads=threads, variant=variant)
    benchmark(opt.step)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_adam_sparse_ours(benchmark, threads, sparse_data, backend):
    table, rows, values = sparse_data
    p = corenn.Parameter(table.copy())
    grad = corenn.RowSparse(rows, values, (V, D))
    p.grad = grad
    opt = corenn.optim.Adam([p], lr=1e-3)
    kernels.set_backend_override(backend)
    try:
        opt.step()  # warm-up
        benchmark.extra_info["threads"] = threads
        benchmark(opt.step)
    finally:
        kernels.set_backend_override(None)
    untouched = np.setdiff1d(np.arange(1000), rows)
    assert np.array_equal(p.data[untouched], table[untouched]), "lazy Adam moved untouched rows"


def test_adam_sparse_torch(benchmark, torch, threads, sparse_data):
    table, rows, values = sparse_data
    p = torch.nn.Parameter(torch.from_numpy(table.copy()))
    p.grad = torch.sparse_coo_tensor(
        torch.from_numpy(rows)[None], torch.from_numpy(values), (V, D), check_invariants=True
    )
    opt = torch.optim.SparseAdam([p], lr=1e-3)
    opt.step()  # warm-up
    benchmark.extra_info["threads"] = threads
    benchmark(opt.step)
