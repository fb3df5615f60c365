"""The two-tower sequence model: an LSTM user tower over recent items, an attribute item tower.

Letters: S merged steps, W training windows, B sequences in a batch, T time steps, P scored
positions, K negatives per position, n cases, V items, D tower width, H LSTM width.
The towers themselves are in :mod:`bundlerec.models.towers`.

Sequences
    A user's events are merged into *steps*: consecutive events of one user on one item (a view,
    a cart and a purchase of it) form one step whose event type is the strongest of them; a
    case's context is merged the same way. A user's steps are cut, from the most recent end,
    into windows of at most ``max_len`` steps; a window ``s_1 .. s_l`` is fed as
    ``[start, s_1 .. s_{l-1}]`` and predicts ``[s_1 .. s_l]``, so one LSTM pass over a (B, T)
    batch trains every prefix at once, padding masked. The first step of a window is predicted
    from the start step alone: an empty history, which is how a case without context scores.
    Windows are batched with windows of similar length. Steps of one user at one time (the
    items of a basket) have no order: every epoch shuffles them afresh.
Event types
    Cases carry items only, so scoring feeds every context step with the "unknown event" row;
    training replaces a step's event type with "unknown" with probability 1/2 (event dropout)
    so that the model serves both.
Losses
    ``"sampled_softmax"`` (default): softmax over the positive and ``32 * n_negatives`` items
    drawn once per batch and shared by all positions, with the logQ correction
    ``logit - log q(item)`` and accidental hits removed. ``"bce"``: binary cross-entropy of each
    positive against ``n_negatives`` items drawn per window and shared by its positions (a
    negative that is a position's positive does not count there); sharing them turns the
    negatives' logits into one (T, D) @ (D, K) product per window. Negatives come from
    ``sampler``: ``"popularity"`` (step counts ** 0.75, default) or ``"uniform"``. Item biases
    start at the log step counts (relative to their mean), so an untrained model ranks by
    popularity. Measured on held-out parts of the training files (``bench/quality.py``): with
    a few updates per epoch (large batches, BCE against a few uniform negatives) the model
    stayed below popularity on MovieLens; the softmax over a popularity-drawn pool and batches
    of 32 windows gave it the best validation ranking of all models.
Early stopping
    On the hit rate at 10 over the whole catalogue (context items excluded) of validation cases:
    with ``valid`` events, one per valid user from the user's first valid basket: one of its
    distinct items (drawn) is the target, the user's training steps followed by the basket's
    other items are the context (a one-item basket is a next-item case, a larger one a basket
    completion case); otherwise each user's *last training step* (users with at least two
    steps), which is then held out of training. Training stops after ``patience`` epochs
    without improvement and the best weights are restored; ``patience=None`` trains ``epochs``
    epochs on every step.

Everything random comes from numpy Generators seeded by ``seed``: the same seed, data and thread
count give identical scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

import corenn
from bundlerec import progress
from bundlerec.models.sequence_data import (
    Inputs,
    Sampler,
    Steps,
    Validation,
    batches,
    context_inputs,
    hold_out_last,
    merge,
    padded,
    shuffle_ties,
    window_batch,
    windows,
)
from bundlerec.models.text import TextBags, text_bags
from bundlerec.models.towers import ItemTower, UserTower, make_head
from bundlerec.parallel import map_blocks
from corenn import F

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.prep import Interactions

__all__ = ["SequenceModel"]

_FORMAT = "bundlerec.SequenceModel/1"
_N_EVENT_TYPES = 4
_CLIP_NORM = 5.0
_VALID_K = 10
_SOFTMAX_POOL = 32
_CASE_CHUNK = 2048
_SCORE_ROWS = 64  # shoppers per block of the (dot head) item product
_MLP_CELLS = 1 << 22
_VALID_FIELDS = ("user", "item", "basket")


# -- the network ----------------------------------------------------------------------------------
class _Net(corenn.Module):
    """Item tower, user tower and head; see :mod:`bundlerec.models.towers`."""

    def __init__(self, items: ItemTower, users: UserTower, head: corenn.Module) -> None:
        super().__init__()
        self.items = items
        self.users = users
        self.head = head

    def encode(self, inputs: Inputs, every: bool) -> corenn.Tensor:
        """User vectors at every step (B, T, D), or after each sequence's last step (B, D)."""
        steps = self.items(inputs.items)
        return self.users(steps, inputs.events, inputs.lengths, inputs.users, every)


# -- validation of arguments ----------------------------------------------------------------------
def _positive_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _codes(name: str, values: Any, n: int, what: str) -> np.ndarray:
    """``values`` as (n,) int64 codes (-1 = unknown value: the zero row), or raise naming
    ``name``."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape}, expected ({n},): one code per {what}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer codes, got dtype {arr.dtype}")
    if arr.size and arr.min() < -1:
        raise ValueError(f"{name} holds code {arr.min()}; codes start at 0 (-1: unknown)")
    return arr.astype(np.int64)


def _feature_rows(
    features: Mapping[str, Any] | None, n: int, arg: str, what: str
) -> dict[str, np.ndarray]:
    """Validated attribute codes: name -> (n,) int64."""
    if features is None:
        return {}
    if not isinstance(features, Mapping):
        raise TypeError(f"{arg} must be a dict of name -> codes, got {type(features).__name__}")
    return {str(k): _codes(f"{arg}[{k!r}]", v, n, what) for k, v in features.items()}


def _table(features: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, list[int]]:
    """(n + 1, F) attribute rows (row 0 zero, code c -> row c + 1) and table sizes."""
    rows = np.zeros((n + 1, len(features)), dtype=np.int64)
    for j, codes in enumerate(features.values()):
        rows[1:, j] = codes + 1
    return rows, [int(c.max(initial=-1)) + 2 for c in features.values()]


def _check_events(events: Interactions, arg: str, n_items: int, n_users: int | None) -> None:
    """Raise naming ``arg`` if item, user or event codes fall outside the model's ranges."""
    for name, high in (("item", n_items), ("user", n_users), ("event", _N_EVENT_TYPES)):
        codes = np.asarray(getattr(events, name))
        if codes.shape != np.shape(events.item):
            raise ValueError(
                f"{arg}.{name} has shape {codes.shape}, {arg}.item has {np.shape(events.item)}"
            )
        if high is not None and codes.size and (codes.min() < 0 or codes.max() >= high):
            bad = codes.min() if codes.min() < 0 else codes.max()
            raise ValueError(f"{arg}.{name} holds code {bad} outside [0, {high})")


# -- the model ------------------------------------------------------------------------------------
class SequenceModel:
    """Two-tower next-item model: an LSTM over the user's recent steps against item vectors.

    ``score = u . v + b`` (``head="dot"``, a catalogue ranks with one (n, D) @ (D, V) product)
    or ``mlp([u ; v]) + b`` (``head="mlp"``, ranked in batches of (case, item) pairs: slower).
    See the module docstring for sequences, losses, sampling and early stopping.

    Parameters
    ----------
    dim : int
        D, the width of both towers and of every embedding.
    hidden : int
        H, the LSTM width (and the MLP head's width).
    max_len : int
        Longest sequence fed to the LSTM, the start step included (>= 2).
    loss : {"bce", "sampled_softmax"}
    n_negatives : int
        K negatives per position ("bce"); the shared pool is ``32 K`` ("sampled_softmax").
    epochs, batch_size : int
        Most epochs; windows per batch.
    lr : float
        Adam learning rate.
    patience : int or None
        Epochs without validation improvement before stopping; None: no validation.
    head : {"dot", "mlp"}
    seed : int
        Seeds every random choice (initial weights, batches, negatives, event dropout).
    verbose : bool, default False
        Progress bars and epoch lines on stderr (:mod:`bundlerec.progress`); when False the
        epoch lines go to the ``bundlerec`` logger at INFO level.
    dtype : {"float32", "float64"}
    sampler : {"uniform", "popularity"}
        Distribution of negatives.
    text_buckets : int
        Rows of the hashed n-gram table of item texts (:mod:`bundlerec.models.text`); used
        when :meth:`fit` gets ``item_text`` with some text; 0 turns text off.
    id_dropout : float
        Share of the items of each training batch whose id embedding is left out, so that
        their attributes and text learn to score them (a new item has no id embedding).

    Attributes
    ----------
    n_items_, n_users_ : int
        Vocabulary sizes after :meth:`fit` (and :meth:`grow_items`, :meth:`fine_tune`).
    history_ : list of dict
        Per epoch of the last fit / fine-tune: ``epoch``, ``loss`` (mean over batches) and
        ``valid_hit@10`` (when validating).
    """

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 64,
        max_len: int = 50,
        loss: str = "sampled_softmax",
        n_negatives: int = 16,
        epochs: int = 40,
        batch_size: int = 32,
        lr: float = 3e-3,
        patience: int | None = 5,
        head: str = "dot",
        seed: int = 0,
        verbose: bool = False,
        dtype: str = "float32",
        sampler: str = "popularity",
        text_buckets: int = 1 << 14,
        id_dropout: float = 0.0,
    ) -> None:
        self.dim = _positive_int("dim", dim)
        self.hidden = _positive_int("hidden", hidden)
        self.max_len = _positive_int("max_len", max_len, low=2)
        self.loss = _choice("loss", loss, ("bce", "sampled_softmax"))
        self.n_negatives = _positive_int("n_negatives", n_negatives)
        self.epochs = _positive_int("epochs", epochs)
        self.batch_size = _positive_int("batch_size", batch_size)
        if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = float(lr)
        self.patience = None if patience is None else _positive_int("patience", patience)
        self.head = _choice("head", head, ("dot", "mlp"))
        self.seed = _positive_int("seed", seed, low=0)
        self.verbose = bool(verbose)
        self.dtype = _choice("dtype", str(np.dtype(dtype)), ("float32", "float64"))
        self.sampler = _choice("sampler", sampler, ("uniform", "popularity"))
        self.text_buckets = _positive_int("text_buckets", text_buckets, low=0)
        if not (isinstance(id_dropout, (int, float)) and 0.0 <= id_dropout < 1.0):
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout!r}")
        self.id_dropout = float(id_dropout)
        self._net: _Net | None = None
        # (V, D) item vectors, (V,) biases and [v, b]^T of the current weights, computed on
        # first use; every change of the weights (_build, training, grow_items, from_state)
        # drops them.
        self._item_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.history_: list[dict[str, float]] = []

    @property
    def fine_tunes(self) -> int:
        """Calls of :meth:`fine_tune` since :meth:`fit` (what changed the weights since)."""
        return self._tunes

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able)."""
        names = ("dim", "hidden", "max_len", "loss", "n_negatives", "epochs", "batch_size", "lr")
        more = ("patience", "head", "seed", "verbose", "dtype", "sampler", "text_buckets")
        more += ("id_dropout",)
        return {name: getattr(self, name) for name in names + more}

    # -- fitting ----------------------------------------------------------------------------------
    def fit(
        self,
        train: Interactions,
        item_features: dict[str, np.ndarray] | None = None,
        user_features: dict[str, np.ndarray] | None = None,
        valid: Interactions | None = None,
        item_text: list[str] | np.ndarray | None = None,
    ) -> SequenceModel:
        """Train from scratch on ``train``'s event sequences.

        Parameters
        ----------
        train : Interactions
            Events sorted by (user, timestamp).
        item_features : dict of str to ndarray (n_items,) int64, optional
            Item attribute codes (category, brand, price bucket, ...), contiguous from 0.
        user_features : dict of str to ndarray (n_users,) int64, optional
            User attribute codes, contiguous from 0.
        valid : Interactions, optional
            Later events of (some of) the users for early stopping (same vocabularies); default:
            each user's last training step.
        item_text : sequence of str (n_items,), optional
            Title and description of each item: the item tower's text term when any is
            non-empty and ``text_buckets > 0``.

        Returns
        -------
        SequenceModel
            ``self``.

        Raises
        ------
        ValueError, TypeError
            Naming the argument: codes out of range, features of the wrong length or dtype.
        """
        n_items, n_users = int(train.n_items), int(train.n_users)
        _check_events(train, "train", n_items, n_users)
        items = _feature_rows(item_features, n_items, "item_features", "item")
        users = _feature_rows(user_features, n_users, "user_features", "user")
        steps = merge(train.user, train.item, train.event, train.timestamp)
        if steps.item.size == 0:
            raise ValueError("train holds no events")
        init, run = (np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(2))
        self._build(
            (*_table(items, n_items), *self._text(item_text, n_items)),
            _table(users, n_users),
            init,
        )
        # Start from the popularity ranking: bias = log step count relative to the mean.
        counts = np.bincount(steps.item, minlength=n_items) + 1.0
        self._net.items.bias.weight.data[1:, 0] = np.log(counts / counts.mean())
        self._item_names, self._user_names = list(items), list(users)
        self.n_items_, self.n_users_, self._tunes = n_items, n_users, 0
        self._run(steps, valid, self.epochs, self.lr, run)
        return self

    def fine_tune(
        self,
        train: Interactions,
        epochs: int = 2,
        lr: float | None = None,
        user_features: dict[str, np.ndarray] | None = None,
        valid: Interactions | None = None,
    ) -> SequenceModel:
        """Continue training from the current weights on (new) events, with a fresh optimizer.

        Parameters
        ----------
        train : Interactions
            Item codes must be known (call :meth:`grow_items` for new items first); new users
            (codes >= ``n_users_``) are welcome.
        epochs : int
        lr : float, optional
            Default: the constructor's ``lr``.
        user_features : dict of str to ndarray (train.n_users,) int64, optional
            Attribute codes of every user, the fitted names and code ranges; default: the fitted
            codes, unknown attributes for new users.
        valid : Interactions, optional
            As in :meth:`fit` (early stopping follows ``patience``).
        """
        net = self._fitted()
        epochs = _positive_int("epochs", epochs)
        n_users = int(train.n_users)
        if train.n_items > self.n_items_:
            raise ValueError(
                f"train has n_items={train.n_items} but the model knows {self.n_items_} items: "
                "call grow_items() for the new items first"
            )
        _check_events(train, "train", self.n_items_, n_users)
        if user_features is not None:
            rows = self._known_codes(user_features, n_users, net.users.sizes, self._user_names)
        else:
            rows = np.zeros((max(n_users, self.n_users_) + 1, len(self._user_names)), np.int64)
            rows[: self.n_users_ + 1] = net.users.codes
        net.users.register_buffer("codes", rows)
        self.n_users_ = rows.shape[0] - 1
        self._tunes += 1
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self._tunes]))
        lr = self.lr if lr is None else lr
        steps = merge(train.user, train.item, train.event, train.timestamp)
        self._run(steps, valid, epochs, lr, rng)
        return self

    def _text(self, item_text, n_items: int) -> tuple[TextBags | None, int]:
        """(bags of the n_items + 1 item rows, row 0 empty; table rows), or (None, 0) without
        text."""
        if item_text is None or self.text_buckets == 0:
            return None, 0
        texts = [str(t) for t in item_text]
        if len(texts) != n_items:
            raise ValueError(f"item_text has {len(texts)} texts, expected {n_items}: one per item")
        if not any(t.strip() for t in texts):
            return None, 0
        return text_bags(["", *texts], self.text_buckets), self.text_buckets

    @property
    def has_text(self) -> bool:
        """Whether the item tower has a text term."""
        return bool(self._fitted().items.n_buckets)

    def item_text_bags(self) -> tuple[TextBags, int] | None:
        """The hashed n-gram bags of every item, in code order, and the number of buckets
        (:mod:`bundlerec.models.text`); None without a text term."""
        items = self._fitted().items
        if not items.n_buckets:
            return None
        return items.bags.rows(np.arange(1, self.n_items_ + 1)), items.n_buckets

    def set_item_text(self, codes: np.ndarray, texts: list[str]) -> SequenceModel:
        """Give items ``codes`` the texts ``texts`` (e.g. new items); no-op without text."""
        net = self._fitted()
        if net.items.n_buckets:
            bags = text_bags([str(t) for t in texts], net.items.n_buckets)
            net.items.set_bags(net.items.bags.replace(np.asarray(codes) + 1, bags))
            self._item_cache = None
        return self

    def borrow(
        self, codes: np.ndarray, donors: np.ndarray, weights: np.ndarray, ids: bool = True
    ) -> SequenceModel:
        """Start items ``codes`` (C,) from their donors (C, K): each one's bias, and with
        ``ids`` its id embedding, become the ``weights`` (C, K) mean of its donors'."""
        net = self._fitted()
        rows, given = np.asarray(codes) + 1, np.asarray(donors) + 1
        w = np.asarray(weights, dtype=net.items.bias.weight.dtype)[..., None]
        tables = [net.items.bias, *([net.items.ids] if ids else [])]
        for table in tables:
            table.weight.data[rows] = (table.weight.data[given] * w).sum(axis=1)
        self._item_cache = None
        return self

    def content_vectors(self, codes: np.ndarray) -> np.ndarray:
        """(n, D) float32 item vectors without the id embedding (attributes and text: what a new
        item has) of item ``codes``."""
        net = self._fitted()
        with corenn.no_grad():
            return net.items.content(np.asarray(codes) + 1).numpy().astype(np.float32)

    def grow_items(
        self,
        n_new: int,
        item_features_new: dict[str, np.ndarray] | None = None,
        item_text_new: list[str] | None = None,
    ) -> SequenceModel:
        """Append ``n_new`` items (codes ``n_items_ ..``) that no event has shown yet.

        Their vectors come from their attributes and text alone (zero id embedding) and their
        bias is the mean bias of the known items; new attribute codes get zero embeddings.

        Parameters
        ----------
        n_new : int
        item_features_new : dict of str to ndarray (n_new,) int64
            Codes of exactly the fitted item attributes.
        item_text_new : list of str (n_new,), optional
            Their titles and descriptions (none by default; see :meth:`set_item_text`).
        """
        net = self._fitted()
        n_new = _positive_int("n_new", n_new)
        new = _feature_rows(item_features_new, n_new, "item_features_new", "new item")
        if list(new) != self._item_names:
            raise KeyError(
                f"item_features_new has attributes {list(new)}, the model was fitted with "
                f"{self._item_names}"
            )
        rows, sizes = _table(new, n_new)
        sizes = [max(a, b) for a, b in zip(sizes, net.items.sizes, strict=True)]
        text = None
        if item_text_new is not None and net.items.n_buckets:
            if len(item_text_new) != n_new:
                raise ValueError(f"item_text_new has {len(item_text_new)} texts, expected {n_new}")
            text = text_bags([str(t) for t in item_text_new], net.items.n_buckets)
        net.items = net.items.grown(rows[1:], sizes, np.random.default_rng(self.seed), text)
        self.n_items_ += n_new
        self._item_cache = None
        return self

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, cases: Cases) -> np.ndarray:
        """(n, n_items_) float32 scores of every item for every case (higher is better)."""
        return self._scores(self._case_inputs(cases))

    def user_vectors(self, cases: Cases) -> np.ndarray:
        """(n, D + 1) float32 ``[u, 1]``: with ``head="dot"``, ``score = U @ item_vectors().T``."""
        u = self._users(self._case_inputs(cases))
        return np.concatenate([u, np.ones((u.shape[0], 1), u.dtype)], axis=1)

    def item_vectors(self) -> np.ndarray:
        """(n_items_, D + 1) float32 ``[v, b]``: item vectors with the item bias appended."""
        return self._items()[2].T.copy()

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The weights (name -> array) and a JSON-able config; see :meth:`from_state`."""
        net = self._fitted()
        config = {
            "format": _FORMAT,
            "params": self.get_params(),
            "n_items": self.n_items_,
            "n_users": self.n_users_,
            "item_features": dict(zip(self._item_names, net.items.sizes, strict=True)),
            "user_features": dict(zip(self._user_names, net.users.sizes, strict=True)),
            "fine_tunes": self._tunes,
            "text": {"n_buckets": net.items.n_buckets, "n_ids": int(net.items.bags.ids.size)}
            if net.items.n_buckets
            else None,
        }
        return dict(net.state_dict()), config

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> SequenceModel:
        """Rebuild a fitted model from :meth:`get_state`'s output.

        Raises
        ------
        ValueError
            If ``config`` is not a SequenceModel config.
        corenn.StateDictError
            If ``arrays`` lacks a weight, has an unexpected one or a wrong shape (named).
        """
        if not isinstance(config, Mapping) or config.get("format") != _FORMAT:
            raise ValueError(f"config is not a {_FORMAT} config")
        model = cls(**config["params"])
        items, users = config["item_features"], config["user_features"]
        n_items, n_users = int(config["n_items"]), int(config["n_users"])
        text = config.get("text")  # absent in models saved before the text term
        bags = (
            (TextBags(np.zeros(text["n_ids"]), np.zeros(n_items + 2)), text["n_buckets"])
            if text
            else (None, 0)
        )
        model._build(
            (np.zeros((n_items + 1, len(items)), np.int64), list(items.values()), *bags),
            (np.zeros((n_users + 1, len(users)), np.int64), list(users.values())),
            np.random.default_rng(model.seed),
        )
        model._net.load_state_dict(arrays)
        model._item_cache = None
        model._item_names, model._user_names = list(items), list(users)
        model.n_items_, model.n_users_ = n_items, n_users
        model._tunes = int(config["fine_tunes"])
        return model

    # -- internals --------------------------------------------------------------------------------
    def _build(self, items: tuple, users: tuple, rng: np.random.Generator) -> None:
        """``items``: (attribute rows, table sizes[, text bags, text buckets]); ``users``:
        (attribute rows, table sizes)."""
        d, h, dt = self.dim, self.hidden, self.dtype
        codes, sizes, *text = items
        self._net = _Net(
            ItemTower(codes, sizes, d, dt, rng, *text),
            UserTower(*users, d, h, dt, rng),
            make_head(self.head, d, h, dt, rng),
        )
        self._item_cache = None

    def _fitted(self) -> _Net:
        if self._net is None:
            raise ValueError("SequenceModel is not fitted: call fit() first")
        return self._net

    def _known_codes(self, features, n: int, sizes: list[int], names: list[str]) -> np.ndarray:
        """(n + 1, G) rows of user attributes that must match the fitted names and ranges."""
        checked = _feature_rows(features, n, "user_features", "user")
        if list(checked) != names:
            raise KeyError(f"user_features has {list(checked)}, the model was fitted with {names}")
        rows, new_sizes = _table(checked, n)
        for name, new, old in zip(names, new_sizes, sizes, strict=True):
            if new > old:
                raise ValueError(
                    f"user_features[{name!r}] holds code {new - 2}, the model knows 0..{old - 2}"
                )
        return rows

    def _case_inputs(self, cases: Cases) -> Inputs:
        """Validated, merged tower inputs of ``cases`` (the last ``max_len - 1`` context steps)."""
        self._fitted()
        context, lengths = np.asarray(cases.context), np.asarray(cases.lengths)
        users = np.asarray(cases.users)
        n = users.shape[0]
        if context.ndim != 2 or context.shape[0] != n or lengths.shape != (n,):
            raise ValueError(
                f"cases need context (n, L) and lengths (n,) for n={n} users, got "
                f"{context.shape} and {lengths.shape}"
            )
        if n and (users.min() < -1 or users.max() >= self.n_users_):
            bad = users.min() if users.min() < -1 else users.max()
            raise ValueError(f"cases.users holds code {bad} outside [-1, {self.n_users_})")
        valid = np.arange(context.shape[1]) < lengths[:, None]
        items = context[valid]
        if items.size and (items.min() < 0 or items.max() >= self.n_items_):
            bad = items.min() if items.min() < 0 else items.max()
            raise ValueError(
                f"cases.context holds item code {bad} outside [0, n_items={self.n_items_})"
            )
        case = np.nonzero(valid)[0]
        steps = merge(case, items, np.zeros_like(items), np.zeros_like(items))
        stop = np.cumsum(np.bincount(steps.user, minlength=n))
        start = stop - np.bincount(steps.user, minlength=n)
        context = padded(steps.item, start, stop, self.max_len - 1)
        return context_inputs(context, users.astype(np.int64))

    def _users(self, inputs: Inputs) -> np.ndarray:
        """(n, D) user vectors, in chunks of cases."""
        net = self._fitted()
        out = np.zeros((inputs.lengths.size, self.dim), dtype=np.float32)
        with corenn.no_grad():
            for i in range(0, inputs.lengths.size, _CASE_CHUNK):
                part = slice(i, i + _CASE_CHUNK)
                out[part] = net.encode(inputs[part], every=False).numpy()
        return out

    def _items(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(V, D) item vectors, (V,) biases and their (D + 1, V) product matrix ``[v, b]^T``,
        float32 (cached until the weights change)."""
        net = self._fitted()
        if self._item_cache is None:
            rows = np.arange(1, self.n_items_ + 1)
            with corenn.no_grad():
                v, b = net.items(rows), net.items.biases(rows)
            v, b = v.numpy().astype(np.float32), b.numpy().astype(np.float32)
            self._item_cache = (v, b, np.ascontiguousarray(np.hstack([v, b[:, None]]).T))
        return self._item_cache

    def _scores(self, inputs: Inputs) -> np.ndarray:
        """(n, V) float32 scores: one product (dot head), or MLP chunks of cases."""
        u = self._users(inputs)
        v, b, vb = self._items()
        if self.head == "dot":  # [u, 1] [v, b]^T: the bias inside the product, no second pass
            out = np.empty((u.shape[0], v.shape[0]), dtype=np.float32)

            def product(rows: np.ndarray) -> None:
                part = slice(rows[0], rows[-1] + 1)
                u1 = np.hstack([u[part], np.ones((rows.size, 1), np.float32)])
                np.matmul(u1, vb, out=out[part])

            map_blocks(product, np.arange(u.shape[0]), _SCORE_ROWS)
            return out
        out = np.empty((u.shape[0], v.shape[0]), dtype=np.float32)
        chunk = max(1, _MLP_CELLS // max(v.shape[0] * self.hidden, 1))
        head, dt = self._net.head, np.dtype(self.dtype)
        items = corenn.tensor(v[None], dt)
        with corenn.no_grad():
            for i in range(0, u.shape[0], chunk):
                logits = head.cross(corenn.tensor(u[None, i : i + chunk], dt), items)
                out[i : i + chunk] = logits.numpy()[0] + b
        return out

    def _hit_rate(self, val: Validation) -> float:
        """Hit rate at 10 of the validation targets, context items excluded."""
        hits = 0
        for i in range(0, val.target.size, _CASE_CHUNK):
            part = slice(i, i + _CASE_CHUNK)
            s = self._scores(val.inputs[part])
            ctx = val.context[part]
            rows, cols = np.nonzero(ctx >= 0)
            s[rows, ctx[rows, cols]] = -np.inf
            own = s[np.arange(s.shape[0]), val.target[part]]
            hits += int(((s > own[:, None]).sum(axis=1) < _VALID_K).sum())
        return hits / max(val.target.size, 1)

    def _valid_cases(
        self, steps: Steps, valid: Interactions, rng: np.random.Generator
    ) -> Validation:
        """Cases of ``valid`` events, one per valid user, from the user's first valid basket.

        One distinct item of that basket, drawn with ``rng``, is the target; the context is the
        user's training steps followed by the basket's other items (none when the basket is one
        item: the next-item case).
        """
        _check_events(valid, "valid", self.n_items_, self.n_users_)
        user, item, basket = (np.asarray(getattr(valid, a), np.int64) for a in _VALID_FIELDS)
        first, stop = steps.bounds(self.n_users_)
        cuts = np.flatnonzero(np.r_[False, user[1:] != user[:-1]])
        users, contexts, target = [], [], []
        parts = zip(np.split(user, cuts), np.split(basket, cuts), np.split(item, cuts))
        for u, b, i in parts if user.size else ():
            shown = list(dict.fromkeys(i[b == b[0]].tolist()))
            hidden = shown.pop(int(rng.integers(len(shown))))
            users.append(u[0])
            target.append(hidden)
            contexts.append(steps.item[first[u[0]] : stop[u[0]]].tolist() + shown)
        width = self.max_len - 1
        context = np.full((len(users), width), -1, dtype=np.int64)
        for r, c in enumerate(contexts):
            c = c[-width:]
            context[r, : len(c)] = c
        users = np.array(users, dtype=np.int64)
        return Validation(context_inputs(context, users), context, np.array(target, np.int64))

    def _run(self, steps, valid, epochs: int, lr: float, rng: np.random.Generator) -> None:
        """Train for up to ``epochs`` epochs with early stopping; restore the best weights."""
        net = self._fitted()
        val = None
        if self.patience is not None and valid is not None:
            val = self._valid_cases(steps, valid, rng)
        elif self.patience is not None:
            steps, val = hold_out_last(steps, self.n_users_, self.max_len)
        if val is not None and val.target.size == 0:
            val = None
        start, stop = windows(steps, self.n_users_, self.max_len)
        sampler = Sampler(self.sampler, steps.item, self.n_items_, np.dtype(self.dtype))
        params = list(net.parameters())
        optimizer = corenn.optim.Adam(params, lr=lr)
        best, best_state, waited = -np.inf, None, 0
        self.history_ = []
        for epoch in range(epochs):
            order = batches(stop - start, self.batch_size, rng)
            bar = progress.bar(
                order, desc=f"epoch {epoch + 1}/{epochs}", enabled=self.verbose, unit="batch"
            )
            total = 0.0
            shuffled = shuffle_ties(steps, rng)
            for i, idx in enumerate(bar):
                inputs, targets = window_batch(shuffled, start[idx], stop[idx], rng)
                loss = self._loss(inputs, targets, sampler, rng)
                net.zero_grad()
                loss.backward()
                corenn.clip_grad_norm(params, _CLIP_NORM)
                optimizer.step()
                total += float(loss.item())
                bar.set_postfix(loss=f"{total / (i + 1):.4f}")
            self._item_cache = None
            record = {"epoch": epoch + 1, "loss": total / max(len(order), 1)}
            self.history_.append(record)
            if val is None:
                continue
            record["valid_hit@10"] = self._hit_rate(val)
            progress.say(
                f"epoch {epoch + 1}/{epochs}: loss {record['loss']:.4f}, "
                f"valid hit@10 {record['valid_hit@10']:.4f}",
                self.verbose,
            )
            if record["valid_hit@10"] > best:
                best, best_state, waited = record["valid_hit@10"], net.state_dict(), 0
            else:
                waited += 1
                if waited >= self.patience:
                    progress.say(
                        f"stopped early at epoch {epoch + 1} (best {epoch + 1 - waited}: "
                        f"valid hit@10 {best:.4f}; weights of that epoch restored)",
                        self.verbose,
                    )
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        self._item_cache = None

    def _loss(self, inputs: Inputs, targets: np.ndarray, sampler: Sampler, rng) -> Any:
        """Mean loss over the valid positions of a batch (see the module docstring).

        Every (B, T) position is scored, padding included (batches of similar lengths make it
        rare); padding and negatives that hit the positive are masked out of the loss.
        """
        net = self._net
        batch, time = targets.shape
        valid = targets >= 0
        rows = targets + 1
        if self.loss == "bce":
            neg = sampler.draw(rng, (batch, self.n_negatives))
        else:
            neg = sampler.draw(rng, (_SOFTMAX_POOL * self.n_negatives,))
        (steps, _), (v, b), (v_neg, b_neg) = net.items.lookup(
            inputs.items, rows, neg, id_dropout=self.id_dropout, rng=rng
        )
        u = net.users(steps, inputs.events, inputs.lengths, inputs.users, every=True)
        dim = u.shape[2]
        own = net.head.pair(u, v) + b
        if self.loss == "bce":
            other = net.head.cross(u, v_neg) + b_neg.reshape(batch, 1, -1)
            logits = F.concat([own.reshape(batch, time, 1), other], axis=2)
            labels = np.zeros(logits.shape, dtype=self.dtype)
            labels[..., 0] = 1
            hit = np.concatenate(
                [np.zeros(own.shape + (1,), bool), neg[:, None] == rows[..., None]], 2
            )
            counted = ~hit & valid[..., None]
            weight = counted.astype(self.dtype)
            total = F.binary_cross_entropy_with_logits(logits, labels, weight, reduction="sum")
            return total * (1.0 / max(int(counted.sum()), 1))
        flat = u.reshape(1, batch * time, dim)
        other = net.head.cross(flat, v_neg.reshape(1, neg.size, dim))
        other = other.reshape(batch * time, neg.size) + b_neg
        logits = F.concat([own.reshape(-1, 1), other], axis=1)
        target = rows.reshape(-1)
        correction = np.empty(logits.shape, dtype=self.dtype)
        correction[:, 0] = -sampler.log_q[target]
        correction[:, 1:] = np.where(neg == target[:, None], -1e9, -sampler.log_q[neg])
        labels = np.where(valid.reshape(-1), 0, -1)
        return F.cross_entropy(logits + correction, labels, ignore_index=-1)
