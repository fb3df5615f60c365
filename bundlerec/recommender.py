"""The library entry point: fit on a shop's events, recommend items and bundles, take feedback.

``Recommender.fit`` cleans and encodes the events, holds out a validation split (each user's last
event for ``task="next-item"``, a share of baskets for ``task="basket-completion"``), trains the
sequence model and the co-purchase network on the rest, fits the fusion weights on the validation
cases, and fits the baselines on the whole training history. Every scorer follows the contract
``score(cases) -> (n, I)`` so the evaluation treats them alike (:meth:`scorers`).

A saved model is a directory: ``meta.json`` (format name and version, configuration, encoders,
catalogue), ``arrays.npz`` (weights and training history, via :func:`corenn.save`, no pickle) and
``network.bif`` (the co-purchase network); it is written to a temporary sibling and swapped in, so
a failed save leaves the previous model intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

import corenn
import pgm
from bundlerec.cases import Cases, basket_completion_cases, next_item_cases
from bundlerec.compose import Bundle, compose_bundles
from bundlerec.data import DataError, load_events, load_items, load_users
from bundlerec.models.baselines import CoOccurrence, ItemKNN, Popularity, Transition
from bundlerec.models.copurchase import CoPurchaseNetwork, item_node, user_node
from bundlerec.models.fusion import Fusion
from bundlerec.models.sequence import SequenceModel
from bundlerec.prep import (
    UNKNOWN,
    Encoder,
    Interactions,
    PriceScaler,
    align,
    clean,
    encode_attributes,
    split_baskets,
    split_leave_last_out,
    to_interactions,
)

__all__ = ["Recommender", "ModelDirError"]

FORMAT = "bundlerec-model"
VERSION = 1
TASKS = ("next-item", "basket-completion")


class ModelDirError(ValueError):
    """A model directory is missing, of another format or version, or corrupt (names the path)."""


@dataclass
class Catalogue:
    """Per-item side information in item-code order.

    Attributes
    ----------
    features : dict of str to ndarray (I,) int64
        Categorical codes (category, brand, price bucket, ...) for the sequence model.
    category : ndarray (I,) object
        Category label per item (the item id itself when no category is known).
    price : ndarray (I,) float64
        Price per item, NaN when unknown.
    """

    features: dict[str, np.ndarray] = field(default_factory=dict)
    category: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    price: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _item_catalogue(
    events: pd.DataFrame, items: pd.DataFrame | None, ids: Encoder
) -> tuple[Catalogue, dict[str, Any]]:
    """Encode item attributes (fitted on the training items) and gather category and price."""
    n = len(ids.classes_)
    price = np.full(n, np.nan)
    if "price" in events.columns:
        per_item = events.groupby("item_id", observed=True)["price"].median()
        codes = ids.transform(per_item.index)
        ok = codes >= 0
        price[codes[ok]] = per_item.to_numpy(dtype=float)[ok]
    features: dict[str, np.ndarray] = {}
    state: dict[str, Any] = {"attributes": {}, "price_scaler": None}
    category = np.asarray(ids.classes_, dtype=object)
    if items is not None:
        table = items.drop(columns=[c for c in ("price",) if c in items.columns])
        codes, encoders = encode_attributes(table, "item_id", ids)
        for j, (name, enc) in enumerate(encoders.items()):
            features[name] = codes[:, j]
            state["attributes"][name] = enc.to_json()
        if "price" in items.columns:
            given = items.set_index("item_id")["price"].reindex(list(ids.classes_))
            have = given.notna().to_numpy()
            price[have] = given.to_numpy(dtype=float)[have]
        if "category" in items.columns:
            labels = pd.Series(
                np.asarray(
                    items.set_index("item_id")["category"].reindex(list(ids.classes_)),
                    dtype=object,
                )
            )
            category = np.where(labels.isna(), category, labels.astype(str)).astype(object)
    if np.isfinite(price).any():
        scaler = PriceScaler().fit(price[np.isfinite(price)])
        features["price_bucket"] = scaler.bucketize(price)
        state["price_scaler"] = scaler.to_json()
    return Catalogue(features, category, price), state


def _user_features(users: pd.DataFrame | None, ids: Encoder) -> tuple[dict, dict]:
    if users is None:
        return {}, {}
    codes, encoders = encode_attributes(users, "user_id", ids)
    feats = {name: codes[:, j] for j, name in enumerate(encoders)}
    return feats, {name: enc.to_json() for name, enc in encoders.items()}


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
    window : int
        Seconds between a user's events that still belong to one basket (when no basket_id).
    valid_share : float
        Share of baskets held out for validation (basket-completion task).
    seed : int
    verbose : bool
        Progress bars and messages.
    """

    def __init__(
        self,
        task: str = "next-item",
        sequence: dict[str, Any] | None = None,
        network: dict[str, Any] | None = None,
        window: int = 1800,
        valid_share: float = 0.1,
        seed: int = 0,
        verbose: bool = True,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task = task
        self.sequence_config = dict(sequence or {})
        self.network_config = dict(network or {})
        self.window = int(window)
        self.valid_share = float(valid_share)
        self.seed = int(seed)
        self.verbose = bool(verbose)
        self.fitted = False
        # Validation cases the fusion is fitted on, at most (a seeded sample): its features are
        # (cases x catalogue) arrays, so this bounds the memory of fit on large catalogues.
        self.max_fusion_cases = 2000

    # -- fitting ----------------------------------------------------------------------------
    def _encode(self, events: pd.DataFrame) -> Interactions:
        return to_interactions(events, self.users, self.items, window=self.window)

    def fit(
        self,
        events: pd.DataFrame | str | os.PathLike,
        items: pd.DataFrame | str | os.PathLike | None = None,
        users: pd.DataFrame | str | os.PathLike | None = None,
    ) -> Recommender:
        """Train every model on ``events`` (a frame or a CSV/Parquet path; see docs/data.md)."""
        events = clean(load_events(events), window=self.window)
        items = None if items is None else load_items(items)
        users = None if users is None else load_users(users)
        if events.empty:
            raise DataError("no events to train on")
        self.users = Encoder().fit(events["user_id"])
        self.items = Encoder().fit(events["item_id"])
        self.catalogue, self.item_state = _item_catalogue(events, items, self.items)
        self.user_features, self.user_state = _user_features(users, self.users)
        if self.task == "next-item":
            fit_part, valid_part = split_leave_last_out(events)
        else:
            fit_part, valid_part = split_baskets(events, self.valid_share, self.seed)
        train = self._encode(fit_part)
        valid = self._encode(valid_part)
        self.history = self._encode(events)
        self._fit_models(train, valid)
        self.fitted = True
        return self

    def _valid_cases(self, train: Interactions, valid: Interactions) -> Cases:
        if self.task == "next-item":
            return next_item_cases(train, valid)
        return basket_completion_cases(valid, train.n_items, np.random.default_rng(self.seed))

    def _fit_models(self, train: Interactions, valid: Interactions) -> None:
        self.sequence = SequenceModel(
            **{"seed": self.seed, "verbose": self.verbose, **self.sequence_config}
        ).fit(train, self.catalogue.features, self.user_features, valid=valid)
        self.network = CoPurchaseNetwork(**self.network_config).fit(train, self.user_features)
        valid_cases = self._valid_cases(train, valid)
        if len(valid_cases) > self.max_fusion_cases:
            rng = np.random.default_rng(self.seed)
            chosen = np.sort(rng.choice(len(valid_cases), self.max_fusion_cases, replace=False))
            valid_cases = valid_cases.rows(chosen)
        self.fusion = Fusion(
            {"sequence": self.sequence, "copurchase": self.network}, seed=self.seed
        ).fit(valid_cases)
        # The baselines have nothing to tune: they see the whole training history.
        self._fit_baselines(self.history)

    def _fit_baselines(self, train: Interactions) -> None:
        self.baselines = {
            "popularity": Popularity().fit(train),
            "cooccurrence": CoOccurrence().fit(train),
            "itemknn": ItemKNN().fit(train),
            "transition": Transition().fit(train),
        }

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ValueError("the Recommender is not fitted: call fit() or load() first")

    def scorers(self) -> dict[str, Any]:
        """Every model by its report name: sequence, copurchase, fusion and the baselines."""
        self._check_fitted()
        return {
            "sequence": self.sequence,
            "copurchase": self.network,
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
        events = clean(load_events(test_events), window=self.window)
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
        code = int(self.users.transform([user])[0])
        return code

    def _item_codes(self, items: Any, what: str) -> list[int]:
        items = (
            [] if items is None else ([items] if isinstance(items, (str, int)) else list(items))
        )
        codes = self.items.transform(items) if items else np.zeros(0, dtype=np.int64)
        unknown = [str(i) for i, c in zip(items, codes) if c < 0]
        if unknown:
            raise KeyError(f"unknown {what} item(s): {', '.join(unknown)}")
        return [int(c) for c in codes]

    def _serving_cases(
        self, user_codes: np.ndarray, anchors: list[int], exclude: list[int], max_len: int = 50
    ) -> Cases:
        """Cases for serving: history (most recent ``max_len``) + anchors as context."""
        n = user_codes.shape[0]
        hist = self.history
        starts = np.searchsorted(hist.user, user_codes, side="left")
        stops = np.searchsorted(hist.user, user_codes, side="right")
        stops = np.where(user_codes < 0, starts, stops)
        seqs = [list(hist.item[a:b][-max_len:]) + anchors for a, b in zip(starts, stops)]
        width = max(1, max(len(s) for s in seqs))
        context = np.full((n, width), -1, dtype=np.int64)
        for r, s in enumerate(seqs):
            context[r, : len(s)] = s
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        rows = np.concatenate(
            [np.full(len(s) + len(exclude), r) for r, s in enumerate(seqs)]
        ).astype(np.int64)
        cols = np.concatenate([np.asarray(s + exclude, dtype=np.int64) for s in seqs])
        excl = sp.csr_matrix(
            (np.ones(rows.size, dtype=bool), (rows, cols)), shape=(n, hist.n_items)
        )
        return Cases(user_codes, context, lengths, np.full((n, 1), -1, dtype=np.int64), excl)

    def recommend_items_batch(
        self, users: list[Any], k: int = 10, batch_size: int = 512
    ) -> np.ndarray:
        """Top-``k`` item ids (n, k) object array for many shoppers (fused scores).

        Shoppers are scored ``batch_size`` at a time, so memory stays at about
        ``batch_size * n_items`` scores whatever the number of shoppers. The lists are those
        of ranking the whole catalogue (:meth:`Fusion.top_k`); a shopper with fewer than ``k``
        recommendable items gets ``None`` in the free places.
        """
        self._check_fitted()
        codes = self.users.transform(list(users))
        top = np.zeros((codes.size, k), dtype=np.int64)
        for start in range(0, codes.size, batch_size):
            cases = self._serving_cases(codes[start : start + batch_size], [], [])
            top[start : start + batch_size] = self.fusion.top_k(cases, k)[0]
        ids = np.asarray(self.items.classes_, dtype=object)[top]
        ids[top < 0] = None
        return ids

    def recommend_items(
        self, user: Any, k: int = 10, anchor: Any = None, exclude: Any = None
    ) -> list[dict[str, Any]]:
        """Top-``k`` items for one shopper: ``[{"item_id", "score", "category", "price"}]``.

        Fewer than ``k`` records when fewer items are recommendable; ``score`` is the fused
        probability.
        """
        self._check_fitted()
        anchors = self._item_codes(anchor, "anchor")
        excluded = self._item_codes(exclude, "excluded")
        cases = self._serving_cases(np.array([self._user_code(user)]), anchors, excluded)
        top, probs = self.fusion.top_k(cases, k)
        return [self._item_record(int(j), float(p)) for j, p in zip(top[0], probs[0]) if j >= 0]

    def _item_record(self, j: int, score: float | None = None) -> dict[str, Any]:
        price = float(self.catalogue.price[j])
        rec = {
            "item_id": str(self.items.classes_[j]),
            "category": str(self.catalogue.category[j]),
            "price": None if np.isnan(price) else price,
        }
        if score is not None:
            rec["score"] = score
        return rec

    def _evidence_labels(self, user: int, anchors: list[int]) -> dict[str, tuple[str, str]]:
        """Network evidence {node: (state, label)} of the cart items and shopper attributes."""
        labels = {
            item_node(j): ("1", f"in cart: {self.items.classes_[j]}")
            for j in anchors
            if j in self.network.index
        }
        if user >= 0:
            for name in self.network.attributes:
                code = int(self.network.user_features[name][user])
                if code < 0:
                    continue
                classes = self.user_state[name]["classes"]
                value = classes[code] if code < len(classes) else UNKNOWN
                labels[user_node(name)] = (str(code), f"shopper {name} = {value}")
        return labels

    def _explain(self, bundle: tuple[int, ...], user: int, anchors: list[int]) -> list[dict]:
        """For each item, the evidence that raised its probability most, and by what ratio."""
        base = self._evidence_labels(user, anchors)
        out = []
        for j in bundle:
            if j not in self.network.index:
                out.append(
                    {
                        "item_id": str(self.items.classes_[j]),
                        "because": None,
                        "ratio": None,
                        "note": "not in the co-purchase network",
                    }
                )
                continue
            evidence = dict(base)
            for other in bundle:
                if other != j and other in self.network.index:
                    evidence[item_node(other)] = (
                        "1",
                        f"bundled with {self.items.classes_[other]}",
                    )
            node = item_node(j)
            full = {v: s for v, (s, _) in evidence.items()}
            p_full = self._prob_on(node, full)
            best = None
            for var, (_, label) in evidence.items():
                rest = {v: s for v, s in full.items() if v != var}
                p_rest = self._prob_on(node, rest)
                ratio = p_full / p_rest if p_rest > 0 else float("inf")
                if best is None or ratio > best[1]:
                    best = (label, ratio)
            out.append(
                {
                    "item_id": str(self.items.classes_[j]),
                    "because": None if best is None else best[0],
                    "ratio": None if best is None else float(best[1]),
                }
            )
        return out

    def _prob_on(self, node: str, evidence: dict[str, str]) -> float:
        post = self.network.engine.query([node], evidence=evidence or None)
        return float(post.get_value(**{node: "1"}))

    def compose(
        self,
        user_code: int,
        anchors: list[int],
        excluded: list[int] = (),
        *,
        k: int = 5,
        size: int = 3,
        budget: float | None = None,
        max_per_category: int = 1,
    ) -> tuple[list[Bundle], list[str]]:
        """Bundles for a shopper given by codes (``user_code`` -1 = unknown); also the notes.

        Relevance is the log fused probability of each item for the shopper (history and anchors
        as context); coherence is the network's joint log-probability given the anchors and the
        shopper's attributes (:meth:`CoPurchaseNetwork.coherence`).
        """
        notes: list[str] = []
        cases = self._serving_cases(np.array([user_code]), list(anchors), list(excluded))
        probs = self.fusion.score(cases)[0].astype(np.float64)
        allowed = ~np.asarray(cases.exclude[0].toarray()).ravel().astype(bool)
        price = self.catalogue.price
        if budget is not None:
            unknown_price = allowed & np.isnan(price)
            if unknown_price.any():
                notes.append(f"{int(unknown_price.sum())} item(s) without a price left out")
            allowed &= ~np.isnan(price)
        evidence = self.network.evidence(anchors, user_code)
        bundles = compose_bundles(
            np.log(np.maximum(probs, 1e-12)),
            price,
            self.category_codes,
            allowed,
            lambda bundles: self.network.coherence(bundles, evidence),
            k=k,
            size=size,
            budget=budget,
            max_per_category=max_per_category,
        )
        if len(bundles) < k:
            notes.append(f"only {len(bundles)} bundle(s) satisfy the constraints")
        return bundles, notes

    @property
    def category_codes(self) -> np.ndarray:
        """(I,) int64 category code per item (for the per-category cap)."""
        return np.unique(self.catalogue.category.astype(str), return_inverse=True)[1]

    def recommend_bundles(
        self,
        user: Any,
        k: int = 5,
        size: int = 3,
        anchor: Any = None,
        budget: float | None = None,
        max_per_category: int = 1,
        exclude: Any = None,
    ) -> dict[str, Any]:
        """``k`` bundles of ``size`` items for a shopper, optionally around anchor items.

        Returns ``{"user", "bundles": [{"items", "total_price", "score", "probability",
        "explanation"}], "notes"}``. An unknown shopper gets popular, coherent bundles and a note;
        an unknown anchor or excluded item raises KeyError naming it.
        """
        self._check_fitted()
        code = self._user_code(user)
        anchors = self._item_codes(anchor, "anchor")
        excluded = self._item_codes(exclude, "excluded")
        bundles, notes = self.compose(
            code,
            anchors,
            excluded,
            k=k,
            size=size,
            budget=budget,
            max_per_category=max_per_category,
        )
        if code < 0:
            notes.insert(0, f"unknown shopper {user!r}: bundles from popular, coherent items")
        return {
            "user": str(user),
            "bundles": [
                {
                    "items": [self._item_record(j) for j in b.items],
                    "total_price": None if np.isnan(b.total_price) else b.total_price,
                    "score": b.score,
                    "probability": b.probability,
                    "explanation": self._explain(b.items, code, anchors),
                }
                for b in bundles
            ],
            "notes": notes,
        }

    # -- feedback ---------------------------------------------------------------------------
    def update(
        self,
        new_events: pd.DataFrame | str | os.PathLike,
        items: pd.DataFrame | str | os.PathLike | None = None,
        users: pd.DataFrame | str | os.PathLike | None = None,
        epochs: int = 2,
    ) -> Recommender:
        """Warm-start both models on new events; new shoppers and items join the model.

        New items get codes after the known ones and vectors from their attributes (``items``,
        encoded with the fitted attribute encoders; unknown values and items without a row get
        the reserved "unknown" codes), a zero id embedding and the smoothed prior of an unseen
        item in the network (cold start). New shoppers get codes and their attributes from
        ``users`` likewise. Then the sequence model trains ``epochs`` more epochs from its current
        weights on the whole history, the network's CPTs get a Dirichlet count update with the
        new baskets, and the baselines are refitted. An empty frame changes nothing.
        """
        self._check_fitted()
        if isinstance(new_events, pd.DataFrame) and new_events.empty:
            return self
        frame = clean(load_events(new_events), window=self.window)
        if frame.empty:
            return self
        items = None if items is None else load_items(items)
        users = None if users is None else load_users(users)
        self._grow_items(frame, items)
        self._grow_users(frame, users)
        new = self._encode(frame)
        offset = self.history.n_baskets
        merged = pd.DataFrame(
            {
                "user": np.concatenate([self.history.user, new.user]),
                "item": np.concatenate([self.history.item, new.item]),
                "basket": np.concatenate([self.history.basket, new.basket + offset]),
                "timestamp": np.concatenate([self.history.timestamp, new.timestamp]),
                "event": np.concatenate([self.history.event, new.event]),
            }
        ).sort_values(["user", "timestamp"], kind="stable")
        self.history = Interactions(
            *(merged[c].to_numpy() for c in ("user", "item", "basket", "timestamp", "event")),
            n_users=len(self.users.classes_),
            n_items=len(self.items.classes_),
        )
        self.sequence.fine_tune(self.history, epochs=epochs, user_features=self.user_features)
        self.network.update(new)
        self._fit_baselines(self.history)
        return self

    def _grow_items(self, frame: pd.DataFrame, items: pd.DataFrame | None) -> None:
        """Append the items of ``frame`` that the model does not know (see :meth:`update`)."""
        labels = pd.Index(frame["item_id"].astype(str).unique())
        fresh = sorted(labels.difference(pd.Index(self.items.classes_)))
        if not fresh:
            return
        ids = Encoder().fit(fresh)
        table = items if items is not None else pd.DataFrame({"item_id": fresh})
        aligned = align(table, "item_id", ids)
        feats: dict[str, np.ndarray] = {}
        for name, state in self.item_state["attributes"].items():
            enc = Encoder.from_json(state)
            values = aligned[name] if name in aligned.columns else pd.Series([None] * len(fresh))
            feats[name] = enc.transform(values.fillna(UNKNOWN).astype(str))
        price = np.full(len(fresh), np.nan)
        if "price" in aligned.columns:
            price = aligned["price"].to_numpy(dtype=float)
        if "price" in frame.columns:
            median = frame.groupby("item_id", observed=True)["price"].median()
            from_events = median.reindex(list(fresh)).to_numpy(dtype=float)
            price = np.where(np.isnan(price), from_events, price)
        if self.item_state["price_scaler"] is not None:
            feats["price_bucket"] = PriceScaler.from_json(
                self.item_state["price_scaler"]
            ).bucketize(price)
        if "category" in aligned.columns:
            category = aligned["category"].astype(object).where(aligned["category"].notna())
            category = np.where(category.isna(), np.asarray(fresh, dtype=object), category)
        else:
            category = np.asarray(fresh, dtype=object)
        feats = {name: feats[name] for name in self.catalogue.features}
        self.items = self.items.extend(fresh)
        self.catalogue = Catalogue(
            {n: np.concatenate([v, feats[n]]) for n, v in self.catalogue.features.items()},
            np.concatenate([self.catalogue.category, category.astype(str).astype(object)]),
            np.concatenate([self.catalogue.price, price]),
        )
        self.sequence.grow_items(len(fresh), feats or None)
        self.network.grow_items(len(fresh))

    def _grow_users(self, frame: pd.DataFrame, users: pd.DataFrame | None) -> None:
        """Append the shoppers of ``frame`` that the model does not know (see :meth:`update`)."""
        labels = pd.Index(frame["user_id"].astype(str).unique())
        fresh = sorted(labels.difference(pd.Index(self.users.classes_)))
        if not fresh:
            return
        ids = Encoder().fit(fresh)
        table = users if users is not None else pd.DataFrame({"user_id": fresh})
        aligned = align(table, "user_id", ids)
        for name, state in self.user_state.items():
            enc = Encoder.from_json(state)
            values = aligned[name] if name in aligned.columns else pd.Series([None] * len(fresh))
            codes = enc.transform(values.fillna(UNKNOWN).astype(str))
            codes[codes >= len(enc.classes_)] = -1  # a value no training shopper had
            self.user_features[name] = np.concatenate([self.user_features[name], codes])
        self.users = self.users.extend(fresh)
        self.network.set_user_features(self.user_features)

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write the model directory atomically (see the module docstring)."""
        self._check_fitted()
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        seq_arrays, seq_config = self.sequence.get_state()
        h = self.history
        arrays = {
            "sequence": seq_arrays,
            "history": {
                "user": h.user,
                "item": h.item,
                "basket": h.basket,
                "timestamp": h.timestamp,
                "event": h.event,
            },
            "catalogue": {
                "price": self.catalogue.price,
                **{f"feature.{k}": v for k, v in self.catalogue.features.items()},
            },
            "user_features": self.user_features,
            "network": {"items": self.network.items, "prior": self.network.prior},
        }
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "task": self.task,
            "config": {
                "sequence": self.sequence_config,
                "network": self.network_config,
                "window": self.window,
                "valid_share": self.valid_share,
                "seed": self.seed,
            },
            "users": self.users.to_json(),
            "items": self.items.to_json(),
            "n_users": h.n_users,
            "n_items": h.n_items,
            "item_state": self.item_state,
            "user_state": self.user_state,
            "category": [str(c) for c in self.catalogue.category],
            "sequence": seq_config,
            "network": {
                "attributes": self.network.attributes,
                "n_rows": self.network.n_rows,
                "config": self.network_config,
            },
            "fusion": {"weights": self.fusion.weights, "bias": self.fusion.bias},
        }
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            corenn.save(arrays, tmp / "arrays.npz")
            pgm.write_bif(self.network.model, tmp / "network.bif")
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            old = None
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(directory, old)
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Recommender:
        """Read a model directory written by :meth:`save` (no code is executed)."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.is_file():
            raise ModelDirError(f"{directory} is not a bundlerec model directory (no meta.json)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelDirError(f"{meta_path} is corrupt: {err}") from err
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ModelDirError(
                f"{directory}: format {meta.get('format')!r} version {meta.get('version')!r}, "
                f"expected {FORMAT!r} version {VERSION}"
            )
        try:
            arrays = corenn.load(directory / "arrays.npz")
            network = pgm.read_bif(directory / "network.bif")
        except (ValueError, OSError) as err:
            raise ModelDirError(f"{directory}: {err}") from err
        cfg = meta["config"]
        self = cls(
            task=meta["task"],
            sequence=cfg["sequence"],
            network=cfg["network"],
            window=cfg["window"],
            valid_share=cfg["valid_share"],
            seed=cfg["seed"],
            verbose=False,
        )
        try:
            self.users = Encoder.from_json(meta["users"])
            self.items = Encoder.from_json(meta["items"])
            self.item_state, self.user_state = meta["item_state"], meta["user_state"]
            cat = arrays["catalogue"]
            self.catalogue = Catalogue(
                {k[len("feature.") :]: v for k, v in cat.items() if k.startswith("feature.")},
                np.asarray(meta["category"], dtype=object),
                cat["price"],
            )
            self.user_features = dict(arrays.get("user_features", {}))
            h = arrays["history"]
            self.history = Interactions(
                h["user"],
                h["item"],
                h["basket"],
                h["timestamp"],
                h["event"],
                meta["n_users"],
                meta["n_items"],
            )
            self.sequence = SequenceModel.from_state(arrays["sequence"], meta["sequence"])
            self.network = CoPurchaseNetwork.from_state(
                network, arrays["network"], meta["network"], meta["n_items"], self.user_features
            )
            self.fusion = Fusion({"sequence": self.sequence, "copurchase": self.network})
            self.fusion.weights = dict(meta["fusion"]["weights"])
            self.fusion.bias = float(meta["fusion"]["bias"])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelDirError(f"{directory}: model files are inconsistent: {err}") from err
        self._fit_baselines(self.history)
        self.fitted = True
        return self
