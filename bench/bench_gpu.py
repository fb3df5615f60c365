"""GPU benchmarks: ours on the GPU against PyTorch CUDA (and against our CPU path for pgm).

Cases, each timed in interleaved rounds (best of ``rounds``), the GPU synchronised before the
clock stops, compilation and first allocations excluded by a warm-up call:

- LSTM forward and forward+backward, float32, batch first, at (B, T, I, H) = (256, 50, 64, 128)
  and (1024, 10, 16, 32): ``corenn.LSTM(...).to("gpu")`` against ``torch.nn.LSTM(...).cuda()``
  (cuDNN). Targets (issue 17): forward+backward within 1.5x of cuDNN at the first shape, faster
  than PyTorch at the second.
- An embedding-heavy training step: 1,024 sequences of 20 ids from 200,000 items, a 64-wide
  table, the mean of each sequence's rows, one dense score, BCE with logits, backward and Adam
  (ours: row-sparse lazy Adam on the touched rows; PyTorch: ``nn.Embedding`` with the usual dense
  gradient and ``torch.optim.Adam``).
- ``batch_query`` on alarm (``/work/shared/data/bif/alarm.bif.gz``) for 100,000 evidence cases
  (a target and 3 evidence variables from a forward sample): ``VariableElimination(model,
  device="gpu")`` against the same engine on the CPU (target: >= 10x). No PyTorch peer.

Run as a script (prints a table): ``python bench/bench_gpu.py [rounds]``, or as pytest-benchmark
cases: ``pytest bench/bench_gpu.py``. Without a GPU (cupy and a CUDA device) every case is
skipped with the reason; the PyTorch columns are skipped when torch has no CUDA.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interleave  # noqa: E402

import corenn  # noqa: E402
import kernels  # noqa: E402
import pgm  # noqa: E402
from corenn import F, Tensor  # noqa: E402

LSTM_SHAPES = [(256, 50, 64, 128), (1024, 10, 16, 32)]
EMBED = dict(n=1024, steps=20, items=200_000, dim=64)
ALARM = Path(__file__).resolve().parents[2] / "shared" / "data" / "bif" / "alarm.bif.gz"
N_CASES = 100_000


def gpu_reason() -> str | None:
    """Why the GPU cases cannot run here, or None when they can."""
    try:
        kernels.device_module("gpu")
    except kernels.GPUUnavailableError as err:
        return str(err)
    import kernels.gpu as gpu

    return "the CUDA simulator is on: no timings" if gpu.device_module() is np else None


def torch_cuda():
    """``torch`` when it has CUDA, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def synced(fn: Callable[[], object], torch=None) -> Callable[[], None]:
    """``fn`` followed by a wait for the GPU's queued work (ours, or torch's)."""
    import kernels.gpu as gpu

    def run():
        fn()
        gpu.synchronize()
        if torch is not None:
            torch.cuda.synchronize()

    return run


# -- LSTM -------------------------------------------------------------------------------------
def ours_lstm(shape, mode):
    n, steps, inputs, hidden = shape
    rng = np.random.default_rng(0)
    lstm = corenn.LSTM(inputs, hidden, rng=rng).to("gpu")
    x = Tensor(rng.standard_normal((n, steps, inputs)).astype(np.float32), requires_grad=True)
    x = x.to("gpu")
    ones = Tensor(np.ones((n, steps, hidden), np.float32)).to("gpu").data

    def forward():
        with corenn.no_grad():
            lstm(x)

    def forward_backward():
        y, _ = lstm(x)
        y.backward(ones)

    return synced(forward if mode == "fwd" else forward_backward)


def torch_lstm(torch, shape, mode):
    n, steps, inputs, hidden = shape
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(inputs, hidden, batch_first=True).cuda()
    x = torch.randn(n, steps, inputs, device="cuda", requires_grad=True)

    def forward():
        with torch.no_grad():
            lstm(x)

    def forward_backward():
        y, _ = lstm(x)
        y.backward(torch.ones_like(y))

    return synced(forward if mode == "fwd" else forward_backward, torch)


# -- embedding-heavy training step -------------------------------------------------------------
def embedding_batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, EMBED["items"], (EMBED["n"], EMBED["steps"]))
    return ids, rng.integers(0, 2, (EMBED["n"], 1)).astype(np.float32)


def ours_embedding_step():
    rng = np.random.default_rng(0)
    embed = corenn.Embedding(EMBED["items"], EMBED["dim"], rng=rng).to("gpu")
    score = corenn.Dense(EMBED["dim"], 1, rng=rng).to("gpu")
    opt = corenn.optim.Adam([*embed.parameters(), *score.parameters()], lr=1e-3)
    ids, target = (Tensor(a).to("gpu") for a in embedding_batch())

    def step():
        logits = score(embed(ids).mean(axis=1))
        loss = F.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return synced(step)


def torch_embedding_step(torch):
    torch.manual_seed(0)
    embed = torch.nn.Embedding(EMBED["items"], EMBED["dim"]).cuda()
    score = torch.nn.Linear(EMBED["dim"], 1).cuda()
    opt = torch.optim.Adam([*embed.parameters(), *score.parameters()], lr=1e-3)
    ids, target = (torch.from_numpy(a).cuda() for a in embedding_batch())
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def step():
        loss = bce(score(embed(ids).mean(dim=1)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return synced(step, torch)


# -- batch_query on alarm ---------------------------------------------------------------------
def alarm_workload():
    if not ALARM.exists():
        pytest.skip(f"{ALARM} is absent")
    model = pgm.read_bif(gzip.decompress(ALARM.read_bytes()).decode())
    rng = np.random.default_rng(1)
    nodes = model.nodes()
    picked = rng.choice(len(nodes), size=4, replace=False)
    target, evidence = nodes[picked[0]], [nodes[j] for j in picked[1:]]
    return model, target, model.simulate(N_CASES, rng)[evidence].reset_index(drop=True)


def ours_batch_query(model, target, cases, device):
    ve = pgm.VariableElimination(model, device=device)
    return synced(lambda: ve.batch_query([target], cases))


# -- pytest-benchmark cases -------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu():
    reason = gpu_reason()
    if reason:
        pytest.skip(f"no GPU benchmark: {reason}")


@pytest.mark.parametrize("impl", ["ours", "torch"])
@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("shape", LSTM_SHAPES, ids=["x".join(map(str, s)) for s in LSTM_SHAPES])
def test_lstm_gpu(benchmark, gpu, shape, mode, impl):
    torch = torch_cuda()
    if impl == "torch" and torch is None:
        pytest.skip("torch without CUDA: PyTorch peer skipped")
    fn = ours_lstm(shape, mode) if impl == "ours" else torch_lstm(torch, shape, mode)
    fn()
    benchmark.pedantic(fn, rounds=20, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("impl", ["ours", "torch"])
def test_embedding_step_gpu(benchmark, gpu, impl):
    torch = torch_cuda()
    if impl == "torch" and torch is None:
        pytest.skip("torch without CUDA: PyTorch peer skipped")
    fn = ours_embedding_step() if impl == "ours" else torch_embedding_step(torch)
    fn()
    benchmark.pedantic(fn, rounds=20, iterations=1, warmup_rounds=2)


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_alarm_batch_query(benchmark, gpu, device):
    fn = ours_batch_query(*alarm_workload(), device)
    fn()
    benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)


# -- the table --------------------------------------------------------------------------------
def main(rounds: int) -> None:
    reason = gpu_reason()
    if reason:
        print(f"skipped: no GPU benchmark ({reason})")
        return
    torch = torch_cuda()
    print(
        f"best of {rounds} interleaved rounds, ms, GPU synchronised; torch: "
        f"{'CUDA' if torch else 'skipped (no CUDA)'}"
    )
    print("| case | ours | peer | ours / peer |\n|---|---|---|---|")

    def row(name, fns):
        best = interleave.interleaved(fns, rounds)
        ours = best["ours"] * 1e3
        peer = best.get("peer")
        cells = (
            [f"{ours:.2f}", "-", "-"]
            if peer is None
            else [f"{ours:.2f}", f"{peer * 1e3:.2f}", f"{ours / (peer * 1e3):.2f}"]
        )
        print(f"| {name} | " + " | ".join(cells) + " |")

    for shape in LSTM_SHAPES:
        for mode in ("fwd", "fwd+bwd"):
            fns = {"ours": ours_lstm(shape, mode)}
            if torch:
                fns["peer"] = torch_lstm(torch, shape, mode)
            row(f"LSTM {mode} {shape} vs cuDNN", fns)
    fns = {"ours": ours_embedding_step()}
    if torch:
        fns["peer"] = torch_embedding_step(torch)
    row("embedding training step vs torch", fns)
    model, target, cases = alarm_workload()
    fns = {
        "ours": ours_batch_query(model, target, cases, "gpu"),
        "peer": ours_batch_query(model, target, cases, "cpu"),
    }
    row(f"alarm batch_query, {N_CASES:,} cases, GPU vs our CPU", fns)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
