"""Training throughput of the forecaster's network: corenn against the same architecture in
PyTorch (CPU), same threads, same batches, same run.

One training step: Embedding + LSTM + Dense(relu) + Dense + the linear skip from the last season,
forward on a batch of windows cut
from the synthetic shop's daily sales (:class:`bundlerec.forecast.features.Features`), the
masked pinball loss over H steps and Q levels, backward, gradient clipping at norm 1 and an
Adam step. Batch building is left out of both timings (the same precomputed batches feed both).
Reported: windows per second for each and the ratio corenn / PyTorch (issue 14's target: >= 1),
against PyTorch with packed sequences and with a padded batch read at each last step.

Run: ``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/bench_forecast.py [--threads 1]
[--batch 128] [--steps 200] [--repeats 3]``. PyTorch is a benchmark extra; without it only
corenn's number is printed.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import corenn
from bundlerec.forecast import to_grid
from bundlerec.forecast.features import Features
from bundlerec.forecast.model import Forecaster, QuantileNet
from bundlerec.forecast.synthetic import synthetic_sales

LEVELS = np.array([0.1, 0.5, 0.9], dtype=np.float32)


def batches(batch: int, count: int, horizon: int, context: int, seed: int = 0):
    events, _, _ = synthetic_sales(n_items=60, n_days=730, seed=seed)
    grid = to_grid(events, "D")
    features = Features(grid, horizon, context)
    model = Forecaster(horizon)
    series, origins = model._origins(features, grid.values.shape[1] - horizon)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        pick = rng.integers(0, series.size, batch)
        out.append(features.batch(series[pick], origins[pick], grid.values.shape[1] - horizon))
    return grid, features, out


def time_corenn(features, data, hidden, embedding_dim, horizon, steps) -> float:
    model = Forecaster(horizon, hidden=hidden, embedding_dim=embedding_dim)
    net = QuantileNet(len(features.grid.items), features.n_inputs, features.n_head, horizon,
                      len(LEVELS), hidden, embedding_dim, features.season, 1,
                      features.season_at, "last", np.random.default_rng(0))  # fmt: skip
    opt = corenn.optim.Adam(net.parameters(), lr=3e-3)

    def step(b):
        loss = model._loss(net, b, LEVELS)
        opt.zero_grad()
        loss.backward()
        corenn.clip_grad_norm(net.parameters(), 1.0)
        opt.step()

    for b in data[:5]:  # warm-up: kernels compiled, buffers allocated
        step(b)
    started = time.perf_counter()
    for k in range(steps):
        step(data[k % len(data)])
    return time.perf_counter() - started


def time_torch(features, data, hidden, embedding_dim, horizon, steps, packed) -> float:
    """``packed``: variable lengths by ``pack_padded_sequence``; otherwise the LSTM runs over
    the right-padded batch and the state is read at each window's last real step (the same
    numbers: padding comes after it)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(len(features.grid.items), embedding_dim)
            self.lstm = torch.nn.LSTM(features.n_inputs, hidden, batch_first=True)
            self.hidden = torch.nn.Linear(hidden + embedding_dim + features.n_head, hidden)
            self.out = torch.nn.Linear(hidden, horizon * len(LEVELS))
            self.skip = torch.nn.Linear(features.season, horizon * len(LEVELS), bias=False)
            self.at = slice(features.season_at, features.season_at + features.season)

        def forward(self, x, lengths, series, head):
            if packed:
                seq = torch.nn.utils.rnn.pack_padded_sequence(
                    x, lengths, batch_first=True, enforce_sorted=False
                )
                _, (h_n, _) = self.lstm(seq)
                last = h_n[-1]
            else:
                out, _ = self.lstm(x)
                last = out[torch.arange(len(series)), lengths - 1]
            z = torch.cat([last, self.embedding(series), head], dim=1)
            y = self.out(torch.relu(self.hidden(z))) + self.skip(head[:, self.at])
            return y.view(len(series), horizon, len(LEVELS))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    levels = torch.tensor(LEVELS)
    tensors = [
        (torch.from_numpy(b.x), torch.from_numpy(b.lengths), torch.from_numpy(b.series),
         torch.from_numpy(b.head), torch.from_numpy(b.target), torch.from_numpy(b.mask))
        for b in data
    ]  # fmt: skip

    def step(t):
        x, lengths, series, head, target, mask = t
        pred = net(x, lengths, series, head)
        d = target[:, :, None] - pred
        per = torch.maximum(levels * d, (levels - 1) * d) * mask[:, :, None]
        loss = per.sum() / max(float(mask.sum()) * len(LEVELS), 1.0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()

    for t in tensors[:5]:
        step(t)
    started = time.perf_counter()
    for k in range(steps):
        step(tensors[k % len(tensors)])
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=28)
    parser.add_argument("--context", type=int, default=56)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--embedding-dim", type=int, default=8)
    args = parser.parse_args(argv)
    corenn.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    _, features, data = batches(args.batch, 50, args.horizon, args.context)
    shape = (args.batch, args.context, features.n_inputs, args.hidden, args.horizon)
    print(f"forecaster training step, (B, L, F, K, H) = {shape}, Q = {len(LEVELS)}, "
          f"{args.threads} thread(s), {args.steps} steps, best of {args.repeats}")  # fmt: skip
    sizes = (args.hidden, args.embedding_dim, args.horizon, args.steps)
    ours, packed, padded = [], [], []
    for _ in range(args.repeats):  # interleaved, so that load on the machine hits both alike
        ours.append(time_corenn(features, data, *sizes))
        if torch is not None:
            packed.append(time_torch(features, data, *sizes, packed=True))
            padded.append(time_torch(features, data, *sizes, packed=False))
    rate = args.steps * args.batch / min(ours)
    print(f"corenn                     {rate:10.0f} windows/s")
    if torch is None:
        print("PyTorch not installed: no ratio", file=sys.stderr)
        return 0
    for name, times in (("packed sequences", packed), ("padded + gather", padded)):
        peer = args.steps * args.batch / min(times)
        print(f"PyTorch {name:<19}{peer:10.0f} windows/s  ratio corenn / PyTorch "
              f"{rate / peer:.2f}  (torch {torch.__version__})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
