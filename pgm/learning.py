"""Learning discrete Bayesian networks from complete data: parameters and structure.

Notation: ``n`` rows, ``d`` variables; variable ``i`` has ``r_i`` states and, in a family
(``i`` with its parents), ``q_i`` parent configurations; ``N_ijk`` counts the rows where the
parents are in configuration ``j`` and ``i`` is in state ``k``, ``N_ij = sum_k N_ijk``.

Data are a :class:`pandas.DataFrame` (one column per variable, values state names or integers;
a categorical column declares its states by its categories) or a 2-D integer ndarray of state
indices whose column names and states come from ``state_names`` (a dict, in column order; the
columns are named ``"0" .. "d-1"`` without it). Unless ``state_names`` says otherwise, the states
of a column are its distinct values, sorted, as strings (``0/1`` columns get ``["0", "1"]``).
Missing values are an error. Counting is vectorised: one ``np.bincount`` over mixed-radix codes
per family.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from pgm.errors import PGMError, UnknownStateError, UnknownVariableError
from pgm.models import BayesianNetwork, TabularCPD

__all__ = [
    "ClimbTrace",
    "chow_liu_tree",
    "estimate_parameters",
    "hill_climb",
    "mutual_information_matrix",
    "structure_score",
    "update_parameters",
]


# -- data encoding -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Data:
    """Encoded data: ``codes[i]`` is the ``(n,)`` state-index column of variable ``names[i]``."""

    names: list
    states: list[list[str]]
    codes: np.ndarray  # (d, n), smallest unsigned dtype that holds the state indices

    @property
    def n_rows(self) -> int:
        return self.codes.shape[1]

    @property
    def cards(self) -> np.ndarray:
        return np.array([len(s) for s in self.states], dtype=np.int64)

    def column(self, name: Any) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise UnknownVariableError(f"data has no column {name!r}") from None


def _small(codes: np.ndarray, card: int) -> np.ndarray:
    return codes.astype(np.min_scalar_type(max(card - 1, 0)), copy=False)


def _distinct_ints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, uniques)`` of an integer column, sorted; O(n) when the value range is small."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64), values[:0]
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * values.size + 1024:
        uniques, codes = np.unique(values, return_inverse=True)
        return codes, uniques
    shifted = values - lo if lo else values
    if hi - lo <= 1:  # min and max are present: the shifted values are the codes (0/1 data)
        return shifted, np.arange(lo, hi + 1)
    present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    lookup = np.cumsum(present) - 1
    return lookup[shifted], np.flatnonzero(present) + lo


def _encode_column(name: Any, series: pd.Series, states: Sequence | None):
    """State indices ``(n,)`` and state names of one DataFrame column."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy().astype(np.int64)
        uniques = np.asarray(series.cat.categories, dtype=object)
        if (codes < 0).any():
            raise PGMError(
                f"column {name!r} holds missing values (NaN) at row "
                f"{int(np.flatnonzero(codes < 0)[0])}"
            )
    else:
        values = series.to_numpy()
        if (
            values.dtype.kind == "f"
            and np.isnan(values).any()
            or (values.dtype.kind not in "iuf" and series.isna().any())
        ):
            row = int(np.flatnonzero(series.isna().to_numpy())[0])
            raise PGMError(f"column {name!r} holds missing values (NaN) at row {row}")
        if values.dtype.kind == "f" and np.array_equal(values, np.round(values)):
            values = values.astype(np.int64)
        if values.dtype.kind in "iu":
            codes, uniques = _distinct_ints(values)
        else:
            try:
                codes, uniques = pd.factorize(series, sort=True)
            except TypeError:  # mixed types that do not sort: order by their names
                codes, uniques = pd.factorize(series.astype(str), sort=True)
            uniques = np.asarray(uniques, dtype=object)
    found = [str(u) for u in uniques]
    if states is None:
        return codes, found
    states = [str(s) for s in states]
    lookup = pd.Index(states).get_indexer(found)
    if (lookup < 0).any():
        value = uniques[int(np.flatnonzero(lookup < 0)[0])]
        value = value.item() if isinstance(value, np.generic) else value
        raise UnknownStateError(
            f"column {name!r} holds the value {value!r}, which is not a state of {name!r}; "
            f"states are {states}"
        )
    return lookup[codes], states


def _encode_array(data: np.ndarray, state_names: Mapping | None) -> _Data:
    if data.ndim != 2:
        raise PGMError(f"data must be 2-D (rows, variables), got shape {data.shape}")
    if data.dtype.kind == "f":
        bad = np.argwhere(np.isnan(data))
        if bad.size:
            raise PGMError(
                f"data holds missing values (NaN) at row {bad[0][0]}, column {bad[0][1]}"
            )
        if not np.array_equal(data, np.round(data)):
            raise PGMError("an ndarray of data must hold integer state indices")
    elif data.dtype.kind not in "iub":
        raise TypeError(f"an ndarray of data must hold integer state indices, not {data.dtype}")
    data = data.astype(np.int64)
    names = list(state_names) if state_names else [str(i) for i in range(data.shape[1])]
    if len(names) != data.shape[1]:
        raise PGMError(
            f"state_names names {len(names)} variables but data has {data.shape[1]} columns"
        )
    states, codes = [], []
    for i, name in enumerate(names):
        col = data[:, i]
        if state_names:
            col_states = [str(s) for s in state_names[name]]
        else:
            col_states = [str(k) for k in range(int(col.max(initial=-1)) + 1)]
        bad = np.flatnonzero((col < 0) | (col >= len(col_states)))
        if bad.size:
            raise UnknownStateError(
                f"column {name!r} holds the state index {col[bad[0]]} at row {bad[0]}; "
                f"{name!r} has {len(col_states)} states"
            )
        states.append(col_states)
        codes.append(_small(col, len(col_states)))
    return _Data(names, states, np.stack(codes) if codes else np.zeros((0, len(data)), np.uint8))


def _encode(
    data: Any, state_names: Mapping | None = None, columns: Sequence | None = None
) -> _Data:
    """Encode data (see the module docstring), keeping only ``columns`` if given."""
    state_names = dict(state_names or {})
    if isinstance(data, np.ndarray):
        encoded = _encode_array(data, state_names or None)
        if columns is None:
            return encoded
        keep = [encoded.column(c) for c in columns]
        return _Data(list(columns), [encoded.states[i] for i in keep], encoded.codes[keep])
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"data must be a pandas DataFrame or an ndarray, not {type(data).__name__}"
        )
    if data.columns.has_duplicates:
        raise PGMError(
            f"data has repeated column names: {list(data.columns[data.columns.duplicated()])}"
        )
    names = list(data.columns) if columns is None else list(columns)
    for name in names:
        if name not in data.columns:
            raise UnknownVariableError(f"data has no column {name!r}")
    states, codes = [], []
    for name in names:
        col_codes, col_states = _encode_column(name, data[name], state_names.get(name))
        states.append(col_states)
        codes.append(_small(col_codes, len(col_states)))
    if not codes:
        return _Data(names, states, np.zeros((0, len(data)), np.uint8))
    return _Data(names, states, np.stack(codes))


# -- counting and scores -----------------------------------------------------------------------
def _family_code(data: _Data, child: int, parents: Sequence[int]) -> tuple[np.ndarray, int]:
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


def _family_counts(data: _Data, child: int, parents: Sequence[int]) -> np.ndarray:
    """``N[k, j]``: int64 array of shape ``(r, q)``, the pgmpy CPD layout."""
    code, q = _family_code(data, child, parents)
    r = int(data.cards[child])
    return np.bincount(code, minlength=q * r).reshape(q, r).T


def _family_score(
    data: _Data, child: int, parents: Sequence[int], score: str, ess: float
) -> float:
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


def _check_score(score: str, ess: float) -> None:
    if score not in ("bic", "bdeu"):
        raise PGMError(f"unknown score {score!r}; use 'bic' or 'bdeu'")
    if not ess > 0:
        raise PGMError(f"equivalent_sample_size must be > 0, got {ess}")


def _structure_data(structure: BayesianNetwork, data: Any, state_names: Mapping | None) -> _Data:
    """Encode the columns of ``structure``'s nodes; states: ``state_names``, else the node's
    CPD (if it has one), else the data."""
    if not isinstance(structure, BayesianNetwork):
        raise TypeError(f"structure must be a BayesianNetwork, not {type(structure).__name__}")
    names = dict(state_names or {})
    for node in structure.nodes():
        cpd = structure.get_cpds(node)
        if node not in names and cpd is not None:
            names[node] = cpd.state_names[node]
    return _encode(data, names, columns=structure.nodes())


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
    _check_score(score, equivalent_sample_size)
    enc = _structure_data(structure, data, state_names)
    return sum(
        _family_score(
            enc,
            i,
            [enc.column(p) for p in structure.get_parents(v)],
            score,
            equivalent_sample_size,
        )
        for i, v in enumerate(enc.names)
    )


# -- parameters --------------------------------------------------------------------------------
def _pseudo_counts(prior, node, shape, ess, pseudo_counts) -> np.ndarray | float:
    r, q = shape
    if prior is None:
        return 0.0
    if prior == "bdeu":
        return ess / (q * r)
    if prior == "dirichlet":
        if pseudo_counts is None:
            raise PGMError("prior='dirichlet' needs pseudo_counts")
        value = pseudo_counts.get(node) if isinstance(pseudo_counts, Mapping) else pseudo_counts
        if value is None:
            raise PGMError(f"pseudo_counts has no entry for {node!r}")
        alpha = np.asarray(value, dtype=np.float64)
        try:
            alpha = np.broadcast_to(alpha, shape)
        except ValueError:
            raise PGMError(
                f"pseudo_counts of {node!r} has shape {alpha.shape}, expected "
                f"{shape} (or a scalar)"
            ) from None
        if np.isnan(alpha).any() or (alpha < 0).any():
            raise PGMError(f"pseudo_counts of {node!r} must be non-negative")
        return alpha
    raise PGMError(f"unknown prior {prior!r}; use None, 'bdeu' or 'dirichlet'")


def _column_normalise(table: np.ndarray) -> np.ndarray:
    """Divide each column by its sum; an all-zero column becomes uniform."""
    sums = table.sum(axis=0, keepdims=True)
    uniform = np.full_like(table, 1.0 / table.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sums > 0, table / sums, uniform)


def estimate_parameters(
    structure: BayesianNetwork,
    data: Any,
    prior: str | None = "bdeu",
    equivalent_sample_size: float = 1.0,
    state_names: Mapping | None = None,
    pseudo_counts: float | Mapping | None = None,
) -> BayesianNetwork:
    """Fit a CPD for every node of a structure from complete data.

    ``theta_ijk = (N_ijk + alpha_ijk) / (N_ij + sum_k alpha_ijk)``, with

    - ``prior=None`` (maximum likelihood): ``alpha = 0``; a parent configuration never seen
      in the data gets a uniform column;
    - ``prior="bdeu"``: ``alpha_ijk = ESS / (q_i r_i)``;
    - ``prior="dirichlet"``: ``alpha`` from ``pseudo_counts``.

    Parameters
    ----------
    structure : BayesianNetwork
        Nodes and edges; existing CPDs are not used except for their state names.
    data : DataFrame or ndarray
        See the module docstring; one column per node (other columns are ignored).
    prior : {None, "bdeu", "dirichlet"}, default "bdeu"
    equivalent_sample_size : float, default 1.0
        ESS of the BDeu prior.
    state_names : dict, optional
        ``{variable: [states]}``; otherwise a node's states are those of its CPD in
        ``structure`` if it has one, else the distinct values of its column.
    pseudo_counts : float or dict, optional
        For ``prior="dirichlet"``: one scalar for every cell, or ``{node: scalar or array
        broadcastable to (r_i, q_i)}``.

    Returns
    -------
    BayesianNetwork
        A new network with the same nodes and edges and one CPD per node, the parents in
        ``structure.get_parents(node)`` order.

    Raises
    ------
    UnknownVariableError
        If a node has no column in ``data``.
    UnknownStateError
        If a column holds a value that is not one of the given states (naming both).
    PGMError
        On missing values in the data, or a bad prior.
    """
    if prior == "bdeu" and not equivalent_sample_size > 0:
        raise PGMError(f"equivalent_sample_size must be > 0, got {equivalent_sample_size}")
    enc = _structure_data(structure, data, state_names)
    cpds = []
    for i, node in enumerate(enc.names):
        parents = structure.get_parents(node)
        cols = [enc.column(p) for p in parents]
        counts = _family_counts(enc, i, cols).astype(np.float64)
        alpha = _pseudo_counts(prior, node, counts.shape, equivalent_sample_size, pseudo_counts)
        cpds.append(_make_cpd(enc, i, cols, _column_normalise(counts + alpha)))
    return _with_cpds(structure, cpds)


def _make_cpd(enc: _Data, child: int, parents: Sequence[int], values: np.ndarray) -> TabularCPD:
    evidence = [enc.names[p] for p in parents]
    return TabularCPD(
        enc.names[child],
        len(enc.states[child]),
        values,
        evidence=evidence or None,
        evidence_card=[len(enc.states[p]) for p in parents] or None,
        state_names={enc.names[k]: enc.states[k] for k in (child, *parents)},
    )


def _with_cpds(structure: BayesianNetwork, cpds: list[TabularCPD]) -> BayesianNetwork:
    model = BayesianNetwork()
    model.add_nodes_from(structure.nodes())
    model.add_edges_from(structure.edges())
    model.add_cpds(*cpds)
    return model


def update_parameters(model: BayesianNetwork, data: Any, prior_strength: float) -> BayesianNetwork:
    """Bayesian update of every CPT with new complete data (the feedback loop's count update).

    Each column becomes the posterior mean of a Dirichlet whose pseudo-counts are the current
    column times ``prior_strength``, updated by the new counts::

        theta'_ijk = (s * theta_ijk + N_ijk) / (s + N_ij),   s = prior_strength

    so a column whose parent configuration is absent from ``data`` is unchanged.

    Parameters
    ----------
    model : BayesianNetwork
        A model that passes ``check_model()``; the data are read with its state names.
    data : DataFrame or ndarray
        See the module docstring; one column per node.
    prior_strength : float
        ``s > 0``: how many rows the current parameters are worth, per parent configuration.

    Returns
    -------
    BayesianNetwork
        A new network with the same structure; ``model`` is not modified.

    Raises
    ------
    UnknownStateError
        If a column holds a value that is not a state of its node (naming both).
    PGMError
        If ``prior_strength`` is not positive and finite, or on missing values in the data.
    """
    if not 0 < prior_strength < np.inf:
        raise PGMError(f"prior_strength must be positive and finite, got {prior_strength}")
    model.check_model()
    names = {node: model.states(node) for node in model.nodes()}
    enc = _encode(data, names, columns=model.nodes())
    cpds = []
    for i, node in enumerate(enc.names):
        cpd = model.get_cpds(node)
        cols = [enc.column(p) for p in cpd.evidence]
        counts = _family_counts(enc, i, cols)
        n_j = counts.sum(axis=0)
        theta = cpd.get_values()
        posterior = (prior_strength * theta + counts) / (prior_strength + n_j)
        cpds.append(_make_cpd(enc, i, cols, np.where(n_j > 0, posterior, theta)))
    return _with_cpds(model, cpds)


# -- Chow-Liu ----------------------------------------------------------------------------------
def _pair_counts(enc: _Data, chunk: int = 8192) -> np.ndarray:
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


def _mutual_information(enc: _Data) -> np.ndarray:
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
    return _mutual_information(_encode(data, state_names))


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
    enc = _encode(data, state_names)
    if not enc.names:
        raise PGMError("chow_liu_tree needs at least one column")
    root_index = 0 if root is None else enc.column(root)
    edges = _prim(_mutual_information(enc), root_index)
    model = BayesianNetwork()
    model.add_nodes_from(enc.names)
    model.add_edges_from([(enc.names[u], enc.names[v]) for u, v in edges])
    return model


# -- hill climbing -----------------------------------------------------------------------------
def _reachability(adj: np.ndarray) -> np.ndarray:
    """``reach[a, b]``: a directed path of length >= 1 from ``a`` to ``b`` (transitive closure)."""
    reach = adj.copy()
    while True:
        grown = reach | ((reach.astype(np.float32) @ reach.astype(np.float32)) > 0)
        if np.array_equal(grown, reach):
            return reach
        reach = grown


class _Climber:
    """State of a greedy search: adjacency, local scores and the gain of every single move.

    ``add_gain[u, v]`` = score change of adding ``u -> v`` (family of ``v`` only),
    ``remove_gain[u, v]`` = that of removing it; a reversal is a removal plus an addition.
    Family scores are cached by (child, parent set), so a move rescores two families at most.
    """

    def __init__(self, enc: _Data, score: str, ess: float, adj: np.ndarray) -> None:
        self.enc, self.score, self.ess = enc, score, ess
        self.adj = adj
        d = adj.shape[0]
        self.cache: dict[tuple[int, tuple[int, ...]], float] = {}
        self.local = np.zeros(d)
        self.add_gain = np.full((d, d), -np.inf)
        self.remove_gain = np.full((d, d), -np.inf)
        for v in range(d):
            self.refresh(v)

    def family(self, child: int, parents: Sequence[int]) -> float:
        key = (child, tuple(sorted(parents)))
        if key not in self.cache:
            self.cache[key] = _family_score(self.enc, child, key[1], self.score, self.ess)
        return self.cache[key]

    def refresh(self, v: int) -> None:
        parents = [int(p) for p in np.flatnonzero(self.adj[:, v])]
        self.local[v] = self.family(v, parents)
        for u in range(self.adj.shape[0]):
            if u == v:
                continue
            if self.adj[u, v]:
                rest = [p for p in parents if p != u]
                self.remove_gain[u, v] = self.family(v, rest) - self.local[v]
                self.add_gain[u, v] = -np.inf
            else:
                self.add_gain[u, v] = self.family(v, [*parents, u]) - self.local[v]
                self.remove_gain[u, v] = -np.inf

    def gains(self, max_indegree: int | None, tabu: deque) -> np.ndarray:
        """``(3, d, d)`` gains of add / remove / reverse ``u -> v``; ``-inf`` where illegal."""
        adj = self.adj
        reach = _reachability(adj)
        room = np.ones(adj.shape[0], dtype=bool)
        if max_indegree is not None:
            room = adj.sum(axis=0) < max_indegree
        add_ok = ~adj & ~reach.T & room[None, :]
        # after removing u -> v, is there still a path u ~> v (through another child of u)?
        other_path = (adj.astype(np.float32) @ reach.astype(np.float32)) > 0
        reverse_ok = adj & ~other_path & room[:, None]
        out = np.stack(
            [
                np.where(add_ok, self.add_gain, -np.inf),
                self.remove_gain.copy(),
                np.where(reverse_ok, self.remove_gain + self.add_gain.T, -np.inf),
            ]
        )
        for kind, u, v in tabu:
            out[kind, u, v] = -np.inf
        return out

    def apply(self, kind: int, u: int, v: int) -> tuple[int, int, int]:
        """Perform a move; return the move that would undo it (for the tabu list)."""
        if kind == 0:
            self.adj[u, v] = True
            self.refresh(v)
            return 1, u, v
        self.adj[u, v] = False
        if kind == 1:
            self.refresh(v)
            return 0, u, v
        self.adj[v, u] = True
        self.refresh(v)
        self.refresh(u)
        return 2, v, u


_MOVES = ("add", "remove", "reverse")


@dataclass(frozen=True)
class ClimbTrace:
    """What :func:`hill_climb` did.

    Attributes
    ----------
    scores : ndarray of float64, shape (n_moves + 1,)
        Total score of the start structure, then after each move; increasing.
    moves : list of (str, hashable, hashable)
        ``("add" | "remove" | "reverse", u, v)``: the move applied to the edge ``u -> v``.
    """

    scores: np.ndarray
    moves: list[tuple[str, Any, Any]]


def hill_climb(
    data: Any,
    score: str = "bic",
    max_indegree: int | None = None,
    start: BayesianNetwork | None = None,
    max_iter: int = 1000,
    tabu_length: int = 100,
    epsilon: float = 1e-4,
    equivalent_sample_size: float = 10.0,
    state_names: Mapping | None = None,
    return_trace: bool = False,
) -> BayesianNetwork | tuple[BayesianNetwork, ClimbTrace]:
    """Greedy structure search over DAGs with a tabu list.

    Each iteration evaluates every legal single-edge move (add, remove or reverse ``u -> v``;
    acyclicity from the transitive closure of the current graph) by its local change of the
    decomposable score and applies the best one, provided it improves the score by more than
    ``epsilon``; the inverses of the last ``tabu_length`` moves are forbidden. The score
    therefore never decreases. Ties go to the first move in the order add, remove, reverse,
    then by column order of ``u`` and ``v``.

    Parameters
    ----------
    data : DataFrame or ndarray
        See the module docstring; every column becomes a node.
    score : {"bic", "bdeu"}, default "bic"
        See :func:`structure_score`.
    max_indegree : int, optional
        Largest number of parents of a node.
    start : BayesianNetwork, optional
        Initial structure (its nodes must be columns of ``data``); default no edges.
    max_iter : int, default 1000
        Largest number of moves.
    tabu_length : int, default 100
    epsilon : float, default 1e-4
        Smallest score gain that counts as an improvement.
    equivalent_sample_size : float, default 10
        ESS of the BDeu score.
    state_names : dict, optional
    return_trace : bool, default False
        Also return a :class:`ClimbTrace` (scores and moves).

    Returns
    -------
    BayesianNetwork or (BayesianNetwork, ClimbTrace)
        Structure only (no CPDs), nodes in column order; with the trace if asked.
    """
    _check_score(score, equivalent_sample_size)
    if max_indegree is not None and max_indegree < 0:
        raise PGMError(f"max_indegree must be >= 0, got {max_indegree}")
    enc = _encode(data, state_names)
    d = len(enc.names)
    adj = np.zeros((d, d), dtype=bool)
    if start is not None:
        for u, v in start.edges():
            adj[enc.column(u), enc.column(v)] = True
    climber = _Climber(enc, score, equivalent_sample_size, adj)
    tabu: deque = deque(maxlen=max(tabu_length, 0))
    scores, moves = [float(climber.local.sum())], []
    for _ in range(max_iter):
        gains = climber.gains(max_indegree, tabu)
        kind, u, v = (int(i) for i in np.unravel_index(int(np.argmax(gains)), gains.shape))
        if not gains[kind, u, v] > epsilon:
            break
        tabu.append(climber.apply(kind, u, v))
        scores.append(float(climber.local.sum()))
        moves.append((_MOVES[kind], enc.names[u], enc.names[v]))
    model = BayesianNetwork()
    model.add_nodes_from(enc.names)
    model.add_edges_from([(enc.names[u], enc.names[v]) for u, v in np.argwhere(climber.adj)])
    return (model, ClimbTrace(np.array(scores), moves)) if return_trace else model
