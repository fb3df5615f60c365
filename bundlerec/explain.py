"""Why an item is in a bundle: the piece of evidence that raised its probability most.

For each bundle item ``j`` in the co-purchase network, the evidence is the cart items, the
shopper's attributes and the bundle's other items (anchors included); the explanation names the
piece whose removal lowers ``P(X_j = 1 | evidence)`` most, with the ratio
``P(j | all) / P(j | all but that piece)``. A ratio below :data:`MIN_RATIO` is no reason: the item
is then a "popular choice" (nothing personal supports it). Anchors are the product shown, not
explained.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import pgm
from bundlerec.models.copurchase import CoPurchaseNetwork, item_node, user_node
from bundlerec.prep import UNKNOWN, Encoder

__all__ = ["MIN_RATIO", "explain_bundle"]

MIN_RATIO = 1.1  # a piece of evidence must raise the item's probability by 10% to be a reason


def _evidence_labels(
    network: CoPurchaseNetwork,
    items: Encoder,
    user_state: dict[str, Any],
    user: int,
    anchors: list[int],
) -> dict[str, tuple[str, str]]:
    """Network evidence ``{node: (state, label)}`` of the cart items and shopper attributes."""
    labels = {
        item_node(j): ("1", f"in cart: {items.classes_[j]}") for j in anchors if j in network.index
    }
    if user >= 0:
        for name in network.attributes:
            code = int(network.user_features[name][user])
            if code < 0:
                continue
            classes = user_state[name]["classes"]
            value = classes[code] if code < len(classes) else UNKNOWN
            labels[user_node(name)] = (str(code), f"shopper {name} = {value}")
    return labels


def _ratios(full: float, rest: np.ndarray) -> np.ndarray:
    """``full / rest`` entry by entry; +inf where ``rest`` is 0."""
    with np.errstate(divide="ignore"):
        return np.where(rest > 0, full / np.where(rest > 0, rest, 1.0), np.inf)


def explain_bundle(
    network: CoPurchaseNetwork,
    items: Encoder,
    user_state: dict[str, Any],
    bundle: tuple[int, ...],
    user: int,
    context: list[int],
    anchors: list[int] = (),
) -> list[dict[str, Any]]:
    """One record per bundle item: ``{"item_id", "because", "ratio"}`` (see the module doc).

    Parameters
    ----------
    network : CoPurchaseNetwork
        The fitted co-purchase network.
    items : Encoder
        Item-id encoder (codes to ids for the labels).
    user_state : dict
        Encoder states of the shopper attributes (codes to values for the labels).
    bundle : tuple of int
        Item codes of the bundle.
    user : int
        Shopper code, -1 when unknown (no attribute evidence).
    context : list of int
        Item codes in the cart (anchors included or not).
    anchors : list of int
        Item codes of the bundle's anchors: noted as the product shown.

    Returns
    -------
    list of dict
        ``{"item_id", "because", "ratio"}``; with ``because = ratio = None`` and a ``note`` for
        anchors, items outside the network and items no evidence raises by :data:`MIN_RATIO`.
    """
    base = _evidence_labels(
        network, items, user_state, user, [j for j in context if j not in set(bundle)]
    )
    labels = dict(base)  # the evidence of every item: this, less the item itself
    for other in bundle:
        if other in network.index:
            labels[item_node(other)] = ("1", f"bundled with {items.classes_[other]}")
    explained = [j for j in bundle if j not in anchors and j in network.index]
    posteriors = pgm.leave_one_out(
        network.engine,
        {item_node(j): "1" for j in explained if len(labels) > 1},
        {var: state for var, (state, _) in labels.items()},
    )
    out = []
    for j in bundle:
        item_id = str(items.classes_[j])
        if j in anchors:
            out.append({"item_id": item_id, "because": None, "ratio": None, "note": "anchor"})
            continue
        if j not in network.index:
            out.append(
                {
                    "item_id": item_id,
                    "because": None,
                    "ratio": None,
                    "note": "not in the co-purchase network",
                }
            )
            continue
        node = item_node(j)
        best = None
        if node in posteriors:
            ratios = _ratios(*posteriors[node])
            r = int(np.argmax(ratios))  # the first piece among equal ratios
            best = ([label for var, (_, label) in labels.items() if var != node][r], ratios[r])
        if best is None or best[1] < MIN_RATIO:
            out.append(
                {"item_id": item_id, "because": None, "ratio": None, "note": "popular choice"}
            )
        else:
            out.append({"item_id": item_id, "because": best[0], "ratio": float(best[1])})
    return out
