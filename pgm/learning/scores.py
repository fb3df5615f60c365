"""Family counts (one ``np.bincount`` over mixed-radix codes per family), family scores (BIC,
BDeu) and the score of a whole structure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln

from pgm.errors import PGMError
from pgm.learning.encoding import Data, encode
from pgm.models import BayesianNetwork


# -- counting and scores -----------------------------------------------------------------------
def _family_code(data: Data, child: int, parents: Sequence[int]) -> tuple[np.ndarray, int]:
    """Mixed-radix codes ``j * r + k`` per row (last parent fastest in ``j``) and ``q``."""
    cards = data.cards
    q = 1
    code = np.zeros(data.n_rows, dtype=np.int64)
    for p in parents:
        q *= int(cards[p])
        code *= cards[p]
        code += data.codes[p]
    if q * int(cards[child]) >= 2**62:
        raise PGMError(f"family of {data.names[child]!r} has too many configurations to count")
    code *= cards[child]
    code += data.codes[child]
    return code, q


def family_counts(data: Data, child: int, parents: Sequence[int]) -> np.ndarray:
    """``N[k, j]``: int64 array of shape ``(r, q)``, the pgmpy CPD layout."""
    code, q = _family_code(data, child, parents)
    r = int(data.cards[child])
    return np.bincount(code, minlength=q * r).reshape(q, r).T


def family_score(data: Data, child: int, parents: Sequence[int], score: str, ess: float) -> float:
    """Decomposable score of one family, from its non-zero counts only.

    ``bic``:  ``sum_jk N_jk log(N_jk / N_j) - 0.5 log(n) q (r - 1)``.
    ``bdeu``: ``sum_j [lgG(a) - lgG(a + N_j)] + sum_jk [lgG(b + N_jk) - lgG(b)]`` with
    ``a = ess / q`` and ``b = ess / (q r)``; empty cells and configurations add zero.
    """
    code, q = _family_code(data, child, parents)
    r = int(data.cards[child])
    if q * r <= 4 * code.size + 4096:
        n_jk = np.bincount(code, minlength=q * r)
        n_j = n_jk.reshape(q, r).sum(axis=1)
        n_jk, n_j = n_jk[n_jk > 0], n_j[n_j > 0]
    else:
        n_jk = np.unique(code, return_counts=True)[1]
        n_j = np.unique(code // r, return_counts=True)[1]
    if score == "bic":
        loglik = np.dot(n_jk, np.log(n_jk)) - np.dot(n_j, np.log(n_j))
        return float(loglik - 0.5 * np.log(max(data.n_rows, 1)) * q * (r - 1))
    a, b = ess / q, ess / (q * r)
    return float(np.sum(gammaln(a) - gammaln(a + n_j)) + np.sum(gammaln(b + n_jk) - gammaln(b)))


def check_score(score: str, ess: float) -> None:
    if score not in ("bic", "bdeu"):
        raise PGMError(f"unknown score {score!r}; use 'bic' or 'bdeu'")
    if not ess > 0:
        raise PGMError(f"equivalent_sample_size must be > 0, got {ess}")


def structure_data(structure: BayesianNetwork, data: Any, state_names: Mapping | None) -> Data:
    """Encode the columns of ``structure``'s nodes; states: ``state_names``, else the node's
    CPD (if it has one), else the data."""
    if not isinstance(structure, BayesianNetwork):
        raise TypeError(f"structure must be a BayesianNetwork, not {type(structure).__name__}")
    names = dict(state_names or {})
    for node in structure.nodes():
        cpd = structure.get_cpds(node)
        if node not in names and cpd is not None:
            names[node] = cpd.state_names[node]
    return encode(data, names, columns=structure.nodes())


def structure_score(
    structure: BayesianNetwork,
    data: Any,
    score: str = "bic",
    equivalent_sample_size: float = 10.0,
    state_names: Mapping | None = None,
) -> float:
    """Total decomposable score of a structure on data: the sum of its family scores.

    Parameters
    ----------
    structure : BayesianNetwork
        Nodes and edges (CPDs, if any, only supply state names).
    data : DataFrame or ndarray
        See the module docstring; must hold a column per node.
    score : {"bic", "bdeu"}
        BIC: ``sum_i sum_jk N_ijk log(N_ijk / N_ij) - 0.5 log(n) q_i (r_i - 1)``.
        BDeu: the log marginal likelihood under Dirichlet priors with
        ``alpha_ijk = ESS / (q_i r_i)``.
    equivalent_sample_size : float, default 10
        ESS of the BDeu prior (ignored by BIC).
    state_names : dict, optional
        ``{variable: [states]}``, see the module docstring.

    Returns
    -------
    float
    """
    check_score(score, equivalent_sample_size)
    enc = structure_data(structure, data, state_names)
    return sum(
        family_score(
            enc,
            i,
            [enc.column(p) for p in structure.get_parents(v)],
            score,
            equivalent_sample_size,
        )
        for i, v in enumerate(enc.names)
    )
