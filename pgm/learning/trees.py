"""Chow-Liu trees: pairwise mutual information and its maximum spanning tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pgm.errors import PGMError
from pgm.learning.encoding import Data, encode
from pgm.models import BayesianNetwork


# -- Chow-Liu ----------------------------------------------------------------------------------
def _pair_counts(enc: Data, chunk: int = 8192) -> np.ndarray:
    """Joint counts of every pair of (variable, state): float64 ``(S, S)``, ``S = sum_i r_i``.

    Only the indicators of the states ``k >= 1`` enter the GEMM, with a constant column; the
    state-0 indicator of variable ``i`` is ``1 - sum_{k>=1} x_ik``, applied afterwards by the
    linear map ``T``: ``C = T^T G T`` with ``G = [1, X]^T [1, X]``.
    """
    cards = enc.cards
    d, n = enc.codes.shape
    nf_off = np.concatenate([[1], 1 + np.cumsum(cards - 1)])  # row of state 1 of each var
    width = int(nf_off[-1])
    var_of = np.repeat(np.arange(d), cards - 1)  # variable and state of indicator rows 1..
    state_of = np.concatenate([np.arange(1, c) for c in cards])[:, None]
    gram = np.zeros((width, width))
    for start in range(0, n, chunk):
        block = enc.codes[:, start : start + chunk]
        xt = np.empty((width, block.shape[1]), dtype=np.float32)  # exact: counts < 2**24
        xt[0] = 1.0
        xt[1:] = block[var_of] == state_of
        gram += xt @ xt.T
    full_off = np.concatenate([[0], np.cumsum(cards)])
    t = np.zeros((width, int(full_off[-1])))
    for i in range(d):
        first, k = full_off[i], int(cards[i])
        states = np.arange(nf_off[i], nf_off[i] + k - 1)
        t[0, first] = 1.0
        t[states, first] = -1.0
        t[states, np.arange(first + 1, first + k)] = 1.0
    return np.rint(t.T @ gram @ t)


def _mutual_information(enc: Data) -> np.ndarray:
    counts = _pair_counts(enc)
    n = max(enc.n_rows, 1)
    joint = counts / n
    marginal = np.diag(joint)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / np.outer(marginal, marginal)), 0.0)
    starts = np.concatenate([[0], np.cumsum(enc.cards)[:-1]])
    mi = np.add.reduceat(np.add.reduceat(terms, starts, axis=0), starts, axis=1)
    return np.maximum((mi + mi.T) / 2, 0.0)


def mutual_information_matrix(data: Any, state_names: Mapping | None = None) -> np.ndarray:
    """Empirical mutual information of every pair of columns, in nats.

    ``I(X_a; X_b) = sum_xy p(x, y) log(p(x, y) / (p(x) p(y)))`` from the joint counts of all
    pairs, computed by one matrix product of state indicators.

    Parameters
    ----------
    data : DataFrame or ndarray
        See the module docstring.
    state_names : dict, optional

    Returns
    -------
    ndarray of float64, shape (d, d)
        Symmetric, non-negative; the diagonal holds the entropies ``I(X; X) = H(X)``.
    """
    return _mutual_information(encode(data, state_names))


def _prim(weights: np.ndarray, root: int) -> list[tuple[int, int]]:
    """Maximum spanning tree by Prim's algorithm, as (parent, child) edges away from ``root``.

    Ties: the candidate with the lowest index joins first, attached to the tree vertex that
    reached the best weight first.
    """
    d = weights.shape[0]
    in_tree = np.zeros(d, dtype=bool)
    in_tree[root] = True
    best = weights[root].astype(np.float64)
    parent = np.full(d, root)
    edges = []
    for _ in range(d - 1):
        v = int(np.argmax(np.where(in_tree, -np.inf, best)))
        edges.append((int(parent[v]), v))
        in_tree[v] = True
        better = ~in_tree & (weights[v] > best)
        best[better] = weights[v][better]
        parent[better] = v
    return edges


def chow_liu_tree(
    data: Any, root: Any = None, state_names: Mapping | None = None
) -> BayesianNetwork:
    """The Chow-Liu tree: the maximum spanning tree of pairwise mutual information.

    Parameters
    ----------
    data : DataFrame or ndarray
        See the module docstring; every column becomes a node.
    root : hashable, optional
        The node the edges point away from; default the first column.
    state_names : dict, optional

    Returns
    -------
    BayesianNetwork
        Structure only (no CPDs): nodes in column order, ``d - 1`` edges directed away from
        ``root``. Ties between equal weights are broken by column order, so the result is
        deterministic. Fit parameters with :func:`estimate_parameters`.
    """
    enc = encode(data, state_names)
    if not enc.names:
        raise PGMError("chow_liu_tree needs at least one column")
    root_index = 0 if root is None else enc.column(root)
    edges = _prim(_mutual_information(enc), root_index)
    model = BayesianNetwork()
    model.add_nodes_from(enc.names)
    model.add_edges_from([(enc.names[u], enc.names[v]) for u, v in edges])
    return model
