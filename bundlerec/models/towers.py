"""The two towers of :class:`~bundlerec.models.sequence.SequenceModel` and its scoring heads.

Letters: B sequences, T time steps, G groups of P users scored against C candidate items each,
V item rows (item codes + 1), D tower width, H LSTM width.

Rows, not codes: inside the towers every item and user is shifted by one so that row 0 means
"none" (the start step of a sequence, padding, an unknown user). Row 0 of the item, item-attribute
and user-attribute tables is a zero ``padding_idx`` row that never trains, so "none" adds
nothing; the event table has one row per event type, "unknown" and "start" included.

Item tower (one vector and one bias per item)::

    v_i = E_id[i] + sum_f E_f[c_f(i)] + t_i         (D,)
    t_i = mean_{g in ngrams(i)} E_text[g]           (D,)   zero without text
    b_i = E_bias[i]                                 ()

``t_i`` is the text term (:mod:`bundlerec.models.text`): the mean of the hashed word and bigram
rows of the item's title and description, trained with the rest (:func:`corenn.F.embedding_bag`).
An item without events (cold start) has a zero ``E_id`` row: its vector is its attributes and
its text (:meth:`ItemTower.content`).

User tower (an LSTM over the steps of a sequence, then one Dense layer per position)::

    x_t = v_{item_t} + E_event[e_t]                 (D,)
    h_1 .. h_T = LSTM(x_1 .. x_T)                   (H,) each
    a = sum_g A_g[k_g(user)]                        (D,)   zero for an unknown user
    u_t = W [h_t ; a] + w = W_h h_t + W_a a + w     (D,)

Training reads the item tables once per batch, at the distinct rows of its inputs, targets and
negatives together (``ItemTower.lookup``), and gathers each array's vectors from those
(``F.take_rows``: a dense gradient, summed deterministically over repeated rows).

Heads turn a user vector ``u`` and an item vector ``v`` into a logit (the item bias is added by
the caller), for matched pairs (``pair``) or for every user against a group of candidates
(``cross``): ``dot`` is ``u . v`` (a catalogue ranks with one matrix product);
``mlp`` is ``w2 . relu(Wu u + Wv v + b1) + b2`` (the first layer splits over the concatenation
``[u ; v]``, so ranking needs ``relu`` over every (user, item) pair: batched and slower).
"""

from __future__ import annotations

import math

import numpy as np

import corenn
from bundlerec.models.text import TextBags
from corenn import F, Module, Tensor

__all__ = ["EVENT_UNKNOWN", "EVENT_START", "N_EVENT_ROWS", "ItemTower", "UserTower", "make_head"]

EVENT_UNKNOWN = 4
"""Event row of a step whose event type is not known (scoring; event dropout in training)."""
EVENT_START = 5
"""Event row of the start step that opens every sequence (its item row is 0)."""
N_EVENT_ROWS = 6
"""view, click, cart, purchase (the shared event codes 0..3), unknown, start."""


def _table(rows: int, dim: int, scale: float, dtype, rng, padding_idx: int | None = 0) -> Module:
    """An Embedding (rows, dim) with entries ``U(-scale, scale)`` (the padding row zero)."""
    emb = corenn.Embedding(rows, dim, padding_idx=padding_idx, dtype=dtype, rng=rng)
    emb.weight.data[...] = corenn.init.uniform((rows, dim), scale, rng=rng, dtype=dtype)
    if padding_idx is not None:
        emb.weight.data[padding_idx] = 0
    return emb


def _attributes(tower: Module) -> list[Module]:
    """The attribute tables ``attr0, attr1, ...`` of a tower."""
    return [getattr(tower, f"attr{j}") for j in range(len(tower.sizes))]


def _lookup_sum(tables: list[Module], ids: list[np.ndarray]) -> Tensor:
    """``sum_j tables[j](ids[j])`` (at least one table)."""
    total = tables[0](ids[0])
    for table, rows in zip(tables[1:], ids[1:], strict=True):
        total = total + table(rows)
    return total


def _unit_scale(dim: int, terms: int) -> float:
    """Bound ``a`` of ``U(-a, a)`` such that a sum of ``terms`` rows has expected norm ~1."""
    return math.sqrt(3.0 / (dim * terms))


class ItemTower(Module):
    """Item vectors from an id embedding plus attribute embeddings, and an item bias.

    Parameters
    ----------
    codes : ndarray, shape (V, F), int64
        Attribute rows of every item row (row 0 all zero; attribute code ``k`` is row ``k + 1``).
    sizes : sequence of int, length F
        Rows of each attribute table (attribute codes + 1).
    dim : int
        D.
    dtype : {"float32", "float64"}
    rng : numpy.random.Generator
        Initial weights.
    text : TextBags, optional
        Hashed n-gram bags of every item row (V bags, row 0 empty); with ``n_buckets``.
    n_buckets : int
        Rows of the text table (0: no text term).
    """

    def __init__(
        self,
        codes: np.ndarray,
        sizes: list[int],
        dim: int,
        dtype,
        rng,
        text: TextBags | None = None,
        n_buckets: int = 0,
    ) -> None:
        super().__init__()
        self.register_buffer("codes", np.asarray(codes, dtype=np.int64))
        self.n_buckets = int(n_buckets)
        scale = _unit_scale(dim, 1 + len(sizes) + (self.n_buckets > 0))
        self.ids = _table(codes.shape[0], dim, scale, dtype, rng)
        self.bias = _table(codes.shape[0], 1, 0.0, dtype, rng)
        for j, size in enumerate(sizes):
            setattr(self, f"attr{j}", _table(size, dim, scale, dtype, rng))
        self.sizes = [int(s) for s in sizes]
        if self.n_buckets:
            if text is None or len(text) != codes.shape[0]:
                raise ValueError(f"text needs one bag per item row ({codes.shape[0]})")
            self.text = _table(self.n_buckets, dim, scale, dtype, rng, padding_idx=None)
            self.set_bags(text)

    def set_bags(self, bags: TextBags) -> None:
        """Use ``bags`` (one per item row) as the items' n-grams."""
        self.register_buffer("text_ids", bags.ids)
        self.register_buffer("text_offsets", bags.offsets)

    @property
    def bags(self) -> TextBags | None:
        """The n-gram bags of every item row (None without a text term)."""
        return TextBags(self.text_ids, self.text_offsets) if self.n_buckets else None

    def content(self, rows: np.ndarray) -> Tensor:
        """Vectors of item ``rows`` (N,) without the id embedding: attributes and text, what a
        new item has (N, D)."""
        rows = np.asarray(rows, dtype=np.int64)
        codes = [self.codes[rows, j] for j in range(len(self.sizes))]
        parts = [t(c) for t, c in zip(_attributes(self), codes, strict=True)]
        if self.n_buckets:
            bags = self.bags.rows(rows)
            parts.append(F.embedding_bag(bags.ids, bags.offsets, self.text.weight))
        if not parts:
            return Tensor(np.zeros((rows.size, self.ids.weight.shape[1]), self.ids.weight.dtype))
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total

    def forward(self, rows: np.ndarray, keep_ids: np.ndarray | None = None) -> Tensor:
        """Vectors of item ``rows``.

        Parameters
        ----------
        rows : ndarray, any shape S, int64
            Item rows in ``[0, V)``.
        keep_ids : ndarray, shape S, bool, optional
            False where the id embedding is left out (id dropout in training: the vector is
            then the item's content alone, as a new item's is).

        Returns
        -------
        Tensor, shape S + (D,)
        """
        flat = rows.reshape(-1)
        codes = [self.codes[flat, j] for j in range(len(self.sizes))]
        ids = self.ids(flat)
        if keep_ids is not None:
            ids = ids * keep_ids.reshape(-1, 1).astype(self.ids.weight.dtype)
        vec = ids
        for table, c in zip(_attributes(self), codes, strict=True):
            vec = vec + table(c)
        if self.n_buckets:
            bags = self.bags.rows(flat)
            vec = vec + F.embedding_bag(bags.ids, bags.offsets, self.text.weight)
        return vec.reshape(*rows.shape, vec.shape[-1])

    def lookup(
        self, *rows: np.ndarray, id_dropout: float = 0.0, rng=None
    ) -> list[tuple[Tensor, Tensor]]:
        """Vectors and biases of several arrays of item rows, from one pass over the tables.

        Equal to ``[(self(r), self.biases(r)) for r in rows]``, but every table is read once, at
        the distinct rows of all the arrays together, and the results are gathered from those:
        training reads the same items as inputs, targets and negatives.

        Parameters
        ----------
        *rows : ndarray, any shapes S_k, int64
            Item rows in ``[0, V)``.
        id_dropout : float
            Share of the distinct items whose id embedding is left out (drawn with ``rng``),
            so that their content (attributes and text) learns to score them as new items are
            scored.
        rng : numpy.random.Generator, optional
            Needed when ``id_dropout > 0``.

        Returns
        -------
        list of (Tensor, Tensor)
            Per array: vectors of shape S_k + (D,) and biases of shape S_k.
        """
        flat = [r.reshape(-1) for r in rows]
        distinct, index = np.unique(np.concatenate(flat), return_inverse=True)
        keep = rng.random(distinct.size) >= id_dropout if id_dropout > 0 else None
        vectors, biases = self(distinct, keep), self.bias(distinct)
        parts = np.split(index.reshape(-1), np.cumsum([f.size for f in flat])[:-1])
        return [
            (
                F.take_rows(vectors, part.reshape(r.shape)),
                F.take_rows(biases, part).reshape(r.shape),
            )
            for r, part in zip(rows, parts, strict=True)
        ]

    def biases(self, rows: np.ndarray) -> Tensor:
        """Biases of item ``rows`` (any shape S), a Tensor of shape S."""
        return self.bias(rows.reshape(-1)).reshape(rows.shape)

    def grown(
        self, new_codes: np.ndarray, sizes: list[int], rng, new_text: TextBags | None = None
    ) -> ItemTower:
        """A copy with extra items appended (cold start).

        New items get a zero id row, so their vectors come from their attributes and text
        alone, and the mean bias of the old items; attribute tables grow to ``sizes`` with zero
        rows for new attribute codes; the text table is kept.

        Parameters
        ----------
        new_codes : ndarray, shape (n_new, F), int64
            Attribute rows of the new items.
        sizes : list of int, length F
            New table sizes (each at least the old one).
        rng : numpy.random.Generator
            Only used to build the new tables before their rows are copied or zeroed.
        new_text : TextBags, optional
            n-gram bags of the new items (default: none, empty bags).
        """
        old_rows = self.codes.shape[0]
        dim = self.ids.weight.shape[1]
        dtype = self.ids.weight.dtype
        text = None
        if self.n_buckets:
            n_new = new_codes.shape[0]
            new_text = new_text or TextBags(np.zeros(0), np.zeros(n_new + 1))
            text = self.bags.concat(new_text)
        codes = np.concatenate([self.codes, new_codes])
        grown = ItemTower(codes, sizes, dim, dtype, rng, text, self.n_buckets)
        if self.n_buckets:
            grown.text.weight.data[...] = self.text.weight.data
        for old, new in zip(
            [self.ids, *_attributes(self)], [grown.ids, *_attributes(grown)], strict=True
        ):
            new.weight.data[...] = 0
            new.weight.data[: old.weight.shape[0]] = old.weight.data
        known = self.bias.weight.data[1:old_rows]
        grown.bias.weight.data[:old_rows] = self.bias.weight.data
        grown.bias.weight.data[old_rows:] = known.mean() if known.size else 0
        return grown


class UserTower(Module):
    """An LSTM over the steps of a sequence, combined with user attributes by one Dense layer.

    Parameters
    ----------
    user_codes : ndarray, shape (n_users + 1, G), int64
        Attribute rows per user row (row 0, the unknown user, all zero).
    sizes : sequence of int, length G
        Rows of each user attribute table (attribute codes + 1).
    dim, hidden : int
        D and H.
    dtype : {"float32", "float64"}
    rng : numpy.random.Generator
    """

    def __init__(
        self, user_codes: np.ndarray, sizes: list[int], dim: int, hidden: int, dtype, rng
    ) -> None:
        super().__init__()
        self.register_buffer("codes", np.asarray(user_codes, dtype=np.int64))
        self.events = _table(N_EVENT_ROWS, dim, _unit_scale(dim, 1), dtype, rng, None)
        self.lstm = corenn.LSTM(dim, hidden, num_layers=1, dropout=0.0, dtype=dtype, rng=rng)
        scale = _unit_scale(dim, max(len(sizes), 1))
        for j, size in enumerate(sizes):
            setattr(self, f"attr{j}", _table(size, dim, scale, dtype, rng))
        self.sizes = [int(s) for s in sizes]
        self.out = corenn.Dense(hidden, dim, activation=None, bias=True, dtype=dtype, rng=rng)
        if sizes:
            self.attr_out = corenn.Dense(
                dim, dim, activation=None, bias=False, dtype=dtype, rng=rng
            )

    def forward(
        self,
        steps: Tensor,
        events: np.ndarray,
        lengths: np.ndarray,
        users: np.ndarray,
        every: bool,
    ) -> Tensor:
        """User vectors ``u_t = W [h_t ; a] + w`` at every step, or after each last step.

        Parameters
        ----------
        steps : Tensor, shape (B, T, D)
            Item vectors of the steps (zero for the start step and padding).
        events : ndarray, shape (B, T), int64
            Event rows of the steps.
        lengths : ndarray, shape (B,), int64
            Valid steps per sequence (>= 1); later steps are padding.
        users : ndarray, shape (B,), int64
            User rows (0 for unknown).
        every : bool
            Return every step's vector (training) or only the last valid step's (scoring).

        Returns
        -------
        Tensor, shape (B, T, D) if ``every`` else (B, D)
            ``W [h ; a]`` is computed as ``W_h h + W_a a``, the same affine map.
        """
        batch, time, dim = steps.shape
        out, (h_n, _) = self.lstm(steps + self.events(events), lengths)
        hidden = out.shape[2]
        u = _affine(self.out, out) if every else self.out(h_n.reshape(batch, hidden))
        if not self.sizes:
            return u
        codes = self.codes[users]
        ids = [codes[:, j] for j in range(len(self.sizes))]
        attr = self.attr_out(_lookup_sum(_attributes(self), ids))
        return u + (attr.reshape(batch, 1, dim) if every else attr)


def _affine(layer: Module, x: Tensor) -> Tensor:
    """A Dense layer applied to the last axis of ``x`` of any rank (as one 2-D product)."""
    out = layer(x.reshape(-1, x.shape[-1]))
    return out.reshape(*x.shape[:-1], out.shape[-1])


class DotHead(Module):
    """``logit = u . v``: a catalogue ranks with one matrix product."""

    def pair(self, u: Tensor, v: Tensor) -> Tensor:
        """Logits of matched pairs: ``u``, ``v`` of shape S + (D,) give shape S."""
        return (u * v).sum(axis=-1)

    def cross(self, u: Tensor, v: Tensor) -> Tensor:
        """Logits of every user against every candidate of its group.

        Parameters
        ----------
        u : Tensor, shape (G, P, D)
        v : Tensor, shape (G, C, D)

        Returns
        -------
        Tensor, shape (G, P, C)
        """
        return u @ v.transpose(0, 2, 1)


class MLPHead(Module):
    """``logit = w2 . relu(Wu u + Wv v + b1) + b2``, the MLP over ``[u ; v]``.

    Parameters
    ----------
    dim, hidden : int
        D and the MLP width.
    dtype : {"float32", "float64"}
    rng : numpy.random.Generator
    """

    def __init__(self, dim: int, hidden: int, dtype, rng) -> None:
        super().__init__()
        self.user = corenn.Dense(dim, hidden, activation=None, bias=True, dtype=dtype, rng=rng)
        self.item = corenn.Dense(dim, hidden, activation=None, bias=False, dtype=dtype, rng=rng)
        self.out = corenn.Dense(hidden, 1, activation=None, bias=True, dtype=dtype, rng=rng)

    def _logit(self, z: Tensor) -> Tensor:
        return _affine(self.out, F.relu(z)).reshape(z.shape[:-1])

    def pair(self, u: Tensor, v: Tensor) -> Tensor:
        """Same contract as :meth:`DotHead.pair`."""
        return self._logit(_affine(self.user, u) + _affine(self.item, v))

    def cross(self, u: Tensor, v: Tensor) -> Tensor:
        """Same contract as :meth:`DotHead.cross`; builds a (G, P, C, hidden) array."""
        a, b = _affine(self.user, u), _affine(self.item, v)
        (g, p, width), c = a.shape, b.shape[1]
        return self._logit(a.reshape(g, p, 1, width) + b.reshape(g, 1, c, width))


def make_head(kind: str, dim: int, hidden: int, dtype, rng) -> Module:
    """The head named ``kind`` (``"dot"`` or ``"mlp"``)."""
    if kind == "dot":
        return DotHead()
    return MLPHead(dim, hidden, dtype, rng)
