"""Bundle composition: a beam search for sets of items that are relevant and go together.

A bundle B of ``size`` items is scored

    score(B) = sum_{i in B} relevance_i + coherence(B),

``fixed`` items (the product a "bought together" widget is shown on) are part of every bundle:
they count towards ``size``, the budget and the category cap, and the search adds the
``size - len(fixed)`` companions around them.

where ``relevance_i`` is the item's log fused probability for the shopper and ``coherence(B)`` the
co-purchase network's ``log P(all of B bought | cart items, shopper attributes)``. With item
``value`` s (price or margin: the revenue and margin objectives) the score adds
``log sum_{i in B} value_i``, so the search maximises the log of the bundle's expected value
``P(B) * value(B)`` rather than its likelihood alone; bundles of non-positive value are dropped.
With ``promoted`` items and ``n_promoted``, every bundle holds at least ``n_promoted`` promoted
companions (slots reserved for a promotion). The search keeps
the ``beam_width`` best partial bundles, extends each with every candidate that keeps the
constraints (total price <= budget, at most ``max_per_category`` items of a category, allowed
items only), and finally picks ``k`` bundles greedily, each penalised by ``overlap_penalty`` per
item it shares with the bundles already picked, so the k bundles differ.

Letters: I items, C candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Bundle", "compose_bundles"]


@dataclass(frozen=True)
class Bundle:
    """One composed bundle.

    Attributes
    ----------
    items : tuple of int
        Item codes, in the order the search added them.
    total_price : float
    score : float
        Relevance plus coherence (before the overlap penalty).
    log_probability : float
        ``coherence(items)``: log-probability that all items are bought together.
    """

    items: tuple[int, ...]
    total_price: float
    score: float
    log_probability: float

    @property
    def probability(self) -> float:
        return float(np.exp(self.log_probability))


def _check(relevance, prices, categories, allowed, size, k, budget, max_per_category):
    n = relevance.shape[0]
    for name, arr in (("prices", prices), ("categories", categories), ("allowed", allowed)):
        if arr.shape != (n,):
            raise ValueError(f"{name} has shape {arr.shape}, expected ({n},) like relevance")
    if size < 1:
        raise ValueError(f"bundle size must be >= 1, got {size}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if max_per_category < 1:
        raise ValueError(f"max_per_category must be >= 1, got {max_per_category}")
    if budget is not None and not budget > 0:
        raise ValueError(f"budget must be positive, got {budget}")


def _ranked_prefix(relevance: np.ndarray, items: np.ndarray, m: int) -> np.ndarray:
    """The ``items`` ranked by relevance (ties: lower code), cut after the ``m``-th; items tied
    with the ``m``-th come along, so the prefix is that of the full ranking."""
    if m < items.size:
        values = relevance[items]
        cut = np.partition(values, items.size - m)[items.size - m]  # the m-th largest
        items = items[values >= cut]
    return items[np.lexsort((items, -relevance[items]))]


def _top(relevance: np.ndarray, items: np.ndarray, n: int, categories=None, cap=None, ranked=None):
    """The ``n`` most relevant of ``items`` (ties: lower code), at most ``cap`` per category.

    Only a prefix of the ranking is sorted (a partition finds it; ``ranked``: one already made
    by :func:`_ranked_prefix`), deepened fourfold while the category cap leaves fewer than
    ``n``: large catalogues rank in O(I) rather than O(I log I).
    """
    depth = 4 * n if ranked is None else ranked.size
    while True:
        if ranked is None:
            ranked = _ranked_prefix(relevance, items, depth)
        if cap is None:
            return ranked[:n]
        _, first = np.unique(categories[ranked], return_inverse=True)
        seen = np.zeros(first.max() + 1 if first.size else 0, dtype=np.int64)
        keep = []
        for j, c in zip(ranked.tolist(), first.tolist()):
            if seen[c] < cap:
                seen[c] += 1
                keep.append(j)
                if len(keep) == n:
                    return np.asarray(keep, dtype=np.int64)
        if ranked.size == items.size:
            return np.asarray(keep, dtype=np.int64)
        depth, ranked = 4 * max(depth, ranked.size), None


def _candidates(
    relevance,
    prices,
    categories,
    ok,
    n,
    size,
    budget,
    max_per_category,
    promoted=None,
    unknown=None,
):
    """The search pool: the ``n`` most relevant allowed items, plus the ``n`` most relevant
    with at most ``max_per_category`` per category (so bundles can span categories), plus,
    under a budget, the ``n`` most relevant of those priced at most ``budget / size`` (so a
    bundle that fits the budget exists whenever the categories allow), plus, with ``promoted``
    (I,) bool, the ``n`` most relevant promoted items (and the cheap ones under a budget).

    ``unknown`` (I,) bool: further items that would be allowed but whose relevance is not
    known, each ranking after every ``ok`` item; None (the pool) when a part of it could hold
    one of them (it has fewer than ``n`` known items and an unknown one fits its filter)."""
    items = np.nonzero(ok)[0]
    ranked = _ranked_prefix(relevance, items, 16 * n)  # one partition for the first two parts
    parts = [ranked[:n], _top(relevance, items, n, categories, max_per_category, ranked)]
    picks = [None]  # the filter of each part after the first
    if budget is not None:
        picks.append(lambda x: x[prices[x] <= budget / size])
    if promoted is not None:
        picks.append(lambda x: x[promoted[x]])
        if budget is not None:
            picks.append(lambda x: x[promoted[x] & (prices[x] <= budget / size)])
    for pick in picks[1:]:
        parts.append(_top(relevance, pick(items), n, categories, max_per_category))
    if unknown is not None:
        later = np.flatnonzero(unknown)
        for part, pick in zip(parts[1:], picks):
            if part.size < n and (later if pick is None else pick(later)).size:
                return None
    pool = np.unique(np.concatenate(parts))
    return pool[np.lexsort((pool, -relevance[pool]))]


def _objective_parts(value, promoted, n_promoted, n_items, free):
    """Checked ``value`` (float64 or None) and ``promoted`` (bool or None) arrays."""
    if value is not None:
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (n_items,):
            raise ValueError(f"value has shape {value.shape}, expected ({n_items},)")
    if not 0 <= n_promoted <= free:
        raise ValueError(f"n_promoted must be in [0, {free}] (the free slots), got {n_promoted}")
    if n_promoted:
        if promoted is None:
            raise ValueError("n_promoted > 0 needs the promoted items")
        promoted = np.asarray(promoted, dtype=bool)
        if promoted.shape != (n_items,):
            raise ValueError(f"promoted has shape {promoted.shape}, expected ({n_items},)")
    return value, promoted


def _beam_search(
    relevance,
    prices,
    categories,
    candidates,
    coherence,
    fixed,
    free,
    budget,
    max_per_category,
    value,
    promoted,
    n_promoted,
    beam_width,
) -> list[Bundle]:
    """The beam search of :func:`compose_bundles` over the (C,) int64 ``candidates`` (best
    first): bundles of the ``fixed`` items plus ``free`` candidates, best score first (at most
    ``beam_width``); ``value`` (I,) float64 or None, ``promoted`` (I,) bool or None (with
    ``n_promoted`` 0). Empty when no bundle fits.

    The beam is a (B, s) array of partial bundles (items in the order added), extended by
    every fitting candidate at once: the pairs (partial, candidate) come in the order of the
    loops "for partial in beam: for candidate in candidates", and of equal item sets the first
    is kept.
    """
    candidate_price = prices[candidates]
    candidate_category = categories[candidates]
    candidate_promo = promoted[candidates].astype(np.int64) if n_promoted else None
    beam = np.array([fixed], dtype=np.int64).reshape(1, len(fixed))
    for step in range(free):
        left = free - step - 1  # companions still to add after this one
        fits = ~(beam[:, :, None] == candidates[None, None, :]).any(axis=1)
        if budget is not None:
            spent = np.zeros(beam.shape[0])
            for column in beam.T:  # summed in the bundle's order
                spent = spent + prices[column]
            fits &= ~(spent[:, None] + candidate_price[None, :] > budget)
        same = categories[beam][:, :, None] == candidate_category[None, None, :]
        fits &= same.sum(axis=1) < max_per_category
        if n_promoted:  # the reserved promoted slots must still be fillable
            promos = promoted[beam[:, len(fixed) :]].sum(axis=1)
            fits &= promos[:, None] + candidate_promo[None, :] + left >= n_promoted
        rows, cols = np.nonzero(fits)
        if not rows.size:
            return []
        grown = np.hstack([beam[rows], candidates[cols, None]])
        # the item sets in sorted order (the search's order, and its tie-break among equal
        # scores), each with the first partial + candidate that made it
        sets = np.sort(grown, axis=1)
        if float(relevance.size) ** sets.shape[1] < 2.0**62:  # one int64 per set, same order
            code = np.zeros(len(sets), dtype=np.int64)
            for column in sets.T:
                code = code * relevance.size + column
            _, first = np.unique(code, return_index=True)
        else:
            _, first = np.unique(sets, axis=0, return_index=True)
        sets, grown = sets[first], grown[first]
        log_p = np.asarray(coherence(list(map(tuple, sets.tolist()))), dtype=np.float64)
        if log_p.shape != (len(sets),):
            raise ValueError(f"coherence returned shape {log_p.shape} for {len(sets)} bundles")
        members = relevance[grown]
        score = members[:, 0]  # summed in the bundle's order: the sum a Python loop makes
        for column in range(1, members.shape[1]):
            score = score + members[:, column]
        score = score + log_p
        kept = np.arange(len(sets))
        if value is not None:
            total = np.zeros(len(sets))
            for column in grown.T:
                total = total + value[column]
            with np.errstate(divide="ignore", invalid="ignore"):
                worths = np.where(total > 0, np.log(np.where(total > 0, total, 1.0)), -np.inf)
            score = score + worths
            if step == free - 1:
                kept = np.flatnonzero(np.isfinite(worths))  # bundles of no value are dropped
        # best first, equal scores in the order of the sets (a stable sort of sorted sets)
        order = kept[np.argsort(-score[kept], kind="stable")][:beam_width]
        beam = grown[order]
        if not beam.shape[0]:
            return []

    return [
        Bundle(
            items=items,
            total_price=float(prices[list(items)].sum()),
            score=float(score[i]),
            log_probability=float(log_p[i]),
        )
        for i, items in zip(order.tolist(), map(tuple, beam.tolist()))
    ]


def compose_bundles(
    relevance: np.ndarray,
    prices: np.ndarray,
    categories: np.ndarray,
    allowed: np.ndarray,
    coherence: Callable[[Sequence[tuple[int, ...]]], np.ndarray],
    *,
    k: int = 5,
    size: int = 3,
    budget: float | None = None,
    max_per_category: int = 1,
    n_candidates: int = 15,
    beam_width: int | None = None,
    overlap_penalty: float = 2.0,
    fixed: Sequence[int] = (),
    value: np.ndarray | None = None,
    promoted: np.ndarray | None = None,
    n_promoted: int = 0,
    unknown: np.ndarray | None = None,
) -> list[Bundle] | None:
    """Compose up to ``k`` bundles of exactly ``size`` items under the constraints.

    Parameters
    ----------
    relevance : ndarray, shape (I,), float
        Per-item relevance (log fused probability); higher is better.
    prices : ndarray, shape (I,), float
    categories : ndarray, shape (I,), int
    allowed : ndarray, shape (I,), bool
        Items that may appear (not bought, not excluded, not an anchor).
    coherence : callable
        ``coherence(bundles) -> (len(bundles),) float``: for each bundle (a sorted tuple of
        items), the log-probability that its items are bought together given the evidence. Called
        once per search step on all new candidates at once; results are memoised here.
    k, size, budget, max_per_category
        Number of bundles, items per bundle, price cap on the bundle's total, category cap.
    n_candidates : int
        The search considers the ``n_candidates`` most relevant allowed items that fit the budget.
    beam_width : int, optional
        Partial bundles kept per step (default ``3 * k``).
    overlap_penalty : float
        Subtracted from a bundle's score per companion shared with an already chosen bundle.
    fixed : sequence of int
        Items in every bundle, first (whether or not ``allowed``); ``size`` must exceed their
        number. ``coherence`` sees whole bundles, fixed items included.
    value : ndarray, shape (I,), float, optional
        Per-item value (price, margin): the score adds ``log`` of the bundle's total value,
        fixed items included; items of NaN value are left out, bundles of total value <= 0
        dropped.
    promoted : ndarray, shape (I,), bool, optional
        Promoted items.
    n_promoted : int
        Companions (not fixed items) of every bundle that must be ``promoted``; at most
        ``size - len(fixed)``.
    unknown : ndarray, shape (I,), bool, optional
        Items (not fixed) whose relevance is not known yet (their entries are not read):
        each has a finite relevance and ranks after every other item, below it or tied with
        it and of a higher code (the rest of a ranking whose prefix is known,
        :meth:`~bundlerec.models.fusion.Fusion.prefixes`). The bundles are those of the full
        relevance, or None when the candidate pool could hold an unknown item (call again
        with more of the ranking known).

    Returns
    -------
    list of Bundle or None
        At most ``k`` (fewer when the constraints admit fewer), best first. Every bundle has
        ``size`` distinct items, the fixed ones first and the others allowed, total price <=
        budget, <= max_per_category per category and at least ``n_promoted`` promoted
        companions. None only with ``unknown`` (see there).
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    prices = np.asarray(prices, dtype=np.float64)
    categories = np.asarray(categories)
    allowed = np.asarray(allowed, dtype=bool)
    _check(relevance, prices, categories, allowed, size, k, budget, max_per_category)
    fixed = tuple(int(j) for j in fixed)
    if len(set(fixed)) != len(fixed) or any(not 0 <= j < relevance.shape[0] for j in fixed):
        raise ValueError(f"fixed items must be distinct item codes, got {list(fixed)}")
    if size <= len(fixed):
        raise ValueError(
            f"size counts the fixed (anchor) items: size {size} leaves no room beside "
            f"{len(fixed)} of them"
        )
    beam_width = beam_width or 3 * k
    fixed_price = float(prices[list(fixed)].sum()) if fixed else 0.0
    if fixed and (
        (budget is not None and not fixed_price <= budget)
        or np.unique(categories[list(fixed)], return_counts=True)[1].max() > max_per_category
    ):
        return []  # the fixed items alone break the budget or the category cap
    ok = allowed & np.isfinite(relevance)
    if unknown is not None:
        unknown = np.asarray(unknown, dtype=bool)
        if unknown.shape != ok.shape:
            raise ValueError(f"unknown has shape {unknown.shape}, expected {ok.shape}")
        if unknown[list(fixed)].any():
            raise ValueError("the relevance of the fixed items must be known")
        ok |= allowed & unknown  # taken as finite
    ok[list(fixed)] = False
    room = None if budget is None else budget - fixed_price
    if room is not None:
        ok &= prices <= room  # also drops items of unknown (NaN) price
    free = size - len(fixed)
    value, promoted = _objective_parts(value, promoted, n_promoted, relevance.shape[0], free)
    if value is not None:
        ok &= ~np.isnan(value)
    if unknown is not None:
        unknown = ok & unknown
        ok &= ~unknown
    pool = _candidates(
        relevance,
        prices,
        categories,
        ok,
        max(n_candidates, free),
        free,
        room,
        max_per_category,
        promoted if n_promoted else None,
        unknown,
    )
    if pool is None:
        return None
    finals = _beam_search(
        relevance,
        prices,
        categories,
        pool.astype(np.int64),
        coherence,
        fixed,
        free,
        budget,
        max_per_category,
        value,
        promoted if n_promoted else None,
        n_promoted,
        beam_width,
    )
    chosen: list[Bundle] = []
    while finals and len(chosen) < k:
        used = [set(b.items[len(fixed) :]) for b in chosen]
        best = max(
            finals,
            key=lambda b, used=used: (
                b.score - overlap_penalty * sum(len(u & set(b.items)) for u in used),
                tuple(-i for i in sorted(b.items)),
            ),
        )
        chosen.append(best)
        finals.remove(best)
    return chosen
