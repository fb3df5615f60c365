"""The co-purchase network: a Bayesian network of which items are bought together.

One binary node per item among the ``n_top`` most frequent in baskets (``i<code>``, states
"0"/"1"), plus optional user-attribute nodes (``u:<name>``, states = the attribute's codes). The
structure is a Chow-Liu tree or a hill-climbed DAG (:mod:`pgm.learning`), the CPTs are BDeu
posteriors.

Scoring asks the network, for every case and every network item j,
``P(X_j = 1 | the case's items, the shopper's attributes)``, where the case's context items are
observed 1 and the other network items 0 (the basket is known except for the item to add), with
one :meth:`pgm.VariableElimination.batch_query` per item over all cases at once. Items outside the
network score their smoothed basket frequency, below every network item.

Coherence for bundles is the joint ``log P(X_a = 1, X_b = 1, ... | cart items = 1, attributes)``
(cart items observed, nothing else).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree

import pgm

if TYPE_CHECKING:
    from bundlerec.cases import Cases
    from bundlerec.lift import BasketStatistics
    from bundlerec.prep import Interactions

__all__ = ["CoPurchaseNetwork", "basket_matrix", "context_presence"]

ON = "1"


def item_node(code: int) -> str:
    """Network variable name of item ``code``."""
    return f"i{int(code)}"


def user_node(name: str) -> str:
    """Network variable name of user attribute ``name``."""
    return f"u:{name}"


def context_presence(cases: Cases, items: np.ndarray, n_items: int) -> np.ndarray:
    """(n, T) int64: 1 where network item ``items[t]`` is among the case's context items.

    ``items`` (T,) int64 are the network's item codes; context codes may reach
    ``max(n_items, cases.n_items) - 1`` (items added after the network was fitted are outside it).
    """
    n, width = cases.context.shape
    size = max(n_items, cases.n_items)
    valid = np.arange(width)[None, :] < cases.lengths[:, None]
    lookup = np.full(size + 1, -1, dtype=np.int64)
    lookup[items] = np.arange(items.size)
    pos = lookup[np.where(valid, cases.context, size)]
    out = np.zeros((n, items.size), dtype=np.int64)
    rows, cols = np.nonzero(pos >= 0)
    out[rows, pos[rows, cols]] = 1
    return out


def basket_matrix(train: Interactions) -> sp.csr_matrix:
    """(n_baskets, n_items) binary CSR of which items each basket holds (any event type)."""
    n_baskets = int(train.basket.max()) + 1 if train.basket.size else 0
    m = sp.csr_matrix(
        (np.ones(train.item.size), (train.basket, train.item)), shape=(n_baskets, train.n_items)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


class CoPurchaseNetwork:
    """Binary Bayesian network over the most frequent items; scores P(item | basket, shopper).

    Parameters
    ----------
    n_top : int
        Number of item nodes (the most frequent items by basket count).
    structure : {"chow-liu", "hill-climb"}
        Structure learner.
    equivalent_sample_size : float
        BDeu prior strength.
    max_indegree : int
        Parent limit for hill climbing.
    use_user_attributes : bool
        Add one node per user attribute given to :meth:`fit`.
    """

    def __init__(
        self,
        n_top: int = 150,
        structure: str = "chow-liu",
        equivalent_sample_size: float = 1.0,
        max_indegree: int = 2,
        use_user_attributes: bool = True,
    ) -> None:
        if structure not in ("chow-liu", "hill-climb"):
            raise ValueError(f"structure must be 'chow-liu' or 'hill-climb', got {structure!r}")
        if n_top < 2:
            raise ValueError(f"n_top must be >= 2, got {n_top}")
        self.n_top = int(n_top)
        self.structure = structure
        self.equivalent_sample_size = float(equivalent_sample_size)
        self.max_indegree = int(max_indegree)
        self.use_user_attributes = bool(use_user_attributes)
        self.model: pgm.BayesianNetwork | None = None
        # {node: (r, q) float64} family counts of the counted baskets (CPD layout), from which
        # count_baskets recomputes the CPTs; None in a network saved before they existed.
        self.counts: dict[str, np.ndarray] | None = None
        self.n_rows = 0

    # -- fitting ----------------------------------------------------------------------------
    def _table(
        self, train: Interactions, user_features: dict[str, np.ndarray] | None
    ) -> pd.DataFrame:
        """One row per basket: 0/1 per network item, then the basket owner's attribute codes."""
        baskets = basket_matrix(train)
        dense = baskets[:, self.items].toarray().astype(np.int64)
        cols = {item_node(j): dense[:, k] for k, j in enumerate(self.items)}
        if self.attributes:
            owner = np.zeros(baskets.shape[0], dtype=np.int64)
            owner[train.basket] = train.user
            for name in self.attributes:
                cols[user_node(name)] = np.asarray(user_features[name])[owner].astype(np.int64)
        return pd.DataFrame(cols)

    def fit(
        self, train: Interactions, user_features: dict[str, np.ndarray] | None = None
    ) -> CoPurchaseNetwork:
        """Learn structure and BDeu CPTs from the training baskets.

        Parameters
        ----------
        train : Interactions
        user_features : dict of str to ndarray (n_users,) int64, optional
            Categorical user attributes (codes from 0).
        """
        if train.item.size == 0:
            raise ValueError("cannot fit the co-purchase network on no events")
        counts = np.asarray(basket_matrix(train).sum(axis=0)).ravel()
        self._choose_nodes(counts, user_features, train.n_users)
        table = self._table(train, user_features)
        self.n_rows = len(table)
        state_names = {c: ["0", "1"] for c in table.columns if c.startswith("i")}
        for name in self.attributes:
            state_names[user_node(name)] = self.attribute_states[name]
        data = table.astype(str)
        if self.structure == "chow-liu":
            dag = pgm.chow_liu_tree(data)
        else:
            dag = pgm.hill_climb(data, score="bdeu", max_indegree=self.max_indegree)
        self.model = pgm.estimate_parameters(
            dag,
            data,
            prior="bdeu",
            equivalent_sample_size=self.equivalent_sample_size,
            state_names=state_names,
        )
        self.counts = self._family_counts(table)
        self.engine = pgm.VariableElimination(self.model)
        return self

    def _choose_nodes(
        self, counts: np.ndarray, user_features: dict[str, np.ndarray] | None, n_users: int
    ) -> None:
        """Items (the ``n_top`` most bought, by ``counts`` (I,)), attributes and the prior."""
        self.n_items = counts.size
        order = np.lexsort((np.arange(counts.size), -counts))
        self.items = np.sort(order[: min(self.n_top, int((counts > 0).sum()))])
        if self.items.size < 2:
            raise ValueError("the co-purchase network needs at least 2 items that were bought")
        self.attributes = (
            sorted(user_features) if (self.use_user_attributes and user_features) else []
        )
        self.attribute_states: dict[str, list[str]] = {}
        for name in self.attributes:
            codes = np.asarray(user_features[name])
            if codes.shape != (n_users,):
                raise ValueError(
                    f"user feature {name!r} has shape {codes.shape}, expected ({n_users},)"
                )
            self.attribute_states[name] = [str(s) for s in range(int(codes.max()) + 1)]
        self.user_features = {n: np.asarray(user_features[n]) for n in self.attributes}
        self.prior = np.log((counts + 1.0) / (counts.sum() + counts.size))
        self.index = {int(j): k for k, j in enumerate(self.items)}

    def fit_counts(
        self, stats: BasketStatistics, user_features: dict[str, np.ndarray] | None = None
    ) -> CoPurchaseNetwork:
        """Learn the Chow-Liu tree and its BDeu CPTs from basket counts instead of baskets.

        A tree's mutual informations and CPTs need only the counts of pairs of variables, which
        ``stats`` holds (:class:`~bundlerec.lift.BasketStatistics`, e.g. reduced on a cluster by
        :func:`bundlerec.batch.counting.count_interactions`). Every count is the one :meth:`fit`
        reads from the baskets, so the CPTs are the same; between edges of exactly equal mutual
        information the two may pick different ones (:meth:`fit` keeps pgm's column order, here
        the minimum spanning tree of ``scipy.sparse.csgraph`` decides). Hill climbing scores
        families of any size, so ``structure="hill-climb"`` needs :meth:`fit`.

        Parameters
        ----------
        stats : BasketStatistics
            Counts of the training baskets, with an attribute for each one in ``user_features``
            when ``use_user_attributes``.
        user_features : dict of str to ndarray (n_users,) int64, optional
            The shoppers' attribute codes (for scoring), as given to :meth:`fit`.
        """
        if self.structure != "chow-liu":
            raise ValueError(
                "fitting from basket counts needs structure='chow-liu' (hill climbing scores "
                "families of any size: use fit() on the baskets)"
            )
        if stats.n_baskets == 0:
            raise ValueError("cannot fit the co-purchase network on no baskets")
        user_features = dict(user_features or {})
        n_users = len(next(iter(user_features.values()))) if user_features else 0
        self._choose_nodes(stats.item_counts, user_features, n_users)
        states = dict(stats.attributes)
        for name in self.attributes:
            if states.get(name) != len(self.attribute_states[name]):
                raise ValueError(
                    f"the basket statistics have {states.get(name)} states of {name!r}, the "
                    f"user features {len(self.attribute_states[name])}"
                )
        # Variables: the network items (states 0, 1), then the attributes (their states).
        names = [item_node(j) for j in self.items] + [user_node(n) for n in self.attributes]
        cards = [2] * self.items.size + [len(self.attribute_states[n]) for n in self.attributes]
        columns = np.concatenate([self.items, *(stats.columns(n) for n in self.attributes)])
        # Counts of the state pairs: P = T^T G T over [all baskets, the columns], where T maps
        # an item's indicator x to its states (1 - x, x) and an attribute's state columns to
        # themselves.
        n = stats.n_baskets
        sub = stats.gram[columns][:, columns].toarray().astype(np.float64)
        gram = np.block(
            [[np.array([[n]]), sub.diagonal()[None, :]], [sub.diagonal()[:, None], sub]]
        )
        starts = np.concatenate([[0], np.cumsum(cards)[:-1]])
        t = np.zeros((columns.size + 1, int(np.sum(cards))))
        row = 1
        for v, card in enumerate(cards):
            if v < self.items.size:
                t[0, starts[v]], t[row, starts[v]], t[row, starts[v] + 1] = 1.0, -1.0, 1.0
            else:
                t[row : row + card, starts[v] : starts[v] + card] = np.eye(card)
            row += 1 if v < self.items.size else card
        pairs = np.rint(t.T @ gram @ t)
        joint = pairs / n
        marginal = np.diag(joint)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(joint > 0, joint * np.log(joint / np.outer(marginal, marginal)), 0.0)
        mi = np.add.reduceat(np.add.reduceat(terms, starts, axis=0), starts, axis=1)
        mi = np.maximum((mi + mi.T) / 2, 0.0)
        # Maximum spanning tree: minimum over positive weights (a zero is "no edge" to scipy).
        weights = mi.max() + 1.0 - mi
        np.fill_diagonal(weights, 0.0)
        tree = minimum_spanning_tree(weights)
        _, parent = breadth_first_order(tree, 0, directed=False, return_predecessors=True)
        self.model = pgm.BayesianNetwork()
        self.model.add_nodes_from(names)
        ess = self.equivalent_sample_size
        cpds = []
        counts: dict[str, np.ndarray] = {}
        for v, name in enumerate(names):
            rv = slice(starts[v], starts[v] + cards[v])
            u = int(parent[v])
            if u < 0:
                table, evidence = pairs[rv, rv].diagonal()[:, None], {}
            else:
                table = pairs[rv, starts[u] : starts[u] + cards[u]]
                evidence = {"evidence": [names[u]], "evidence_card": [cards[u]]}
                self.model.add_edge(names[u], name)
            counts[name] = table.astype(np.float64)
            table = table + ess / table.size
            cpds.append(
                pgm.TabularCPD(
                    name,
                    cards[v],
                    table / table.sum(axis=0, keepdims=True),
                    state_names={
                        m: self._states(m) for m in [name, *evidence.get("evidence", [])]
                    },
                    **evidence,
                )
            )
        self.model.add_cpds(*cpds)
        self.counts = counts
        self.n_rows = n
        self.engine = pgm.VariableElimination(self.model)
        return self

    def _states(self, node: str) -> list[str]:
        return self.attribute_states[node[2:]] if node.startswith("u:") else ["0", ON]

    def grow_items(self, n_new: int) -> None:
        """Append ``n_new`` items outside the network (codes after the known ones) with the
        smoothed prior of an item never bought."""
        self._check_fitted()
        unseen = self.prior.min() if self.prior.size else 0.0
        self.prior = np.concatenate([self.prior, np.full(int(n_new), unseen)])
        self.n_items += int(n_new)

    def set_user_features(self, user_features: dict[str, np.ndarray]) -> None:
        """Replace the shoppers' attribute codes (e.g. after new shoppers joined)."""
        self.user_features = {n: np.asarray(user_features[n]) for n in self.attributes}

    def update(self, new: Interactions) -> None:
        """Dirichlet count update of the CPTs with the baskets of ``new`` (structure kept).

        ``new`` uses the same item and user codes as the training data. Baskets of shoppers with
        an attribute value the network has no state for (code -1) are left out (complete cases:
        the CPT update has no missing-data step). With the family counts (:attr:`counts`, every
        network fitted or saved since they exist) the CPTs become exactly those of the training
        baskets plus ``new`` (:meth:`count_baskets`); a network loaded without them takes the
        current CPTs as a Dirichlet prior worth :attr:`n_rows` baskets
        (:func:`pgm.update_parameters`).
        """
        self._check_fitted()
        if self.counts is not None:
            self.count_baskets(new)
            return
        table = self._complete_rows(new)
        if table.empty:
            return
        self.model = pgm.update_parameters(
            self.model, table.astype(str), prior_strength=self.n_rows
        )
        self.n_rows += len(table)
        self.engine = pgm.VariableElimination(self.model)

    def _complete_rows(self, baskets: Interactions) -> pd.DataFrame:
        """:meth:`_table` of ``baskets`` (renumbered: one row per basket present) without the
        rows of an unknown attribute value."""
        if baskets.item.size == 0:
            return pd.DataFrame()
        renumbered = replace(baskets, basket=pd.factorize(baskets.basket)[0].astype(np.int64))
        table = self._table(renumbered, self.user_features)
        return table[(table[[user_node(n) for n in self.attributes]] >= 0).all(axis=1)]

    def _family_counts(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """``{node: (r, q) float64}``: how many rows of ``table`` (the 0/1 item columns and
        attribute codes of :meth:`_table`) hold each (state, parent configuration) of each CPD,
        in the CPD's layout (last parent fastest)."""
        out = {}
        for cpd in self.model.get_cpds():
            node = cpd.variable
            cards = [len(self.model.states(v)) for v in [node, *cpd.evidence]]
            flat = np.zeros(len(table), dtype=np.int64)
            for var, card in zip([node, *cpd.evidence], cards):
                lookup = {int(s): k for k, s in enumerate(self.model.states(var))}
                index = np.array([lookup[c] for c in range(card)], dtype=np.int64)
                flat = flat * card + index[table[var].to_numpy(dtype=np.int64)]
            q = int(np.prod(cards[1:]))
            counts = np.bincount(flat, minlength=cards[0] * q).astype(np.float64)
            out[node] = counts.reshape(cards[0], q)
        return out

    def count_baskets(self, baskets: Interactions, sign: int = 1) -> None:
        """Add (``sign=1``) or remove (``sign=-1``) the family counts of ``baskets`` (one row
        each, complete cases as in :meth:`update`) and recompute every CPT in place:
        ``theta = (N + a) / sum(N + a)`` per column with the BDeu pseudo-count
        ``a = ESS / (q r)``, what :meth:`fit` on all counted baskets gives for the same
        structure. Cost: one pass over ``baskets`` and one over the CPTs, whatever the history.

        Raises
        ------
        ValueError
            When the network has no family counts (loaded from a directory saved before them),
            or a removal would make a count negative (baskets that were never counted).
        """
        self._check_fitted()
        if self.counts is None:
            raise ValueError("this co-purchase network has no family counts (saved before them)")
        if sign not in (1, -1):
            raise ValueError(f"sign must be 1 or -1, got {sign}")
        table = self._complete_rows(baskets)
        if table.empty:
            return
        delta = self._family_counts(table)
        counts = {node: self.counts[node] + sign * d for node, d in delta.items()}
        if any((c < -1e-9).any() for c in counts.values()):
            raise ValueError("removing baskets that were never counted (a count went negative)")
        ess = self.equivalent_sample_size
        cpds = []
        for cpd in self.model.get_cpds():
            node = cpd.variable
            table_n = np.maximum(counts[node], 0.0) + ess / counts[node].size
            cpds.append(
                pgm.TabularCPD(
                    node,
                    table_n.shape[0],
                    table_n / table_n.sum(axis=0, keepdims=True),
                    evidence=list(cpd.evidence) or None,
                    evidence_card=[len(self.model.states(v)) for v in cpd.evidence] or None,
                    state_names={v: self.model.states(v) for v in [node, *cpd.evidence]},
                )
            )
        model = self.model.copy()
        model.add_cpds(*cpds)
        # Readers on other threads keep the old model and engine until both are replaced.
        self.model, self.engine = model, pgm.VariableElimination(model)
        self.counts = counts
        self.n_rows += sign * len(table)

    # -- scoring ----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.model is None:
            raise ValueError("CoPurchaseNetwork is not fitted: call fit() first")

    def _attribute_evidence(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """{attribute node: (n,) codes}, -1 for unknown shoppers and unknown values."""
        return {
            user_node(n): np.where(users >= 0, self.user_features[n][np.maximum(users, 0)], -1)
            for n in self.attributes
        }

    def context_presence(self, cases: Cases) -> np.ndarray:
        """(n, n_top) int64: 1 where the network item is among the case's context items."""
        return context_presence(cases, self.items, self.n_items)

    def score(self, cases: Cases) -> np.ndarray:
        """(n, n_items) float32: log P(item in basket | case); non-network items get the prior.

        Every network item's blanket is observed (context items 1, other items 0, the shopper's
        attributes), so the posteriors come from :func:`pgm.markov_blanket_posteriors` in one
        vectorised pass. For shoppers with an unknown attribute (unknown users, ``users == -1``,
        or a value no training shopper had, code -1) that attribute is unobserved: items whose
        blanket holds it are answered by variable elimination
        (:meth:`pgm.VariableElimination.batch_query`, all such cases in one batch per item).
        """
        self._check_fitted()
        n = cases.users.shape[0]
        out = np.empty((n, self.n_items), dtype=np.float32)
        out[:] = self.prior[None, :] - 1e3  # below every network item
        if n == 0:
            return out
        presence = self.context_presence(cases)
        on = self.model.states(item_node(self.items[0])).index(ON)
        states = np.where(presence == 1, on, 1 - on)
        attrs = self._attribute_evidence(cases.users)  # -1 where unknown
        known = np.ones(n, dtype=bool)
        for codes in attrs.values():
            known &= codes >= 0
        nodes = [item_node(j) for j in self.items]
        for rows, with_attrs in ((np.nonzero(known)[0], True), (np.nonzero(~known)[0], False)):
            if rows.size == 0:
                continue
            evidence = {item_node(j): states[rows, k] for k, j in enumerate(self.items)}
            if with_attrs:
                evidence.update({v: a[rows] for v, a in attrs.items()})
            direct = [v for v in nodes if pgm.markov_blanket(self.model, v) <= evidence.keys()]
            post = pgm.markov_blanket_posteriors(self.model, evidence, direct)
            partial = {**evidence, **{v: a[rows] for v, a in attrs.items()}}
            for v in nodes:
                if v not in post:  # an attribute in the blanket is unknown: eliminate it
                    rest = {u: a for u, a in partial.items() if u != v}
                    post[v] = self.engine.batch_query([v], rest)[v]
            for j in self.items:
                out[rows, j] = np.log(np.maximum(post[item_node(j)][:, on], 1e-300))
        return out

    def evidence(self, cart: list[int] = (), user: int = -1) -> dict[str, str]:
        """Network evidence: cart items (inside the network) bought, the shopper's attributes."""
        self._check_fitted()
        ev = {item_node(j): ON for j in cart if int(j) in self.index}
        if user >= 0:
            for name in self.attributes:
                code = int(self.user_features[name][user])
                if code >= 0:
                    ev[user_node(name)] = str(code)
        return ev

    def coherence(
        self, bundles: Sequence[Sequence[int]], evidence: dict[str, str] | None = None
    ) -> np.ndarray:
        """log P(every item of a bundle bought | evidence), for many bundles at once.

        One :meth:`pgm.VariableElimination.batch_probability_of_evidence` call over all bundles:
        ``P(bundle, evidence) / P(evidence)``, the items of other bundles left unobserved.
        ``evidence`` maps network variables to states (see :meth:`evidence`). Bundle items
        outside the network contribute their log basket frequency (taken as independent).

        Returns
        -------
        ndarray, shape (len(bundles),), float64
        """
        self._check_fitted()
        evidence = dict(evidence or {})
        out = np.array(
            [sum(self.prior[j] for j in b if int(j) not in self.index) for b in bundles],
            dtype=np.float64,
        )
        nodes = sorted({item_node(j) for b in bundles for j in b if int(j) in self.index})
        if not nodes:
            return out
        n = len(bundles)
        columns = {
            var: np.full(n, self.model.states(var).index(state), dtype=np.int64)
            for var, state in evidence.items()
        }
        on = self.model.states(nodes[0]).index(ON)
        for node in nodes:
            columns[node] = np.full(n, -1, dtype=np.int64)
        for row, b in enumerate(bundles):
            for j in b:
                if int(j) in self.index:
                    columns[item_node(j)][row] = on
        joint = self.engine.batch_probability_of_evidence(columns)
        base = self.engine.probability_of_evidence(evidence) if evidence else 1.0
        return out + np.log(np.maximum(joint, 1e-300)) - np.log(base)

    @classmethod
    def from_state(
        cls,
        model: pgm.BayesianNetwork,
        arrays: dict[str, np.ndarray],
        meta: dict[str, Any],
        n_items: int,
        user_features: dict[str, np.ndarray],
    ) -> CoPurchaseNetwork:
        """Rebuild a fitted network from its saved parts (the BIF model, arrays, metadata)."""
        self = cls(**meta["config"])
        model.check_model()
        self.model = model
        self.items = np.asarray(arrays["items"], dtype=np.int64)
        self.prior = np.asarray(arrays["prior"], dtype=np.float64)
        self.n_items = int(n_items)
        self.n_rows = int(meta["n_rows"])
        self.attributes = list(meta["attributes"])
        self.user_features = {n: np.asarray(user_features[n]) for n in self.attributes}
        self.index = {int(j): k for k, j in enumerate(self.items)}
        missing = [item_node(j) for j in self.items if item_node(j) not in model.nodes()]
        if missing or self.prior.shape != (self.n_items,):
            raise ValueError(f"saved network does not match its items (missing {missing[:3]})")
        self.counts = None
        if "counts" in arrays:  # absent in networks saved before them
            self.counts = {k: np.asarray(v, dtype=np.float64) for k, v in arrays["counts"].items()}
            for cpd in model.get_cpds():
                shape = np.shape(cpd.get_values())
                if self.counts.get(cpd.variable, np.zeros(0)).shape != shape:
                    raise ValueError(f"saved counts of {cpd.variable!r} do not match its CPT")
        self.engine = pgm.VariableElimination(model)
        return self
