"""Embedding lookup + backward: ours (Numba and reference kernels) vs torch.nn.Embedding.

A 50,000 x 64 float32 table, a batch of 256 x 50 ids, one forward and one backward with a fixed
upstream gradient per round; gradients are cleared before each round. Both sides return an
uncoalesced row-sparse gradient (one row per lookup): ours a RowSparse, torch's ``sparse=True``
a sparse COO tensor; torch's ``sparse=False`` returns a dense (V, D) gradient. The ``+coalesce``
cases add the summing of repeated ids (one row per distinct id) that an optimizer step needs:
``RowSparse.coalesce()`` for ours, ``Tensor.coalesce()`` for torch. Compilation is excluded by a
warm-up round. Run: ``BENCH_THREADS=1 python -m pytest bench/bench_embedding.py``.
"""

import numpy as np
import pytest

import corenn
import kernels

V, D, BATCH, LENGTH = 50_000, 64, 256, 50
COALESCE = [False, True]
COALESCE_IDS = ["lookup+backward", "+coalesce"]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (BATCH, LENGTH))
    grad = rng.standard_normal((BATCH, LENGTH, D)).astype(np.float32)
    return ids, grad


@pytest.mark.parametrize("coalesce", COALESCE, ids=COALESCE_IDS)
@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_embedding_ours(benchmark, threads, batch, backend, coalesce):
    ids, grad = batch
    emb = corenn.Embedding(V, D, rng=np.random.default_rng(1))

    def step():
        emb.weight.grad = None
        emb(ids).backward(grad)
        if coalesce:
            emb.weight.grad = emb.weight.grad.coalesce()

    kernels.set_backend_override(backend)
    try:
        step()  # warm-up: Numba compilation (or cache load) happens here
        benchmark.extra_info["threads"] = threads
        benchmark(step)
    finally:
        kernels.set_backend_override(None)
    rows = len(np.unique(ids)) if coalesce else ids.size
    assert emb.weight.grad.values.shape == (rows, D)


@pytest.mark.parametrize("coalesce", COALESCE, ids=COALESCE_IDS)
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_embedding_torch(benchmark, torch, threads, batch, sparse, coalesce):
    if coalesce and not sparse:
        pytest.skip("a dense gradient has nothing to coalesce")
    ids, grad = batch
    emb = torch.nn.Embedding(V, D, sparse=sparse)
    ids_t, grad_t = torch.from_numpy(ids), torch.from_numpy(grad)

    def step():
        emb.weight.grad = None
        emb(ids_t).backward(grad_t)
        if coalesce:
            emb.weight.grad = emb.weight.grad.coalesce()

    step()
    benchmark.extra_info["threads"] = threads
    benchmark(step)
