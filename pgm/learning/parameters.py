"""CPT estimation: maximum likelihood or Dirichlet/BDeu posteriors, and updates from new data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pgm.errors import PGMError
from pgm.learning.encoding import Data, encode
from pgm.learning.scores import family_counts, structure_data
from pgm.models import BayesianNetwork, TabularCPD


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
    enc = structure_data(structure, data, state_names)
    cpds = []
    for i, node in enumerate(enc.names):
        parents = structure.get_parents(node)
        cols = [enc.column(p) for p in parents]
        counts = family_counts(enc, i, cols).astype(np.float64)
        alpha = _pseudo_counts(prior, node, counts.shape, equivalent_sample_size, pseudo_counts)
        cpds.append(_make_cpd(enc, i, cols, _column_normalise(counts + alpha)))
    return _with_cpds(structure, cpds)


def _make_cpd(enc: Data, child: int, parents: Sequence[int], values: np.ndarray) -> TabularCPD:
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
    enc = encode(data, names, columns=model.nodes())
    cpds = []
    for i, node in enumerate(enc.names):
        cpd = model.get_cpds(node)
        cols = [enc.column(p) for p in cpd.evidence]
        counts = family_counts(enc, i, cols)
        n_j = counts.sum(axis=0)
        theta = cpd.get_values()
        posterior = (prior_strength * theta + counts) / (prior_strength + n_j)
        cpds.append(_make_cpd(enc, i, cols, np.where(n_j > 0, posterior, theta)))
    return _with_cpds(model, cpds)
