"""Promotions and the value a bundle search maximises.

A promotions table (:func:`bundlerec.data.load_promotions`) lists ``item_id``, ``promo_price``
or ``discount``, ``start`` and ``end``. At a moment ``now`` a promotion is active when
``start <= now < end``; an item with several active promotions takes the lowest price. Bundles
are priced at these prices (``total_price``, ``budget`` and the expected revenue see them).

Objectives (:data:`OBJECTIVES`) decide each item's value in the bundle search
(:func:`bundlerec.compose.compose_bundles`): ``"probability"`` none (the most likely bundle),
``"revenue"`` its price, ``"margin"`` its price less its unit ``cost`` (items table): the search
then maximises ``log P(bundle) + log value(bundle)``, the log of the expected value.

Letters: I items.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bundlerec.prep import Encoder

__all__ = ["OBJECTIVES", "active_prices", "item_values", "promoted_slots"]

OBJECTIVES = ("probability", "revenue", "margin")


def active_prices(
    promotions: pd.DataFrame | None, ids: Encoder, price: np.ndarray, now: int
) -> tuple[np.ndarray, np.ndarray]:
    """Prices at ``now`` and the promoted items.

    Parameters
    ----------
    promotions : DataFrame or None
        As :func:`bundlerec.data.load_promotions` returns it; rows of unknown items are ignored.
    ids : Encoder
        The model's item ids (I classes).
    price : ndarray (I,) float64
        Regular prices (NaN unknown).
    now : int
        Epoch seconds.

    Returns
    -------
    prices : ndarray (I,) float64
        ``price`` with each promoted item's lowest active promotional price (a discount of a
        NaN price stays NaN).
    promoted : ndarray (I,) bool
        Items with an active promotion.
    """
    prices = np.array(price, dtype=np.float64)
    promoted = np.zeros(prices.size, dtype=bool)
    if promotions is None or promotions.empty:
        return prices, promoted
    active = promotions[(promotions["start"] <= now) & (now < promotions["end"])]
    codes = ids.transform(active["item_id"])
    known = codes >= 0
    codes = codes[known]
    given = active["promo_price"].to_numpy(dtype=float)[known]
    discount = active["discount"].to_numpy(dtype=float)[known]
    offer = np.where(np.isnan(given), prices[codes] * (1.0 - discount), given)
    lowest = np.full(prices.size, np.inf)
    np.minimum.at(lowest, codes, np.where(np.isnan(offer), np.inf, offer))
    promoted[codes] = True
    cheaper = np.isfinite(lowest)
    prices[cheaper] = lowest[cheaper]
    return prices, promoted


def item_values(objective: str, prices: np.ndarray, cost: np.ndarray) -> np.ndarray | None:
    """(I,) float64 value of each item for ``objective`` (None for ``"probability"``).

    ``"revenue"``: the price; ``"margin"``: price - cost. NaN (the item is left out of the
    search) where the price, or for the margin the cost, is unknown.

    Raises
    ------
    ValueError
        An unknown objective, or ``"margin"`` without any known cost.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "probability":
        return None
    if objective == "revenue":
        return np.asarray(prices, dtype=np.float64)
    if not np.isfinite(cost).any():
        raise ValueError("objective 'margin' needs a cost column in the items table")
    return np.asarray(prices, dtype=np.float64) - cost


def promoted_slots(share: float, free: int) -> int:
    """Companion slots of a bundle reserved for promoted items: ``ceil(share * free)``, so the
    promoted share of every bundle's companions is at least ``share``."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"promote share must be in [0, 1], got {share}")
    return min(free, math.ceil(share * free - 1e-9))
