"""LSTM forward and forward+backward, float32, batch first: ours against torch ``nn.LSTM``.

Run: ``BENCH_THREADS=1 python -m pytest bench/bench_lstm.py --benchmark-group-by=param``
(and again with ``BENCH_THREADS=2``). Both sides use the same thread count (``threads``
fixture); for each shape and mode ours runs right before torch, so the ratio compares the two
under the same machine load. Compilation and first-call costs are excluded by a warm-up call.
Forward runs without gradient recording on both sides; forward+backward backpropagates a
gradient of ones from the output sequence.

``python bench/bench_lstm.py [rounds]`` prints the comparison table instead, at 1 and 2 threads
(or ``BENCH_THREADS``): ours and torch alternate call by call for ``rounds`` rounds (default
15) and each keeps its best wall time, so a change of machine load hits both alike.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from interleave import interleaved

import corenn
from corenn import Tensor

SHAPES = [(256, 50, 64, 128), (512, 20, 32, 64), (64, 200, 128, 256), (1024, 10, 16, 32)]
IDS = ["x".join(map(str, s)) for s in SHAPES]


def _ours(shape, mode):
    n, steps, inputs, hidden = shape
    rng = np.random.default_rng(0)
    lstm = corenn.LSTM(inputs, hidden, rng=rng)
    x = Tensor(rng.standard_normal((n, steps, inputs)).astype(np.float32), requires_grad=True)
    ones = np.ones((n, steps, hidden), np.float32)

    def forward():
        with corenn.no_grad():
            lstm(x)

    def forward_backward():
        y, _ = lstm(x)
        y.backward(ones)

    return forward if mode == "fwd" else forward_backward


def _torch(torch, shape, mode):
    n, steps, inputs, hidden = shape
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(inputs, hidden, batch_first=True)
    x = torch.randn(n, steps, inputs, requires_grad=True)

    def forward():
        with torch.no_grad():
            lstm(x)

    def forward_backward():
        y, _ = lstm(x)
        y.backward(torch.ones_like(y))

    return forward if mode == "fwd" else forward_backward


@pytest.mark.parametrize("impl", ["ours", "torch"])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("shape", SHAPES, ids=IDS)
def test_lstm(benchmark, request, threads, shape, mode, impl):
    if impl == "torch":
        fn = _torch(request.getfixturevalue("torch"), shape, mode)
    else:
        fn = _ours(shape, mode)
    fn()  # warm-up: Numba compilation, first allocations
    benchmark.extra_info["threads"] = threads
    benchmark.pedantic(fn, rounds=10, iterations=1, warmup_rounds=1)


def main(rounds: int) -> None:
    import torch

    requested = os.environ.get("BENCH_THREADS")
    for threads in [int(requested)] if requested else [1, 2]:
        corenn.set_num_threads(threads)
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s), best of {rounds} interleaved rounds, ms")
        print(
            "| shape (B,T,I,H) | fwd ours | fwd torch | ratio | fwd+bwd ours | fwd+bwd torch ",
            end="",
        )
        print("| ratio |\n|---|---|---|---|---|---|---|")
        for shape, name in zip(SHAPES, IDS):
            cells = []
            for mode in ("fwd", "fwd+bwd"):
                best = interleaved(
                    {"ours": _ours(shape, mode), "torch": _torch(torch, shape, mode)}, rounds
                )
                ours, peer = best["ours"] * 1e3, best["torch"] * 1e3
                cells += [f"{ours:.2f}", f"{peer:.2f}", f"{ours / peer:.2f}"]
            print(f"| {name.replace('x', ',')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
