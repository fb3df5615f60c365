"""The library entry point: fit on a shop's events, recommend items and bundles, take feedback.

``Recommender.fit`` cleans and encodes the events, holds out a validation split (each user's last
event for ``task="next-item"``, a share of baskets for ``task="basket-completion"``), trains the
sequence model, the co-purchase network, the pairwise network and EASE on the rest, fits the fusion
weights on the validation cases, and fits the baselines on the whole training history. Every
scorer follows the contract ``score(cases) -> (n, I)`` so the evaluation treats them alike
(:meth:`Recommender.scorers`).

The pieces live beside it: :mod:`bundlerec.catalogue` (item and shopper side information),
:mod:`bundlerec.explain` (why an item is in a bundle), :mod:`bundlerec.feedback` (growing the
model with new events) and :mod:`bundlerec.model_dir` (the saved form).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import poisson

from bundlerec import audience, feedback, model_dir, new_arrivals, promotions
from bundlerec import stock as stock_module
from bundlerec.cases import Cases, basket_completion_cases, history_cases, next_item_cases
from bundlerec.catalogue import item_catalogue, padded, user_features
from bundlerec.category_backoff import CategoryBackoff, choose_kappa, conditionals
from bundlerec.compose import Bundle, compose_bundles
from bundlerec.data import (
    DataError,
    items_from_events,
    load_events,
    load_items,
    load_promotions,
    load_stock,
    load_users,
)
from bundlerec.explain import explain_bundle
from bundlerec.files import write_atomically
from bundlerec.lift import BasketCounts, BasketStatistics
from bundlerec.model_dir import ModelDirError
from bundlerec.models.baselines import (
    EASE,
    AssociationRules,
    CoOccurrence,
    ItemKNN,
    Popularity,
    Transition,
)
from bundlerec.models.copurchase import CoPurchaseNetwork, basket_matrix
from bundlerec.models.fusion import Fusion
from bundlerec.models.pairwise import PairwiseNetwork
from bundlerec.models.sequence import SequenceModel
from bundlerec.prep import (
    Encoder,
    Interactions,
    clean,
    split_baskets,
    split_leave_last_out,
    to_interactions,
)
from bundlerec.privacy import KEY_ENV, Pseudonymizer, load_key
from bundlerec.progress import say

__all__ = ["Recommender", "ModelDirError"]

_PROB_FLOOR = 1e-12  # a bundle item's relevance is log max(p, floor)
_PREFIX = 512  # the bundle search first reads this many of the shopper's best items

TASKS = ("next-item", "basket-completion")

BORROW_IDS = False
"""Whether a new item (:meth:`Recommender.add_items`) starts the sequence model with the mean id
embedding of its most similar known items as well as their mean bias (it always takes the
bias). Chosen on an inner split (``bench/cold_start.py --inner``, NDCG@10 of new items on the
synthetic shop: bias 0.2514, bias and id 0.2497, neither 0.1898)."""

BUNDLE_DEFAULTS = {
    "fused": 0.0,
    "smoothing": 10.0,
    "categories": None,
    "dependence": 0.0,
    "pool": 12,
}
"""Bundle objective (see :meth:`Recommender.compose`): ``fused`` is the weight ``w`` of the fused
probability in the companions' relevance, ``smoothing`` the pseudo-count ``m`` that pulls the
anchor-conditioned co-occurrence towards popularity, ``categories`` the pseudo-count ``kappa``
that pulls it towards the category-level estimate (:mod:`bundlerec.category_backoff`; None:
chosen by :func:`~bundlerec.category_backoff.choose_kappa` on held-out training baskets when the
model is fitted; 0 in models saved before it), ``dependence`` the weight ``lambda`` of the
pairwise network's dependence term, ``pool`` the number K of candidates it is exact over."""

MIN_HOME_CASES = 100
"""Fewest validation baskets with an earlier history that fit :attr:`Recommender.home_fusion`."""
REPEAT_ALPHA = 0.01
"""Level of the test that finds items of the history bought again less often than chance
(:attr:`Recommender.history_repeats` False)."""

EASE_DEFAULTS: Mapping[str, Any] = MappingProxyType({"keep": 200})
"""Settings of the fusion's EASE component (:class:`~bundlerec.models.baselines.EASE` keywords;
the others as the baseline's): ``keep`` entries of ``B`` per row, so that a model directory holds
at most 5,000 x 200 of them (docs/evaluation.md, "EASE as a fourth fusion component")."""


def _history_rebought(cases: Cases, train: Interactions, alpha: float = REPEAT_ALPHA) -> bool:
    """Whether shoppers buy items of their history again at least about as often as chance.

    ``cases``: :func:`~bundlerec.cases.history_cases` (each target one item drawn uniformly
    from a validation basket's distinct items, the context the shopper's earlier events).
    Under chance, case ``i``'s target lies in its history ``H_i`` with probability
    ``sum_{j in H_i} q_j``, ``q_j`` the mean over ``train``'s baskets of ``[j in b] / |b|``.
    False only when the number of targets found in their histories is significantly below
    that sum (one-sided Poisson test at level ``alpha``): items are not bought twice (a film
    is rated once). Shops whose baskets repeat purchases, or draw on them at the rate of
    their popularity, give True.
    """
    baskets = basket_matrix(train)
    sizes = np.asarray(baskets.sum(axis=1)).ravel()
    held = sizes > 0  # basket codes of other parts of the log hold nothing here
    shares = sp.diags(1.0 / sizes[held]) @ baskets[held]
    q = np.asarray(shares.sum(axis=0)).ravel() / max(int(held.sum()), 1)
    found, expected = 0, 0.0
    for context, length, target in zip(cases.context, cases.lengths, cases.targets[:, 0]):
        history = np.unique(context[:length])
        found += int(target in history)
        expected += float(q[history].sum())
    return not poisson.cdf(found, expected) < alpha


def _epoch(now: Any) -> int:
    """Epoch seconds of ``now``: None (the current time), a number or a date (naive = UTC)."""
    if now is None:
        return int(time.time())
    if isinstance(now, (int, float, np.integer, np.floating)) and not isinstance(now, bool):
        return int(now)
    if isinstance(now, str) and now.strip().lstrip("-").isdigit():
        return int(now)
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    return int(stamp.timestamp())


_CAMPAIGN = "campaign.json"
_CAMPAIGN_FORMAT = "bundlerec.campaign/1"


def _floats(values: np.ndarray | None) -> list[float | None] | None:
    """A float array as a JSON list (NaN as null)."""
    if values is None:
        return None
    return [None if np.isnan(v) else float(v) for v in np.asarray(values, dtype=float)]


def _array(values: list | None) -> np.ndarray | None:
    return None if values is None else np.array([np.nan if v is None else v for v in values])


class Recommender:
    """Sequence model + co-purchase network + fusion, with baselines, bundles and feedback.

    Parameters
    ----------
    task : {"next-item", "basket-completion"}
        Decides the validation split used for early stopping and the fusion weights.
    sequence : dict, optional
        Keyword arguments of :class:`~bundlerec.models.sequence.SequenceModel`.
    network : dict, optional
        Keyword arguments of :class:`~bundlerec.models.copurchase.CoPurchaseNetwork`.
    pairwise : dict, optional
        Keyword arguments of :class:`~bundlerec.models.pairwise.PairwiseNetwork`.
    ease : dict or None, default :data:`EASE_DEFAULTS`
        Keyword arguments of the fusion's EASE component (over :data:`EASE_DEFAULTS`); None
        leaves EASE out of the fusion (the ``ease`` baseline stays).
    bundle : dict, optional
        Overrides of :data:`BUNDLE_DEFAULTS`, the weights of the bundle objective.
    window : int
        Seconds between a user's events that still belong to one basket (when no basket_id).
    valid_share : float
        Share of baskets held out for validation (basket-completion task).
    seed : int
    verbose : bool, default False
        Progress bars and messages on stderr (:mod:`bundlerec.progress`); when False, messages
        go to the ``bundlerec`` logger at INFO level and nothing is printed.
    """

    def __init__(
        self,
        task: str = "next-item",
        sequence: dict[str, Any] | None = None,
        network: dict[str, Any] | None = None,
        pairwise: dict[str, Any] | None = None,
        ease: Mapping[str, Any] | None = EASE_DEFAULTS,
        bundle: dict[str, float] | None = None,
        window: int = 1800,
        valid_share: float = 0.1,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.sequence_config = dict(sequence or {})
        self.network_config = dict(network or {})
        self.pairwise_config = dict(pairwise or {})
        self.ease_config = None if ease is None else {**EASE_DEFAULTS, **ease}
        unknown = set(bundle or {}) - set(BUNDLE_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown bundle setting(s) {sorted(unknown)}: see BUNDLE_DEFAULTS")
        self.bundle_config = {**BUNDLE_DEFAULTS, **(bundle or {})}
        # kappa None: chosen on the training baskets by fit (kept in bundle_config once chosen)
        self._choose_kappa = self.bundle_config["categories"] is None
        self.kappa_coverage: dict[float, float] = {}  # held-out coverage of each kappa tried
        # The pairwise network; None in a model saved before it existed (bundles then use the
        # fused relevance and the co-purchase network's coherence alone).
        self.pairwise: PairwiseNetwork | None = None
        # The fusion's EASE component; None without one (``ease=None``, models saved before it).
        self.ease: EASE | None = None
        self.window = int(window)
        self.valid_share = float(valid_share)
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.fitted = False
        self._counts: BasketCounts | None = None  # of the history, built on first use
        self._together: sp.csr_matrix | None = None  # (I, I) baskets per item pair, likewise
        self._backoff: CategoryBackoff | None = None  # category-level statistics, likewise
        # Validation cases the fusion is fitted on, at most (a seeded sample): its features are
        # (cases x catalogue) arrays, so this bounds the memory of fit on large catalogues.
        self.max_fusion_cases = 2000
        # Basket-completion models: a second fusion for a known shopper with an empty cart
        # (fitted on history_cases; None for next-item models and models saved before it),
        # and whether baskets repeat the shopper's history, chosen with it (None without it:
        # item lists leave the history out, bundles may hold it).
        self.home_fusion: Fusion | None = None
        self.history_repeats: bool | None = None
        self._popular: tuple | None = None  # (key, Popularity) of the history, home fusion
        # Campaigns (docs/campaigns.md): promotions table, units on hand per item code (NaN
        # unknown), the audience calibration (a, c) and its index (built on first use).
        self.promotions: pd.DataFrame | None = None
        self.on_hand: np.ndarray | None = None
        self.audience_calibration: tuple[float, float] | None = None
        self._audience: audience.AudienceIndex | None = None
        # (history rows, shopper codes with events since the audience index was built); None
        # when the history changed otherwise (the index is then rebuilt whole).
        self._touched: tuple[int, set[int]] | None = None
        self._donors: tuple | None = None  # (key, cold, donors, weights) of new arrivals
        self._tastes: tuple | None = None  # (key, Tastes) of new arrivals
        # Privacy (bundlerec.privacy): the key's check when the shopper ids are pseudonyms, and
        # the pseudonymizer of a model fitted or loaded with the key (never saved); the last
        # event-store sequence number folded into the model (bundlerec.store).
        self.key_check: str | None = None
        self.pseudonymizer: Pseudonymizer | None = None
        self.store_seq = 0

    # -- fitting ----------------------------------------------------------------------------
    def _encode(self, events: pd.DataFrame) -> Interactions:
        return to_interactions(events, self.users, self.items, window=self.window)

    def fit(
        self,
        events: pd.DataFrame | str | os.PathLike,
        items: pd.DataFrame | str | os.PathLike | None = None,
        users: pd.DataFrame | str | os.PathLike | None = None,
        promotions: pd.DataFrame | str | os.PathLike | None = None,
        stock: pd.DataFrame | str | os.PathLike | None = None,
        pseudonymizer: Pseudonymizer | None = None,
        count_baskets: Callable[[Interactions, dict], BasketStatistics] | None = None,
    ) -> Recommender:
        """Train every model on ``events`` (a frame or a CSV/Parquet/ARFF path; docs/data.md).

        Without ``items``, item attributes found in the events (``category``, ``brand``) make
        the items table (:func:`bundlerec.data.items_from_events`). ``promotions`` and ``stock``
        (or an ``on_hand`` column of ``items``) are kept for bundles (:meth:`set_campaign`).
        With a ``pseudonymizer`` (:mod:`bundlerec.privacy`) every shopper id is replaced by its
        pseudonym first: the model holds no raw id, and every method then takes raw ids.
        ``count_baskets(train, user_features)`` (e.g. a cluster's
        :func:`bundlerec.batch.counting.count_interactions`) counts the training baskets for the
        co-purchase network, which is then fitted from the counts
        (:meth:`CoPurchaseNetwork.fit_counts`).
        """
        loaded = load_events(events)
        if pseudonymizer is not None:
            loaded = pseudonymizer.pseudonymise(loaded)
            self.key_check, self.pseudonymizer = pseudonymizer.check, pseudonymizer
        items = load_items(items) if items is not None else items_from_events(loaded)
        events = clean(loaded, window=self.window)
        users = None if users is None else load_users(users)
        if users is not None and pseudonymizer is not None:
            users = pseudonymizer.pseudonymise(users)
        if events.empty:
            raise DataError("no events to train on")
        self.users = Encoder().fit(events["user_id"])
        self.items = Encoder().fit(events["item_id"])
        self.catalogue, self.item_state = item_catalogue(events, items, self.items)
        self.user_features, self.user_state = user_features(users, self.users)
        in_items = items if items is not None and "on_hand" in items.columns else None
        self.set_campaign(promotions, stock if stock is not None else in_items)
        if self.task == "next-item":
            fit_part, valid_part = split_leave_last_out(events)
        else:
            fit_part, valid_part = split_baskets(events, self.valid_share, self.seed)
        train = self._encode(fit_part)
        valid = self._encode(valid_part)
        self.history = self._encode(events)
        self._counts = self._together = self._backoff = None
        if self._choose_kappa:
            kappa, self.kappa_coverage = 0.0, {}
            if self.history.n_items > 1:  # a companion to rank besides the anchor
                kappa, self.kappa_coverage = choose_kappa(
                    basket_matrix(self.history),
                    padded(self.catalogue.category_codes, self.history.n_items, 0),
                    self.bundle_config["smoothing"],
                    np.random.default_rng(self.seed),
                    top=min(3, self.history.n_items - 1),
                )
            self.bundle_config["categories"] = kappa
        self._fit_models(train, valid, count_baskets)
        self.fitted = True
        return self

    def _valid_cases(self, train: Interactions, valid: Interactions) -> Cases:
        if self.task == "next-item":
            return next_item_cases(train, valid)
        return basket_completion_cases(valid, train.n_items, np.random.default_rng(self.seed))

    def _fit_models(
        self, train: Interactions, valid: Interactions, count_baskets: Callable | None = None
    ) -> None:
        self.sequence = SequenceModel(
            **{"seed": self.seed, "verbose": self.verbose, **self.sequence_config}
        ).fit(
            train,
            self.catalogue.features,
            self.user_features,
            valid=valid,
            item_text=self.catalogue.text,
        )
        say("learning the co-purchase network", self.verbose)
        network = CoPurchaseNetwork(**self.network_config)
        if count_baskets is None:
            self.network = network.fit(train, self.user_features)
        else:
            stats = count_baskets(train, self.user_features)
            self.network = network.fit_counts(stats, self.user_features)
        say("learning the pairwise co-purchase network", self.verbose)
        self.pairwise = PairwiseNetwork(**self.pairwise_config).fit(train)
        self.ease = None if self.ease_config is None else EASE(**self.ease_config).fit(train)
        valid_cases = self._valid_cases(train, valid)
        if len(valid_cases) > self.max_fusion_cases:
            rng = np.random.default_rng(self.seed)
            chosen = np.sort(rng.choice(len(valid_cases), self.max_fusion_cases, replace=False))
            valid_cases = valid_cases.rows(chosen)
        if self.sequence.head == "dot":
            say("calibrating audiences", self.verbose)
            self.audience_calibration = audience.calibrate(
                self.sequence.user_vectors(valid_cases),
                self.sequence.item_vectors(),
                valid_cases.targets[:, 0],
                np.random.default_rng(self.seed),
            )
        self._audience = None
        say(f"fitting the fusion weights on {len(valid_cases)} validation cases", self.verbose)
        self.fusion = Fusion(self._fusion_components(), seed=self.seed).fit(valid_cases)
        self.home_fusion = self._fit_home_fusion(train, valid)
        # The baselines have nothing to tune: they see the whole training history.
        self._fit_baselines(self.history)

    def _fit_home_fusion(self, train: Interactions, valid: Interactions) -> Fusion | None:
        """The fusion of a known shopper with an empty cart (basket-completion models).

        A basket-completion fusion is fitted on validation baskets with the rest of the basket
        as context, while a shopper without cart or anchor is served with the history as
        context (which the pairwise network reads as one basket). This one is fitted on that
        situation (:func:`~bundlerec.cases.history_cases`: the history before each validation
        basket, one of its items as target). None for next-item models (their fusion is fitted
        on history contexts already) and with fewer than :data:`MIN_HOME_CASES` cases. Sets
        :attr:`history_repeats` from the same cases (:func:`_history_rebought`; None without a
        home fusion).
        """
        self.history_repeats = None
        if self.task != "basket-completion":
            return None
        rng = np.random.default_rng(self.seed)
        cases = history_cases(train, valid, rng)
        if len(cases) < MIN_HOME_CASES:
            return None
        if len(cases) > self.max_fusion_cases:
            cases = cases.rows(np.sort(rng.choice(len(cases), self.max_fusion_cases, False)))
        say(f"fitting the home-page fusion on {len(cases)} validation baskets", self.verbose)
        home = Fusion(self._home_components(Popularity(log=True).fit(train)), seed=self.seed)
        home.fit(cases)
        self.history_repeats = _history_rebought(cases, train)
        return home

    def _fusion_for(self, context: list[int]) -> Fusion:
        """The fusion that scores a shopper with ``context`` (cart and anchors) as evidence
        (the home fusion's popularity brought up to the history first)."""
        if context or self.home_fusion is None:
            return self.fusion
        self.home_fusion.components["popular"] = self._popularity()
        return self.home_fusion

    def _repeats(self, context: list[int]) -> bool:
        """Whether item lists for a shopper with ``context`` (cart and anchors) may repeat the
        shopper's history: the home fusion's lists, where its fit found that baskets repeat it
        (:attr:`history_repeats`)."""
        return not context and self.home_fusion is not None and self.history_repeats is True

    def _home_components(self, popularity: Popularity) -> dict[str, Any]:
        """The home fusion's components: the fusion's (:meth:`_fusion_components`) and
        ``"popular"``, ``popularity`` (log purchase counts; a home fusion saved before it had
        none weighs it 0)."""
        return self._fusion_components() | {"popular": popularity}

    def _popularity(self) -> Popularity:
        """Log purchase counts of the history (cached while the history is unchanged)."""
        key = (self.history.item.size, self.history.n_items)
        if self._popular is None or self._popular[0] != key:
            self._popular = (key, Popularity(log=True).fit(self.history))
        return self._popular[1]

    def _fusion_components(self) -> dict[str, Any]:
        """The fusion's components by name: the sequence model, the co-purchase network, the
        pairwise network (absent from models saved before it) and EASE (absent without one);
        the items that no event shows borrow their donors' scores from the networks and EASE
        (:meth:`_borrowing`). A model saved before the pairwise network or EASE was a component
        has no weight for it, which weighs 0: its fusion scores as then."""
        parts = {"sequence": self.sequence, "copurchase": self._borrowing()}
        if self.pairwise is not None:
            parts["pairwise"] = new_arrivals.Borrowing(self.pairwise, self._cold_donors)
        if self.ease is not None:
            parts["ease"] = new_arrivals.Borrowing(self.ease, self._cold_donors)
        return parts

    def _fit_baselines(self, train: Interactions) -> None:
        self.baselines = {
            "popularity": Popularity().fit(train),
            "cooccurrence": CoOccurrence().fit(train),
            "itemknn": ItemKNN().fit(train),
            "ease": EASE().fit(train),
            "rules": AssociationRules().fit(train),
            "transition": Transition().fit(train),
        }

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError("the Recommender is not fitted: call fit() or load() first")

    def scorers(self) -> dict[str, Any]:
        """Every model by its report name: sequence, copurchase, pairwise (absent from models
        saved before it), fusion and the baselines."""
        self._check_fitted()
        pairwise = {} if self.pairwise is None else {"pairwise": self.pairwise}
        return {
            "sequence": self.sequence,
            "copurchase": self.network,
            **pairwise,
            "fusion": self.fusion,
            **self.baselines,
        }

    # -- evaluation cases -------------------------------------------------------------------
    def cases(
        self,
        test_events: pd.DataFrame | str | os.PathLike,
        protocol: str,
        seed: int = 0,
        horizon: int | None = None,
    ) -> Cases:
        """Evaluation cases from held-out events (codes from this model's encoders).

        ``next-item``: each test row is a target of its user's case (the first ``horizon`` rows
        of each user when given), the history is what the model saw in training.
        ``basket-completion``: each test basket (``basket_id`` or time window) of >= 2 known items
        has one item hidden (seeded); shoppers unknown to the model count as unknown users.
        """
        self._check_fitted()
        events = clean(self.to_model_ids(load_events(test_events)), window=self.window)
        if protocol == "next-item":
            test = self._encode(events)
            per_user = np.bincount(test.user) if len(test) else np.zeros(1, dtype=np.int64)
            horizon = int(per_user.max()) if horizon is None else horizon
            return next_item_cases(self.history, test, horizon=max(horizon, 1))
        if protocol == "basket-completion":
            test = to_interactions(
                events, self.users, self.items, window=self.window, unknown_users="reserve"
            )
            return basket_completion_cases(
                test,
                self.history.n_items,
                np.random.default_rng(seed),
                known_users=len(self.users.classes_),
            )
        raise ValueError(f"protocol must be one of {TASKS}, got {protocol!r}")

    # -- serving ----------------------------------------------------------------------------
    def _user_code(self, user: Any) -> int:
        """The code of one shopper id (-1 unknown): :meth:`_user_codes` for one request."""
        return self.users.code(self._shopper_id(user, pseudonymised=False))

    def _user_codes(self, users: Any) -> np.ndarray:
        """(n,) int64 codes of shopper ids (-1 unknown) through :meth:`_shopper_id`: every
        public method taking shopper ids encodes them here or in :meth:`_user_code`."""
        return self.users.transform([self._shopper_id(u, pseudonymised=False) for u in users])

    def _require_key(self) -> None:
        """Refuse raw shopper ids on a model of pseudonyms loaded without its key."""
        if self.key_check is not None and self.pseudonymizer is None:
            raise ValueError(
                f"this model holds pseudonyms of shopper ids (key check {self.key_check}): "
                f"load it with its key (--key-file, the {KEY_ENV} variable or "
                "Recommender.load(..., pseudonymizer)) or pass pseudonyms"
            )

    def _shopper_id(self, user: Any, pseudonymised: bool) -> str:
        """The id the model holds for shopper ``user``: its pseudonym when the model has a
        pseudonymizer (unless ``user`` is one already), else ``user`` as text.

        Raises
        ------
        ValueError
            A raw id for a model of pseudonyms loaded without its key.
        """
        if pseudonymised:
            return str(user)
        self._require_key()
        if self.pseudonymizer is not None:
            return self.pseudonymizer.pseudonym(user)
        return str(user)

    def _item_codes(self, items: Any, what: str) -> list[int]:
        items = (
            [] if items is None else ([items] if isinstance(items, (str, int)) else list(items))
        )
        codes = [self.items.code(i) for i in items]
        unknown = [str(i) for i, c in zip(items, codes) if c < 0]
        if unknown:
            raise KeyError(f"unknown {what} item(s): {', '.join(unknown)}")
        return codes

    def _serving_cases(
        self,
        user_codes: np.ndarray,
        anchors: list[int],
        exclude: list[int],
        max_len: int = 50,
        keep_history: bool = False,
    ) -> Cases:
        """Cases for serving: history (most recent ``max_len``) + anchors as context; the
        context and ``exclude`` are excluded (with ``keep_history``, the anchors and
        ``exclude`` only)."""
        n = user_codes.shape[0]
        seqs = [self._recent_items(int(u), max_len) + anchors for u in user_codes]
        width = max(1, max(len(s) for s in seqs))
        context = np.full((n, width), -1, dtype=np.int64)
        for r, s in enumerate(seqs):
            context[r, : len(s)] = s
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        left_out = [anchors + exclude if keep_history else s + exclude for s in seqs]
        rows = np.concatenate([np.full(len(s), r) for r, s in enumerate(left_out)]).astype(
            np.int64
        )
        cols = np.concatenate([np.asarray(s, dtype=np.int64) for s in left_out])
        excl = sp.csr_matrix(
            (np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n, self.history.n_items)
        )
        return Cases(user_codes, context, lengths, np.full((n, 1), -1, dtype=np.int64), excl)

    def _recent_items(self, user_code: int, max_len: int = 50) -> list[int]:
        """Item codes of the shopper's last ``max_len`` events, oldest first (none for an
        unknown shopper, code -1): the history a shopper is served with."""
        if user_code < 0:
            return []
        start, stop = np.searchsorted(self.history.user, [user_code, user_code + 1])
        return self.history.item[start:stop][-max_len:].tolist()

    def recommend_items_batch(
        self, users: list[Any], k: int = 10, batch_size: int = 512
    ) -> np.ndarray:
        """Top-``k`` item ids (n, k) object array for many shoppers (fused scores).

        Shoppers are scored ``batch_size`` at a time, so memory stays at about
        ``batch_size * n_items`` scores whatever the number of shoppers. The lists are those
        of ranking the whole catalogue (:meth:`Fusion.top_k`); a shopper with fewer than ``k``
        recommendable items gets ``None`` in the free places. The history is left out as in
        :meth:`recommend_items` without an anchor.
        """
        self._check_fitted()
        codes = self._user_codes(users)
        top = np.zeros((codes.size, k), dtype=np.int64)
        for start in range(0, codes.size, batch_size):
            cases = self._serving_cases(
                codes[start : start + batch_size], [], [], keep_history=self._repeats([])
            )
            top[start : start + batch_size] = self._fusion_for([]).top_k(cases, k)[0]
        ids = np.asarray(self.items.classes_, dtype=object)[top]
        ids[top < 0] = None
        return ids

    def recommend_items(
        self, user: Any, k: int = 10, anchor: Any = None, exclude: Any = None
    ) -> list[dict[str, Any]]:
        """Top-``k`` items for one shopper: ``[{"item_id", "score", "category", "price"}]``.

        Fewer than ``k`` records when fewer items are recommendable; ``score`` is the fused
        probability (without ``anchor``, a basket-completion model's :attr:`home_fusion`).
        Items of the shopper's last 50 events are left out, except without ``anchor`` where the
        fit found that baskets repeat the history (:attr:`history_repeats` True, with the home
        fusion); ``exclude`` items are always left out.
        """
        self._check_fitted()
        anchors = self._item_codes(anchor, "anchor")
        excluded = self._item_codes(exclude, "excluded")
        cases = self._serving_cases(
            np.array([self._user_code(user)]),
            anchors,
            excluded,
            keep_history=self._repeats(anchors),
        )
        top, probs = self._fusion_for(anchors).top_k(cases, k)
        return [self._item_record(int(j), float(p)) for j, p in zip(top[0], probs[0]) if j >= 0]

    def _item_record(
        self, j: int, score: float | None = None, prices: np.ndarray | None = None
    ) -> dict[str, Any]:
        """An item's id, category and price; with ``prices`` (the prices of a moment, see
        :meth:`set_campaign`) an item on promotion also gets ``regular_price``."""
        regular = float(self.catalogue.price[j])
        price = regular if prices is None else float(prices[j])
        rec = {
            "item_id": str(self.items.classes_[j]),
            "category": str(self.catalogue.category[j]),
            "price": None if np.isnan(price) else price,
        }
        if price != regular and not np.isnan(regular):
            rec["regular_price"] = regular
        if score is not None:
            rec["score"] = score
        return rec

    # -- new arrivals -------------------------------------------------------------------------
    def _borrowing(self) -> new_arrivals.Borrowing:
        """The co-purchase network with new items' scores borrowed from similar known items."""
        return new_arrivals.Borrowing(self.network, self._cold_donors)

    def _cold_donors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cold item codes, their donors, weights): items no event of the history shows."""
        n_items = len(self.items.classes_)
        key = (self.history.item.size, n_items, self.sequence.fine_tunes)
        if self._donors is None or self._donors[0] != key:
            cold = np.bincount(self.history.item, minlength=n_items)[:n_items] == 0
            given, weights = (np.zeros((0, 0), np.int64), np.zeros((0, 0)))
            if cold.any():
                content = self.sequence.content_vectors(np.arange(n_items))
                given, weights = new_arrivals.donors(content, cold)
            self._donors = (key, np.flatnonzero(cold), given, weights)
        return self._donors[1:]

    def add_items(self, items: pd.DataFrame | str | os.PathLike) -> Recommender:
        """Add new items (rows of an items table whose ``item_id`` the model does not know)
        before any event shows them: the new arrivals of the catalogue.

        Each new item gets a code after the known ones, its attributes (encoded with the fitted
        encoders; unknown values get the reserved "unknown" codes), price, cost and text
        (``title``, ``description``): the sequence model scores it from its attributes and
        text, starting from the mean bias of its most similar known items (and their id
        embeddings with :data:`BORROW_IDS`), the co-purchase network from their scores
        (:mod:`bundlerec.new_arrivals`). An ``on_hand`` column updates the stock. Known items
        are left as they are. See :meth:`recommend_new_arrivals` and :meth:`audience`.
        """
        self._check_fitted()
        table = load_items(items)
        fresh = sorted(set(table["item_id"]) - set(map(str, self.items.classes_)))
        if not fresh:
            return self
        feedback.grow_items(self, pd.DataFrame({"item_id": fresh}), table)
        n = len(self.items.classes_)
        self.history = replace(self.history, n_items=n)
        self._counts = self._together = self._backoff = None
        if self.on_hand is not None:
            self.on_hand = padded(self.on_hand, n, np.nan)
        if "on_hand" in table.columns:
            self.set_campaign(stock=table)
        self._fit_baselines(self.history)
        return self

    def _start_from_donors(self, codes: np.ndarray) -> None:
        """Start new items ``codes`` (no event shows them yet) in the sequence model from the
        mean bias of their most similar known items (and their id embeddings with
        :data:`BORROW_IDS`): :func:`bundlerec.new_arrivals.donors` over content vectors."""
        cold, given, weights = self._cold_donors()
        chosen = np.isin(cold, codes)
        if given.shape[1] and chosen.any():
            self.sequence.borrow(cold[chosen], given[chosen], weights[chosen], ids=BORROW_IDS)

    def recommend_new_arrivals(
        self, user: Any, k: int = 10, since: Any = None
    ) -> list[dict[str, Any]]:
        """Top-``k`` new items for a shopper: ``[{"item_id", "score", "category", "price"}]``.

        New items are those no event showed before ``since`` (epoch seconds or a date): items
        first seen at or after it, and items added by :meth:`add_items` that no event shows
        yet; with ``since=None`` only the latter. ``score`` (a log scale, higher first) mixes
        the fused probability (the sequence model from attributes and text, the co-purchase
        network borrowing from similar known items), the share of the item's category in the
        shop's purchases and the shopper's taste for the item's words within its category
        (:func:`bundlerec.new_arrivals.arrival_scores`). Items the shopper already has are
        left out.
        """
        self._check_fitted()
        n_items = len(self.items.classes_)
        first = np.full(n_items, np.iinfo(np.int64).max)
        np.minimum.at(first, self.history.item, self.history.timestamp)
        cutoff = np.iinfo(np.int64).max if since is None else _epoch(since)
        cases = self._serving_cases(np.array([self._user_code(user)]), [], [])
        codes = np.flatnonzero((first >= cutoff) & cases.allowed()[0])
        scores = self._new_arrival_scores(cases, codes)[0]
        order = np.lexsort((codes, -scores))[:k]
        return [self._item_record(int(codes[r]), float(scores[r])) for r in order]

    def _new_arrival_scores(self, cases: Cases, codes: np.ndarray) -> np.ndarray:
        """(n, J) float64 new-arrival scores of the items ``codes`` (J,) for the shoppers of
        serving ``cases`` (:func:`bundlerec.new_arrivals.arrival_scores`)."""
        h, n_items = self.history, len(self.items.classes_)
        category, bought = self.catalogue.category_codes, h.event == 3
        key = (h.item.size, n_items, self.sequence.fine_tunes)
        if self._tastes is None or self._tastes[0] != key:
            text = self.sequence.item_text_bags()  # saved with the model, unlike the text
            content = (
                sp.csr_matrix((n_items, 1)) if text is None else new_arrivals.text_matrix(*text)
            )
            counts = np.bincount(h.item[bought], minlength=n_items).astype(np.float64)
            self._tastes = (key, new_arrivals.Tastes(content, category, counts))
        share = new_arrivals.category_share(category, h.item[bought])
        users = cases.users
        starts = np.searchsorted(h.user, users, side="left")
        stops = np.where(users < 0, starts, np.searchsorted(h.user, users, side="right"))
        spans = [np.arange(a, b) for a, b in zip(starts, stops)]
        rows = np.concatenate([np.zeros(0, np.int64), *spans]).astype(np.int64)
        owner = np.repeat(np.arange(users.size), stops - starts)  # the history rows' shoppers
        keep = bought[rows]
        counts = sp.csr_matrix(
            (np.ones(int(keep.sum())), (owner[keep], h.item[rows[keep]])),
            shape=(users.size, n_items),
        )
        probs = self.fusion.score(cases)[:, codes]
        affinity = self._tastes[1].affinity(counts, codes)
        return new_arrivals.arrival_scores(probs, share[category[codes]], affinity)

    # -- campaigns: promotions, stock, audiences --------------------------------------------
    def set_campaign(
        self,
        promotions: pd.DataFrame | str | os.PathLike | None = None,
        stock: pd.DataFrame | str | os.PathLike | None = None,
    ) -> Recommender:
        """Use a promotions table and a stock table in bundles (docs/campaigns.md).

        ``promotions``: :func:`bundlerec.data.load_promotions` (``item_id``, ``promo_price`` or
        ``discount``, ``start``, ``end``); bundles are priced at the prices active at the
        request's ``now``. ``stock``: :func:`bundlerec.data.load_stock` (``item_id``,
        ``on_hand``) or an items table with ``on_hand``; items with nothing on hand never
        appear in a bundle, items without a figure count as in stock. None leaves the current
        table in place. Rows of unknown items are ignored.
        """
        if promotions is not None:
            self.promotions = load_promotions(promotions)
        if stock is not None:
            if isinstance(stock, pd.DataFrame) and "on_hand" in stock.columns:
                stock = stock.loc[stock["on_hand"].notna(), ["item_id", "on_hand"]]
            self.on_hand = stock_module.on_hand(load_stock(stock), self.items)
        return self

    def _in_stock(self) -> np.ndarray:
        """(I,) bool: not known to be out of stock."""
        n = len(self.items.classes_)
        if self.on_hand is None:
            return np.ones(n, dtype=bool)
        return ~(padded(self.on_hand, n, np.nan) <= 0)

    def _prices(self, now: int) -> tuple[np.ndarray, np.ndarray]:
        """(I,) prices at ``now`` (promotions applied) and (I,) bool promoted items."""
        return promotions.active_prices(self.promotions, self.items, self.catalogue.price, now)

    def _overstocked(self, days: float, now: int) -> np.ndarray:
        """(I,) bool: more than ``days`` of cover at the sales of the weeks before ``now`` (or
        before the history's last event, when that is earlier)."""
        if self.on_hand is None:
            return np.zeros(len(self.items.classes_), dtype=bool)
        end = min(int(now), int(self.history.timestamp.max(initial=0)) + 1)
        units = padded(self.on_hand, len(self.items.classes_), np.nan)
        return stock_module.days_of_cover(units, self.history, end) > days

    def _history_grew(self, before: int, users: np.ndarray) -> None:
        """Note that shoppers ``users`` (codes) got events that grew the history from ``before``
        rows, so the audience index refreshes only their rows (:meth:`_audience_index`)."""
        if self._touched is not None and self._touched[0] == before:
            self._touched = (len(self.history), self._touched[1] | set(users.tolist()))
        else:
            self._touched = None

    def _audience_index(self) -> audience.AudienceIndex:
        """The audience index of the current model, brought up to date when an audience is
        asked for: only the rows of the shoppers with events since it was built (and of new
        shoppers) when the history merely grew (:meth:`_history_grew`), else rebuilt whole
        (new items, a fine-tune, a forgotten shopper)."""
        if self.sequence.head != "dot":
            raise ValueError("audiences need the sequence model's dot head (head='dot')")
        h = self.history
        n_users, n_items = len(self.users.classes_), len(self.items.classes_)
        key = (h.user.size, n_users, n_items, self.sequence.fine_tunes)
        index = self._audience
        if index is not None and index.key == key:
            return index
        bought = h.event == 3
        owners = sp.csc_matrix(
            (np.ones(int(bought.sum()), dtype=bool), (h.user[bought], h.item[bought])),
            shape=(n_users, n_items),
        )
        touched = self._touched
        if (
            index is not None
            and touched is not None
            and touched[0] == h.user.size
            and index.key[2:] == key[2:]
            and index.key[1] <= n_users
        ):
            codes = np.union1d(list(touched[1]), np.arange(index.key[1], n_users)).astype(int)
        else:
            index, codes = None, np.arange(n_users)
        blocks = (
            self.sequence.user_vectors(self._serving_cases(codes[i : i + 1024], [], []))
            for i in range(0, codes.size, 1024)
        )
        item_vectors = self.sequence.item_vectors()
        if index is None:
            index = audience.build_index(
                blocks, item_vectors, owners, self.audience_calibration, key
            )
        else:
            index = audience.refresh_index(index, codes, blocks, item_vectors, owners, key)
        self._audience, self._touched = index, (h.user.size, set())
        return index

    def _attribute_items(self, category: Any, brand: Any) -> tuple[np.ndarray, dict[str, str]]:
        """Item codes of a category or a brand, and the label naming it."""
        if category is not None:
            codes = np.flatnonzero(self.catalogue.category.astype(str) == str(category))
            if codes.size == 0:
                raise KeyError(f"unknown category {category!r}")
            return codes, {"category": str(category)}
        if "brand" not in self.item_state["attributes"]:
            raise ValueError("the model has no brand attribute (no brand column in the items)")
        code = Encoder.from_json(self.item_state["attributes"]["brand"]).code(brand)
        codes = np.flatnonzero(self.catalogue.features["brand"] == code) if code >= 0 else []
        if len(codes) == 0:
            raise KeyError(f"unknown brand {brand!r}")
        return np.asarray(codes), {"brand": str(brand)}

    def audience(
        self,
        items: Any = None,
        n: int = 1000,
        min_probability: float | None = None,
        *,
        category: Any = None,
        brand: Any = None,
        horizon_days: float | None = audience.HORIZON_DAYS,
    ) -> dict[str, Any]:
        """The ``n`` shoppers most likely to buy ``items`` (all of them), or a category or brand,
        within the next ``horizon_days`` (30 by default; None: as their next purchase).

        Every known shopper is scored at once from the audience index (:mod:`bundlerec.audience`:
        the sequence model's vector of each shopper, the catalogue's log-normaliser, and a
        calibration fitted on the validation cases of :meth:`fit`): ``probability`` is the
        probability that the shopper buys the item within the next ``H = horizon_days`` days
        (the shopper's purchase rate of the last ``H`` days times the calibrated probability
        that a purchase is the item, see :mod:`bundlerec.audience`); for several items the
        probability of buying all of them (taken as independent; shoppers who already bought
        them all are left out); for ``category=`` or ``brand=`` the probability of buying one
        of its items. With ``horizon_days=None``, the same for the shopper's next purchase
        alone (whoever the shopper, however long ago they last bought). The top ``n`` is exact;
        shoppers below ``min_probability`` are left out. New items (:meth:`add_items`) have
        audiences too.

        Returns
        -------
        dict
            ``{"items": [item ids], "users": [{"user_id", "probability"}, ...]}`` best first,
            plus ``"category"`` or ``"brand"`` when given.

        Raises
        ------
        KeyError
            An unknown item, category or brand.
        ValueError
            Not exactly one of ``items``, ``category``, ``brand``; ``n < 1``;
            ``min_probability`` outside [0, 1]; ``horizon_days`` not positive and finite; a
            model with the MLP head.
        """
        self._check_fitted()
        if sum(x is not None for x in (items, category, brand)) != 1:
            raise ValueError("give exactly one of items, category and brand")
        if min_probability is not None and not 0.0 <= min_probability <= 1.0:
            raise ValueError(f"min_probability must be in [0, 1], got {min_probability}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        label: dict[str, str] = {}
        if items is not None:
            codes = np.asarray(list(dict.fromkeys(self._item_codes(items, "audience"))))
            if codes.size == 0:
                raise ValueError("items is empty: name at least one item")
            mode = "all"
        else:
            codes, label = self._attribute_items(category, brand)
            mode = "any"
        index = self._audience_index()
        purchases = None
        if horizon_days is not None:
            horizon = float(horizon_days)
            purchases = index.purchases.get(horizon)
            if purchases is None:
                h = self.history
                bought = h.event == 3
                purchases = audience.expected_purchases(
                    h.user[bought], h.timestamp[bought], index.vectors.shape[0], horizon
                )
                index.purchases[horizon] = purchases
        scores = index.scores(self.sequence.item_vectors()[codes], codes, mode, purchases)
        chosen, probs = audience.top_shoppers(scores, n, min_probability)
        names = np.asarray(self.users.classes_, dtype=object)[chosen]
        return {
            "items": [str(self.items.classes_[j]) for j in codes],
            **label,
            "users": [
                {"user_id": str(u), "probability": float(p)}
                for u, p in zip(names.tolist(), probs.tolist())
            ],
        }

    def compose(
        self,
        user_code: int,
        anchors: list[int],
        excluded: list[int] = (),
        *,
        cart: list[int] = (),
        k: int = 5,
        size: int = 3,
        budget: float | None = None,
        max_per_category: int = 1,
        **campaign: Any,
    ) -> tuple[list[Bundle], list[str]]:
        """Bundles for a shopper given by codes (``user_code`` -1 = unknown); also the notes.

        Every bundle starts with the ``anchors`` and holds ``size`` items in all (see
        :meth:`recommend_bundles`). With the evidence ``E`` = cart and anchors, each item's
        probability is the mix

        .. math:: p_j = w\\, p^{fused}_j + (1 - w)\\, \\frac{1}{|E|} \\sum_{e \\in E}
           \\frac{n(e, j) + m\\, \\pi_j}{n(e) + m}

        of the fused probability (shopper history, cart and anchors as context) and the
        co-occurrence ``P(j | e)`` of the training baskets smoothed towards the basket frequency
        ``pi_j`` by ``m`` pseudo-baskets (``p = p^fused`` when ``E`` is empty). The search
        maximises ``sum_j log p_j + lambda D(S)`` over the bundle, where ``D(S)`` is the pairwise
        network's :meth:`~PairwiseNetwork.dependence` of the companions ``S`` given ``E``, exact
        over the ``pool`` most relevant network items (0 for items outside them). A bundle's
        ``log_probability`` is the co-purchase network's ``log P(companions all bought | anchors,
        cart, shopper)`` (calibrated on held-out baskets; the objective is not). ``w, m, lambda,
        pool`` are
        :attr:`bundle_config` (:data:`BUNDLE_DEFAULTS`, chosen on inner splits). A model without
        a pairwise network (saved before it existed) scores as before: log fused probabilities
        plus the co-purchase network's ``log P(companions all bought | anchors, cart, shopper)``
        (:meth:`CoPurchaseNetwork.coherence`).

        ``campaign`` takes the keywords ``objective``, ``promote_share``, ``favour_overstock``
        and ``now`` of :meth:`recommend_bundles`: out-of-stock items are never allowed, prices
        are those at ``now`` and the search adds the log of the bundle's value for the revenue
        and margin objectives (:func:`~bundlerec.compose.compose_bundles`).
        """
        bundles, notes, *_ = self._compose(
            user_code, anchors, excluded, cart, k, size, budget, max_per_category, **campaign
        )
        return bundles, notes

    def _compose(
        self,
        user_code,
        anchors,
        excluded,
        cart,
        k,
        size,
        budget,
        max_per_category,
        objective: str = "probability",
        promote_share: float = 0.0,
        favour_overstock: float | None = None,
        now: Any = None,
    ) -> tuple[list[Bundle], list[str], np.ndarray, np.ndarray]:
        """:meth:`compose`, the (I,) item probabilities the bundles were searched with and the
        (I,) prices at ``now``."""
        notes: list[str] = []
        now = _epoch(now)
        price, promoted = self._prices(now)
        value = promotions.item_values(
            objective, price, padded(self.catalogue.cost, price.size, np.nan)
        )
        free = size - len(anchors)
        n_promoted = promotions.promoted_slots(promote_share, max(free, 0))
        context = list(dict.fromkeys([*cart, *anchors]))
        # Baskets repeat earlier purchases, so a bundle may hold items of the shopper's history:
        # only the cart, the anchors and the excluded items are left out; and the history
        # where the fit found that baskets do not repeat it (history_repeats False).
        left_out = np.zeros(self.history.n_items, dtype=bool)
        left_out[context + list(excluded)] = True
        if self.history_repeats is False:
            left_out[self._recent_items(user_code)] = True
        mixed = self.pairwise is not None and bool(context)
        w = self.bundle_config["fused"] if mixed else 1.0
        allowed = ~left_out
        in_stock = self._in_stock()
        if not in_stock[anchors].all():
            notes.append("an anchor is out of stock: no bundle")
            return [], notes, np.zeros(self.history.n_items), price
        allowed &= in_stock
        if n_promoted and not (allowed & promoted).any():
            notes.append("no promoted item can be offered: no bundle fills the promoted slots")
        if value is not None and (allowed & np.isnan(value)).any():
            what = "price" if objective == "revenue" else "price or cost"
            notes.append(
                f"{int((allowed & np.isnan(value)).sum())} item(s) without a {what} left out"
            )
        if budget is not None:
            unknown_price = allowed & np.isnan(price)
            if unknown_price.any():
                notes.append(f"{int(unknown_price.sum())} item(s) without a price left out")
            allowed &= ~np.isnan(price)
            if np.isnan(price[anchors]).any():
                notes.append("an anchor has no price: no bundle fits a budget")
        fixed = set(anchors)
        # With the fused probabilities alone as relevance (no evidence mix, no overstock boost,
        # no anchor), a prefix of the fused ranking may settle the search: see _fused_rounds.
        whole = mixed or favour_overstock is not None or bool(anchors)
        rounds = (
            self._fused_rounds(user_code, context, excluded, left_out, whole)
            if w > 0  # with w = 0 the evidence alone gives the probabilities: no model to run
            else [(np.zeros(self.history.n_items), None)]
        )
        if self.pairwise is None:
            evidence = self.network.evidence(context, user_code)

            def coherence(bundles):
                companions = [tuple(j for j in b if j not in fixed) for b in bundles]
                return self.network.coherence(companions, evidence)

        elif not self.bundle_config["dependence"]:  # lambda = 0: the bundle's items add up

            def coherence(bundles):
                return np.zeros(len(bundles))

        for probs, unknown in rounds:
            if mixed:
                probs = w * probs + (1.0 - w) * self._evidence_marginals(context)
            relevance = np.log(np.maximum(probs, _PROB_FLOOR))
            if self.pairwise is not None and self.bundle_config["dependence"]:
                dependence = self._dependence(context, relevance, allowed, unknown)
                if dependence is None:
                    continue

                def coherence(bundles, dependence=dependence):
                    return self.bundle_config["dependence"] * dependence(bundles)

            if favour_overstock is not None:
                relevance[self._overstocked(favour_overstock, now)] += np.log(stock_module.BOOST)
            bundles = compose_bundles(
                relevance,
                price,
                self.catalogue.category_codes,
                allowed,
                coherence,
                k=k,
                size=size,
                budget=budget,
                max_per_category=max_per_category,
                fixed=anchors,
                value=value,
                promoted=promoted,
                n_promoted=n_promoted,
                unknown=unknown,
            )
            if bundles is not None:
                break
        if self.pairwise is not None and bundles:
            # The search objective ranks bundles; the probability reported for each is the
            # co-purchase network's joint P(companions all bought | anchors, cart, shopper),
            # which is calibrated on held-out baskets (docs/evaluation.md) where the objective's
            # product of mixed marginals is not.
            companions = [tuple(j for j in b.items if j not in fixed) for b in bundles]
            log_p = self.network.coherence(companions, self.network.evidence(context, user_code))
            bundles = [
                replace(b, log_probability=min(float(lp), 0.0)) for b, lp in zip(bundles, log_p)
            ]
        if len(bundles) < k:
            notes.append(f"only {len(bundles)} bundle(s) satisfy the constraints")
        return bundles, notes, probs, price

    def _fused_rounds(
        self,
        user_code: int,
        context: list[int],
        excluded: list[int],
        left_out: np.ndarray,
        whole: bool,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """The shopper's fused probabilities, first of ever longer prefixes of the ranking.

        Yields ``(probs, unknown)``: (I,) float64 probabilities, 0 outside the prefix, and the
        (I,) bool items outside it, each ranking after every item of it
        (:meth:`Fusion.prefixes`; only prefixes whose probabilities all exceed the relevance
        floor, so that the log keeps their order); the last yield has every probability and
        ``unknown`` None, and with ``whole`` it is the only one. ``left_out`` (I,) bool: the
        items the shopper may not get.
        """
        cases = replace(
            self._serving_cases(np.array([user_code]), context, list(excluded)),
            exclude=sp.csr_matrix(left_out[None, :]),
        )
        fusion = self._fusion_for(context)
        if whole:
            yield fusion.score(cases)[0].astype(np.float64), None
            return
        n = self.history.n_items
        for items, fused in fusion.prefixes(cases, _PREFIX):
            probs = np.zeros(n)
            probs[items] = fused
            unknown = np.ones(n, dtype=bool)
            unknown[items] = False
            if not unknown.any():
                yield probs, None
            elif fused.min(initial=1.0) > _PROB_FLOOR:
                yield probs, unknown

    def _basket_counts(self) -> BasketCounts:
        if self._counts is None:
            self._counts = BasketCounts(basket_matrix(self.history))
        return self._counts

    def _evidence_marginals(self, context: list[int]) -> np.ndarray:
        """(I,) float64 mean over the evidence items ``e`` of the smoothed ``P(j | e)``
        (:meth:`compose`) from the training history's baskets."""
        counts = self._basket_counts()
        if self._together is None:
            self._together = (counts.baskets.T @ counts.baskets).tocsr()
        m, kappa = self.bundle_config["smoothing"], self.bundle_config["categories"]
        popular = (counts.item_counts + 1.0) / (counts.n_baskets + 2.0)
        prior = None
        if kappa:
            if self._backoff is None:
                codes = padded(self.catalogue.category_codes, counts.baskets.shape[1], 0)
                self._backoff = CategoryBackoff(counts.baskets, codes)
            prior = self._backoff.prior(np.asarray(context))
        together = self._together[context].toarray()
        n_e = counts.item_counts[context]
        return conditionals(together, n_e, popular, prior, m, kappa).mean(axis=0)

    def _dependence(
        self,
        context: list[int],
        relevance: np.ndarray,
        allowed: np.ndarray,
        unknown: np.ndarray | None = None,
    ):
        """``dependence(bundles) -> (len(bundles),)``: ``D(S)`` of each bundle's companions.

        ``D`` is one :meth:`PairwiseNetwork.dependence` table over the pool: the ``pool`` allowed
        network items (outside the evidence) with the highest ``relevance`` (ties to the lower
        code); companions outside the pool add nothing. Items added after the pairwise network
        was fitted (:meth:`update`) are outside it. ``unknown`` (I,) bool: items of unknown
        relevance, each ranking after every other item (:meth:`_fused_rounds`); None when the
        pool could hold one of them.
        """
        net = self.pairwise
        evidence = [j for j in context if j < net.n_items]
        in_net = np.zeros(relevance.size, dtype=bool)
        in_net[net.items] = True
        in_net[context] = False
        free = np.flatnonzero(allowed & in_net)
        size = int(self.bundle_config["pool"])
        if unknown is not None:
            known = free[~unknown[free]]
            if known.size < min(size, free.size):
                return None
            free = known
        pool = free[np.lexsort((free, -relevance[free]))][:size]
        bit = np.zeros(relevance.size + 1, dtype=np.int64)  # the last entry pads short bundles
        bit[pool] = 1 << np.arange(pool.size, dtype=np.int64)
        table = []  # made at the first call: a search whose candidates are unsettled never calls

        def dependence(bundles):
            if not table:
                table.append(net.dependence(evidence, pool) if pool.size else np.zeros(1))
            width = max(map(len, bundles), default=0)
            padded = np.array([[*b, *[-1] * (width - len(b))] for b in bundles], dtype=np.int64)
            return table[0][bit[padded.reshape(len(bundles), width)].sum(axis=1)]

        return dependence

    def _bundle_record(
        self,
        bundle: Bundle,
        anchors: list[int],
        probs: np.ndarray,
        user: int,
        cart: list[int],
        prices: np.ndarray,
    ) -> dict[str, Any]:
        """A bundle in the shop owner's terms (see :meth:`recommend_bundles`), at ``prices``."""
        companions = [j for j in bundle.items if j not in set(anchors)]
        p = probs[companions]
        price = np.nan_to_num(prices[companions], nan=0.0)
        counts = self._basket_counts()
        together = counts.together(bundle.items)
        lift = counts.lift(bundle.items, together)
        return {
            "items": [self._item_record(j, prices=prices) for j in bundle.items],
            "anchor": [str(self.items.classes_[j]) for j in anchors],
            "total_price": None if np.isnan(bundle.total_price) else bundle.total_price,
            "lift": None if np.isnan(lift) else lift,
            "baskets_together": together,
            "p_any_companion": float(1.0 - np.prod(1.0 - p)),
            "expected_revenue": float((p * price).sum()),
            "probability": bundle.probability,
            "score": bundle.score,
            "explanation": explain_bundle(
                self.network,
                self.items,
                self.user_state,
                bundle.items,
                user,
                [*cart, *anchors],
                anchors=anchors,
            ),
        }

    def recommend_bundles(
        self,
        user: Any,
        k: int = 5,
        size: int = 3,
        anchor: Any = None,
        budget: float | None = None,
        max_per_category: int = 1,
        exclude: Any = None,
        cart: Any = None,
        *,
        objective: str = "probability",
        promote_share: float = 0.0,
        favour_overstock: float | None = None,
        now: Any = None,
    ) -> dict[str, Any]:
        """``k`` bundles of ``size`` items for a shopper, optionally around anchor items.

        ``anchor`` items (the product a "bought together" widget is shown on) are part of every
        bundle: they come first, ``size`` counts them, and ``total_price`` and ``budget`` cover
        the whole bundle. ``cart`` items are context (evidence for both models) that is never
        repeated in a bundle. ``exclude`` items never appear. Items of the shopper's last 50
        events may appear (baskets repeat earlier purchases), except where the fit found that
        baskets do not repeat the history (:attr:`history_repeats` False).

        Campaigns (docs/campaigns.md; tables from :meth:`set_campaign`): items out of stock
        never appear (an out-of-stock anchor gives no bundle); prices are those at ``now``
        (epoch seconds or a date; default the current time), promotions applied;
        ``objective`` ``"probability"`` finds the likeliest bundles, ``"revenue"`` and
        ``"margin"`` those of the highest expected price or margin (price - cost);
        ``promote_share`` reserves ``ceil(share * (size - anchors))`` companion slots of every
        bundle for promoted items; ``favour_overstock=D`` doubles the probability of items with
        more than ``D`` days of cover (:mod:`bundlerec.stock`) in the search.

        Returns
        -------
        dict
            ``{"user", "bundles": [...], "notes"}``; each bundle holds ``items`` (records with
            ``item_id``, ``category``, ``price``; anchors first), ``anchor`` (their ids),
            ``total_price``, ``lift`` (how many times more often the whole bundle was bought
            together in the training baskets than if its items were bought independently; 0 if
            never, None for a single item), ``baskets_together`` (that count of baskets),
            ``p_any_companion`` (P(the shopper buys at least one companion), from the per-item
            probabilities ``p_j`` of :meth:`compose` taken as independent),
            ``expected_revenue`` (sum of the companions' ``p_j`` times price), ``probability``
            (P(all companions bought | anchors, cart, shopper): the ``p_j`` times the pairwise
            network's dependence ratio, see :meth:`compose`), ``score`` (the search objective) and
            ``explanation`` (one record per item). An unknown shopper gets bundles from popular,
            coherent items and a note; an unknown anchor, cart or excluded item raises KeyError
            naming it.
        """
        self._check_fitted()
        code = self._user_code(user)
        anchors = list(dict.fromkeys(self._item_codes(anchor, "anchor")))
        in_cart = [j for j in self._item_codes(cart, "cart") if j not in anchors]
        excluded = self._item_codes(exclude, "excluded")
        bundles, notes, probs, prices = self._compose(
            code,
            anchors,
            excluded,
            in_cart,
            k,
            size,
            budget,
            max_per_category,
            objective=objective,
            promote_share=promote_share,
            favour_overstock=favour_overstock,
            now=now,
        )
        if code < 0:
            notes.insert(0, f"unknown shopper {user!r}: bundles from popular, coherent items")
        return {
            "user": str(user),
            "bundles": [
                self._bundle_record(b, anchors, probs, code, in_cart, prices) for b in bundles
            ],
            "notes": notes,
        }

    # -- feedback ---------------------------------------------------------------------------
    def update(
        self,
        new_events: pd.DataFrame | str | os.PathLike,
        items: pd.DataFrame | str | os.PathLike | None = None,
        users: pd.DataFrame | str | os.PathLike | None = None,
        epochs: int = 0,
        *,
        pseudonymised: bool = False,
    ) -> Recommender:
        """Fold new events into the model at once; new shoppers and items join it.

        New items join as with :meth:`add_items` (:func:`bundlerec.feedback.grow_items`): codes
        after the known ones, attributes, price, cost and text (``title``, ``description``) from
        ``items`` (default: the attributes the events carry; unknown values and items without a row
        get the reserved "unknown" codes), a zero id embedding, and items with a row start from the
        bias of their most similar known items; the network gives them the smoothed prior of an
        unseen item (cold start). New shoppers get codes and their attributes from ``users``
        likewise. The events enter the history, so the next answer of their shopper reads them (the
        LSTM runs forward over them: no gradient step), and the co-purchase network's CPTs get a
        Dirichlet count update with the changed baskets
        (:class:`bundlerec.feedback.OnlineFeedback`). With ``epochs > 0`` the sequence model is
        then fine-tuned that many epochs from its current weights on the last ``max_len`` events of
        the shoppers with new events. The cost grows with the new events, not with the history: the
        baselines are refitted when an evaluation next asks for them and the lift counts of bundles
        are recounted at the next bundle request. The pairwise network stays as fitted (new items
        are outside it). An empty frame changes nothing.

        Parameters
        ----------
        pseudonymised : bool
            The events' shopper ids are pseudonyms already (e.g. read from the event store);
            otherwise a model with a pseudonymizer replaces them.
        """
        self._check_fitted()
        if isinstance(new_events, pd.DataFrame) and new_events.empty:
            return self
        loaded = self.to_model_ids(load_events(new_events), pseudonymised)
        frame = clean(loaded, window=self.window)
        if frame.empty:
            return self
        items = None if items is None else load_items(items)
        users = None if users is None else self.to_model_ids(load_users(users), pseudonymised)
        online = feedback.OnlineFeedback(self)
        online.observe(frame, items, users)
        if epochs > 0:
            self.sequence.fine_tune(
                online.touched(self.sequence.max_len),
                epochs=epochs,
                user_features=self.user_features,
            )
        online.recount()
        self._refit_baselines_later()
        return self

    def to_model_ids(self, frame: pd.DataFrame, pseudonymised: bool = False) -> pd.DataFrame:
        """``frame`` with its ``user_id`` column as the model holds shopper ids: pseudonyms on
        a model of pseudonyms (unless ``pseudonymised``: they are pseudonyms already), else as
        given. For code that encodes events itself (e.g.
        :func:`bundlerec.bundle_eval.evaluate_bundles`).

        Raises
        ------
        ValueError
            Raw ids for a model of pseudonyms loaded without its key.
        """
        if pseudonymised or "user_id" not in frame.columns:
            return frame
        self._require_key()
        if self.pseudonymizer is None:
            return frame
        return self.pseudonymizer.pseudonymise(frame)

    def _refit_baselines_later(self) -> None:
        def refit() -> dict[str, Any]:
            self._fit_baselines(self.history)
            return self.baselines

        self.baselines = feedback.LazyBaselines(refit)

    def forget(self, user: Any, *, pseudonymised: bool = False) -> int:
        """Remove a shopper from the model; return the number of their events removed.

        Their events leave the history, their baskets the co-purchase network's counts, their
        attribute row the user features and the sequence model, their id the encoder
        (:func:`bundlerec.feedback.forget`); a model saved afterwards holds no trace of the id.
        ``user`` is a raw id (hashed by the pseudonymizer of a pseudonymised model) or, with
        ``pseudonymised=True``, the pseudonym itself.

        Raises
        ------
        KeyError
            If the model does not know the shopper.
        """
        self._check_fitted()
        removed = feedback.forget(self, self._shopper_id(user, pseudonymised))
        self._refit_baselines_later()
        return removed

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write the model directory atomically (:mod:`bundlerec.model_dir`).

        ``directory`` may be absent, empty, or a model directory (replaced); anything else (a
        user's file or folder) raises :class:`ModelDirError` and is left untouched.
        """
        self._check_fitted()
        path = model_dir.save(self, directory)
        self._save_campaign(path)

    def _save_campaign(self, path: Path) -> None:
        """Write the campaign data (costs, stock, promotions, audience calibration) beside the
        model files as ``campaign.json``, through a temporary file renamed into place."""
        promos = self.promotions
        state = {
            "format": _CAMPAIGN_FORMAT,
            "audience_calibration": self.audience_calibration,
            "cost": _floats(self.catalogue.cost),
            "on_hand": _floats(self.on_hand),
            "promotions": None
            if promos is None
            else {c: _floats(promos[c]) for c in ("promo_price", "discount")}
            | {"item_id": promos["item_id"].tolist()}
            | {c: promos[c].astype(int).tolist() for c in ("start", "end")},
        }
        write_atomically(path / _CAMPAIGN, lambda tmp: tmp.write_text(json.dumps(state)))

    def _load_campaign(self, path: Path) -> None:
        """Read ``campaign.json`` if present (models saved before campaigns have none)."""
        file = path / _CAMPAIGN
        if not file.is_file():
            return
        try:
            state = json.loads(file.read_text())
            if state.get("format") != _CAMPAIGN_FORMAT:
                raise ValueError(f"format {state.get('format')!r}")
            calibration = state["audience_calibration"]
            self.audience_calibration = None if calibration is None else tuple(calibration)
            cost = _array(state["cost"])
            if cost is not None:
                self.catalogue = replace(self.catalogue, cost=cost)
            self.on_hand = _array(state["on_hand"])
            promos = state["promotions"]
            if promos is not None:
                frame = pd.DataFrame(promos)
                frame = frame[["item_id", "promo_price", "discount", "start", "end"]]
                self.promotions = load_promotions(frame.astype({"promo_price": float}))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelDirError(f"{file} is corrupt: {err}") from err

    @classmethod
    def load(
        cls, directory: str | os.PathLike, pseudonymizer: Pseudonymizer | None = None
    ) -> Recommender:
        """Read a model directory written by :meth:`save` (no code is executed).

        Raises :class:`ModelDirError` naming the path when it is missing, of another format or
        version, or corrupt, or when a ``pseudonymizer`` is given for a model of raw ids or of
        another key. A model of pseudonyms loaded with its key takes raw shopper ids; without
        ``pseudonymizer`` it takes the key of the :data:`~bundlerec.privacy.KEY_ENV` variable
        when that is set, else it takes pseudonyms only (raw ids raise ValueError).
        """
        self = model_dir.load(cls, directory)
        if pseudonymizer is None and self.key_check is not None:
            pseudonymizer = load_key()
        if pseudonymizer is not None:
            if self.key_check is None:
                raise ModelDirError(
                    f"{directory}: the model holds raw shopper ids, not pseudonyms"
                )
            if pseudonymizer.check != self.key_check:
                raise ModelDirError(
                    f"{directory}: the model's shopper ids are pseudonyms under another key "
                    f"(key check {self.key_check}, this key's {pseudonymizer.check})"
                )
            self.pseudonymizer = pseudonymizer
        self._load_campaign(Path(directory))
        self.fusion.components.update(self._fusion_components())
        if self.home_fusion is not None:
            self.home_fusion.components.update(self._home_components(self._popularity()))
        self._fit_baselines(self.history)
        self.fitted = True
        return self
