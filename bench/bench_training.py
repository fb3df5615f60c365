"""Training throughput of the two-tower sequence model: ours (corenn) vs the same net in PyTorch.

One epoch over synthetic shop sequences (2,000 users x ~20 events, 300 items, three item
attributes, one user attribute): D = H = 64, windows of 50 steps, batches of 256 windows, BCE
with 4 uniform negatives per window shared by its positions, Adam (lr 3e-3), gradient clipping
at norm 5. A sample is one predicted position (a step): samples/s = steps / epoch time. Both
sides do the same numpy work inside the timed epoch (step merging, windows, batches, event
dropout, negatives: bundlerec's own helpers); torch uses ``nn.Embedding`` (dense gradients, as
usual with ``torch.optim.Adam``), ``nn.LSTM`` (batch first, padded: outputs at valid positions do
not depend on the padding) and ``nn.Linear``. Warm-up rounds exclude compilation. Run:
``BENCH_THREADS=2 python -m pytest bench/bench_training.py`` and compare the two mean times
(``extra_info.samples_per_s`` in ``--benchmark-json``).
"""

import numpy as np
import pytest

from bundlerec.models import sequence_data
from bundlerec.models.sequence import SequenceModel
from bundlerec.models.towers import N_EVENT_ROWS
from bundlerec.prep import Interactions

USERS, ITEMS, EVENTS_PER_USER = 2_000, 300, 20
PARAMS = dict(
    dim=64,
    hidden=64,
    max_len=50,
    loss="bce",
    sampler="uniform",
    n_negatives=4,
    batch_size=256,
    lr=3e-3,
)
ITEM_SIZES = {"category": 20, "brand": 30, "price_bucket": 5}


@pytest.fixture(scope="module")
def shop():
    """Interactions (~40k events) and item / user attribute codes."""
    rng = np.random.default_rng(0)
    counts = rng.integers(EVENTS_PER_USER // 2, 3 * EVENTS_PER_USER // 2 + 1, USERS)
    users = np.repeat(np.arange(USERS), counts)
    walk = rng.integers(1, 8, users.size) + np.repeat(rng.integers(0, ITEMS, USERS), counts)
    items = (np.cumsum(walk) % ITEMS).astype(np.int64)
    n = users.size
    train = Interactions(
        users,
        items,
        np.arange(n),
        np.arange(n),
        rng.integers(0, 4, n).astype(np.int8),
        USERS,
        ITEMS,
    )
    item_features = {k: rng.integers(0, s, ITEMS) for k, s in ITEM_SIZES.items()}
    return train, item_features, {"age": rng.integers(0, 6, USERS)}


def _samples(train) -> int:
    return sequence_data.merge(train.user, train.item, train.event, train.timestamp).item.size


def test_training_ours(benchmark, threads, shop):
    train, items, users = shop
    model = SequenceModel(**PARAMS, epochs=1, patience=None, verbose=False)

    def epoch():
        model.fit(train, item_features=items, user_features=users)

    samples = _samples(train)
    benchmark.extra_info.update(threads=threads, samples=samples)
    benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
    benchmark.extra_info["samples_per_s"] = samples / benchmark.stats.stats.mean


def _torch_epoch(torch, train, items, users, seed):
    """One epoch of the same architecture, loss and optimizer in PyTorch."""
    nn, functional = torch.nn, torch.nn.functional
    d, h = PARAMS["dim"], PARAMS["hidden"]
    torch.manual_seed(seed)
    item_codes = torch.from_numpy(np.stack([np.r_[0, c + 1] for c in items.values()], axis=1))
    user_codes = torch.from_numpy(np.r_[0, users["age"] + 1])
    ids = nn.Embedding(ITEMS + 1, d, padding_idx=0)
    bias = nn.Embedding(ITEMS + 1, 1, padding_idx=0)
    attrs = nn.ModuleList(nn.Embedding(s + 1, d, padding_idx=0) for s in ITEM_SIZES.values())
    events = nn.Embedding(N_EVENT_ROWS, d)
    age = nn.Embedding(int(user_codes.max()) + 1, d, padding_idx=0)
    lstm = nn.LSTM(d, h, batch_first=True)
    out, attr_out = nn.Linear(h, d), nn.Linear(d, d, bias=False)
    net = nn.ModuleList([ids, bias, attrs, events, age, lstm, out, attr_out])
    optimizer = torch.optim.Adam(net.parameters(), lr=PARAMS["lr"])

    def vectors(rows):
        v = ids(rows)
        for j, table in enumerate(attrs):
            v = v + table(item_codes[rows, j])
        return v

    rng = np.random.default_rng(seed)
    steps = sequence_data.merge(train.user, train.item, train.event, train.timestamp)
    start, stop = sequence_data.windows(steps, USERS, PARAMS["max_len"])
    sampler = sequence_data.Sampler("uniform", steps.item, ITEMS, np.dtype("float32"))
    k = PARAMS["n_negatives"]
    for idx in sequence_data.batches(stop - start, PARAMS["batch_size"], rng):
        inputs, targets = sequence_data.window_batch(steps, start[idx], stop[idx], rng)
        batch = len(idx)
        rows = torch.from_numpy(targets + 1)
        neg = sampler.draw(rng, (batch, k))
        counted = np.concatenate(
            [np.zeros((*targets.shape, 1), bool), neg[:, None] == rows.numpy()[..., None]], 2
        )
        counted = ~counted & (targets >= 0)[..., None]
        neg = torch.from_numpy(neg)
        x = vectors(torch.from_numpy(inputs.items)) + events(torch.from_numpy(inputs.events))
        states, _ = lstm(x)
        u = out(states) + attr_out(age(user_codes[torch.from_numpy(inputs.users)]))[:, None]
        own = (u * vectors(rows)).sum(-1, keepdim=True) + bias(rows)
        other = u @ vectors(neg).transpose(1, 2) + bias(neg).reshape(batch, 1, k)
        logits = torch.cat([own, other], dim=2)
        labels = torch.zeros_like(logits)
        labels[..., 0] = 1
        weight = torch.from_numpy(counted.astype(np.float32))
        loss = functional.binary_cross_entropy_with_logits(logits, labels, weight, reduction="sum")
        loss = loss / weight.sum()
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
    return loss.item()


def test_training_torch(benchmark, torch, threads, shop):
    train, items, users = shop
    samples = _samples(train)
    benchmark.extra_info.update(threads=threads, samples=samples)
    benchmark.pedantic(
        _torch_epoch, args=(torch, train, items, users, 0), rounds=3, warmup_rounds=1
    )
    benchmark.extra_info["samples_per_s"] = samples / benchmark.stats.stats.mean
