"""End to end: Embedding -> LSTM -> Dense learns a variable-length sequence task with Adam."""

from __future__ import annotations

import numpy as np

import corenn
from corenn import F, Module


class FirstTokenClassifier(Module):
    """Predict the first token of a right-padded sequence from the LSTM's final state."""

    def __init__(self, vocab: int, classes: int, rng: np.random.Generator):
        super().__init__()
        self.embed = corenn.Embedding(vocab, 8, rng=rng)
        self.lstm = corenn.LSTM(8, 24, rng=rng, forget_bias=1.0)
        self.head = corenn.Dense(24, classes, rng=rng)

    def forward(self, ids, lengths):
        _, (h_n, _) = self.lstm(self.embed(ids), lengths=lengths)
        return self.head(h_n[0])


def _batch(rng, n, classes, max_len=8):
    lengths = rng.integers(2, max_len + 1, size=n)
    ids = rng.integers(1, classes + 1, size=(n, max_len))
    ids[np.arange(max_len)[None, :] >= lengths[:, None]] = 0  # padding id, never read
    return ids, lengths, ids[:, 0] - 1


def test_lstm_learns_to_remember_the_first_token():
    rng = np.random.default_rng(7)
    classes = 4
    model = FirstTokenClassifier(classes + 1, classes, rng)
    opt = corenn.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        ids, lengths, labels = _batch(rng, 64, classes)
        loss = F.cross_entropy(model(ids, lengths), labels)
        model.zero_grad()
        loss.backward()
        opt.step()
    ids, lengths, labels = _batch(np.random.default_rng(99), 1000, classes)
    with corenn.no_grad():
        pred = model(ids, lengths).data.argmax(axis=1)
    accuracy = float(np.mean(pred == labels))
    assert accuracy >= 0.95, (
        f"held-out accuracy {accuracy:.3f} < 0.95 (last loss {loss.item():.3f})"
    )
