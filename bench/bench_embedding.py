"""Embedding lookup + backward: ours (Numba and reference kernels) vs torch.nn.Embedding.

A 50,000 x 64 float32 table, a batch of 256 x 50 ids, one forward and one backward with a fixed
upstream gradient per round; gradients are cleared before each round. Ours returns a coalesced
row-sparse gradient (one summed row per distinct id); torch's ``sparse=True`` returns an
uncoalesced sparse tensor (one row per lookup) and ``sparse=False`` a dense (V, D) gradient.
Compilation is excluded by a warm-up round. Run:
``BENCH_THREADS=2 python -m pytest bench/bench_embedding.py``.
"""

import numpy as np
import pytest

import corenn
import kernels

V, D, BATCH, LENGTH = 50_000, 64, 256, 50


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (BATCH, LENGTH))
    grad = rng.standard_normal((BATCH, LENGTH, D)).astype(np.float32)
    return ids, grad


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_embedding_ours(benchmark, threads, batch, backend):
    ids, grad = batch
    emb = corenn.Embedding(V, D, rng=np.random.default_rng(1))

    def step():
        emb.weight.grad = None
        emb(ids).backward(grad)

    kernels.set_backend_override(backend)
    try:
        step()  # warm-up: Numba compilation (or cache load) happens here
        benchmark.extra_info["threads"] = threads
        benchmark(step)
    finally:
        kernels.set_backend_override(None)
    assert emb.weight.grad.values.shape == (len(np.unique(ids)), D)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_embedding_torch(benchmark, torch, threads, batch, sparse):
    ids, grad = batch
    emb = torch.nn.Embedding(V, D, sparse=sparse)
    ids_t, grad_t = torch.from_numpy(ids), torch.from_numpy(grad)

    def step():
        emb.weight.grad = None
        emb(ids_t).backward(grad_t)

    step()
    benchmark.extra_info["threads"] = threads
    benchmark(step)
