"""Conditional probability tables, Bayesian networks and Markov networks.

Every mutation of a network either succeeds and increments ``version`` (inference engines key
their caches on it) or raises and leaves the network unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pgm.errors import CPDError, CycleError, ModelError, PGMError, UnknownVariableError
from pgm.factor import Factor
from pgm.states import check_state_names, state_index


class TabularCPD:
    """``P(variable | evidence)`` as a table, in the pgmpy layout.

    Parameters
    ----------
    variable : hashable
        The child variable.
    variable_card : int
        Its number of states ``k``.
    values : array_like of float
        Shape ``(k, prod(evidence_card))``: rows are states of ``variable``, columns parent
        configurations with the LAST parent varying fastest. Each column sums to 1.
    evidence, evidence_card : sequence, optional
        Parents and their cardinalities.
    state_names : dict, optional
        ``{variable: [names]}`` for the child and parents; default ``"0" .. "k-1"``.

    Raises
    ------
    CPDError
        On a shape mismatch (naming the variable and both shapes), NaN or negative entries, or a
        column whose sum is not 1 within 1e-6 (naming the variable and the column).
    """

    def __init__(
        self,
        variable: Any,
        variable_card: int,
        values: Any,
        evidence: Sequence[Any] | None = None,
        evidence_card: Sequence[int] | None = None,
        state_names: Mapping[Any, Sequence] | None = None,
    ) -> None:
        evidence = list(evidence or [])
        evidence_card = [int(c) for c in (evidence_card or [])]
        variable_card = int(variable_card)
        if len(evidence) != len(evidence_card):
            raise CPDError(
                f"CPD of {variable!r}: {len(evidence)} evidence variables but "
                f"{len(evidence_card)} evidence cardinalities"
            )
        if variable in evidence or len(set(evidence)) != len(evidence):
            raise CPDError(f"CPD of {variable!r}: repeated variable in evidence {evidence}")
        if variable_card < 1 or any(c < 1 for c in evidence_card):
            raise CPDError(f"CPD of {variable!r}: cardinalities must be >= 1")
        values = np.array(values, dtype=np.float64)
        expected = (variable_card, int(np.prod(evidence_card)))
        if values.ndim == 1 and not evidence:
            values = values.reshape(-1, 1)
        if values.shape != expected:
            raise CPDError(
                f"CPD of {variable!r}: values have shape {values.shape}, expected {expected} "
                f"from variable_card={variable_card}, evidence_card={evidence_card}"
            )
        if np.isnan(values).any() or (values < 0).any():
            raise CPDError(f"CPD of {variable!r} has NaN or negative entries")
        sums = values.sum(axis=0)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if bad.size:
            raise CPDError(
                f"CPD of {variable!r}: column {int(bad[0])} sums to {sums[bad[0]]:.9g}, not 1"
            )
        try:
            names = check_state_names(
                [variable, *evidence], [variable_card, *evidence_card], state_names
            )
        except PGMError as err:
            raise CPDError(f"CPD of {variable!r}: {err}") from None
        values.flags.writeable = False
        self._variable = variable
        self._card = variable_card
        self._evidence = evidence
        self._evidence_card = evidence_card
        self._values2d = values
        self._state_names = names

    @property
    def variable(self) -> Any:
        """The child variable."""
        return self._variable

    @property
    def variable_card(self) -> int:
        """Number of states of the child."""
        return self._card

    @property
    def evidence(self) -> list:
        """Parents, in the column order of the table."""
        return list(self._evidence)

    @property
    def evidence_card(self) -> list[int]:
        """Cardinalities of the parents."""
        return list(self._evidence_card)

    @property
    def cardinality(self) -> np.ndarray:
        """``(1 + n_parents,)`` int64: ``[variable_card, *evidence_card]``."""
        return np.array([self._card, *self._evidence_card], dtype=np.int64)

    @property
    def variables(self) -> list:
        """``[variable, *evidence]``."""
        return [self._variable, *self._evidence]

    @property
    def state_names(self) -> dict[Any, list[str]]:
        """``{variable: [names]}`` for the child and each parent."""
        return {v: list(s) for v, s in self._state_names.items()}

    @property
    def values(self) -> np.ndarray:
        """Read-only table of shape ``(variable_card, *evidence_card)`` (child axis first)."""
        return self._values2d.reshape([self._card, *self._evidence_card])

    def get_values(self) -> np.ndarray:
        """Read-only 2-D table ``(variable_card, prod(evidence_card))``."""
        return self._values2d

    def to_factor(self) -> Factor:
        """The table as a :class:`~pgm.factor.Factor` over ``[variable, *evidence]``."""
        return Factor(self.variables, self.cardinality, self.values, self._state_names)

    def copy(self) -> TabularCPD:
        """An equal CPD (tables are immutable, so this shares them)."""
        return self

    def __repr__(self) -> str:
        given = f" | {', '.join(map(str, self._evidence))}" if self._evidence else ""
        return f"<TabularCPD P({self._variable}:{self._card}{given})>"


class _Graph:
    """Nodes and neighbour lists in insertion order, plus the ``version`` counter."""

    def __init__(self) -> None:
        self._nodes: dict[Any, None] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Incremented on every successful structural or parameter mutation."""
        return self._version

    def _bump(self) -> None:
        self._version += 1

    def nodes(self) -> list:
        """The nodes in insertion order."""
        return list(self._nodes)

    def __contains__(self, node: Any) -> bool:
        return node in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def _require(self, node: Any) -> None:
        if node not in self._nodes:
            raise UnknownVariableError(f"node {node!r} is not in the model")

    def add_node(self, node: Any) -> None:
        """Add one node (no-op if present)."""
        self.add_nodes_from([node])

    def add_nodes_from(self, nodes: Iterable[Any]) -> None:
        """Add nodes (those present are kept)."""
        nodes = list(nodes)
        for node in nodes:
            hash(node)
        new = [n for n in dict.fromkeys(nodes) if n not in self._nodes]
        self._add_new_nodes(new)
        if new:
            self._bump()

    def add_edge(self, u: Any, v: Any) -> None:
        """Add the edge ``u - v`` (``u -> v`` when directed), adding missing nodes."""
        self.add_edges_from([(u, v)])


class BayesianNetwork(_Graph):
    """A directed acyclic graph with one :class:`TabularCPD` per node.

    Parameters
    ----------
    edges : iterable of (parent, child), optional
    """

    def __init__(self, edges: Iterable[tuple[Any, Any]] | None = None) -> None:
        super().__init__()
        self._parents: dict[Any, list] = {}
        self._children: dict[Any, list] = {}
        self._cpds: dict[Any, TabularCPD] = {}
        if edges is not None:
            self.add_edges_from(edges)

    def _add_new_nodes(self, new: list) -> None:
        for node in new:
            self._nodes[node] = None
            self._parents[node] = []
            self._children[node] = []

    # -- structure ----------------------------------------------------------------------------
    def edges(self) -> list[tuple[Any, Any]]:
        """``(parent, child)`` pairs, by child in node order then parent in insertion order."""
        return [(p, c) for c in self._nodes for p in self._parents[c]]

    def get_parents(self, node: Any) -> list:
        """Parents of ``node`` in insertion order."""
        self._require(node)
        return list(self._parents[node])

    def get_children(self, node: Any) -> list:
        """Children of ``node`` in insertion order."""
        self._require(node)
        return list(self._children[node])

    def _path(self, start: Any, goal: Any, children: Mapping[Any, list]) -> list | None:
        """A directed path ``start -> ... -> goal`` or ``None`` (depth-first)."""
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            if node == goal:
                return path
            for child in children.get(node, ()):
                if child not in seen:
                    seen.add(child)
                    stack.append((child, [*path, child]))
        return None

    def add_edges_from(self, edges: Iterable[tuple[Any, Any]]) -> None:
        """Add directed edges, all or none.

        Raises
        ------
        CycleError
            Naming the cycle an edge would close, e.g. ``"A -> B -> C -> A"``.
        """
        edges = [tuple(e) for e in edges]
        children = {n: list(c) for n, c in self._children.items()}
        added = []
        for u, v in edges:
            hash(u), hash(v)
            if v in children.get(u, ()):
                continue
            path = [u] if u == v else self._path(v, u, children)
            if path is not None:
                cycle = " -> ".join(map(str, [u, *path] if u != v else [u, u]))
                raise CycleError(f"edge {u!r} -> {v!r} would create the cycle {cycle}")
            children.setdefault(u, []).append(v)
            children.setdefault(v, [])
            added.append((u, v))
        self._add_new_nodes(
            [n for n in dict.fromkeys(x for e in edges for x in e) if n not in self._nodes]
        )
        for u, v in added:
            self._children[u].append(v)
            self._parents[v].append(u)
        if edges:
            self._bump()

    def remove_edge(self, u: Any, v: Any) -> None:
        """Remove the edge ``u -> v``; the CPD of ``v`` (if any) is removed too."""
        if v not in self._children.get(u, ()):
            raise PGMError(f"edge {u!r} -> {v!r} is not in the model")
        self._children[u].remove(v)
        self._parents[v].remove(u)
        self._cpds.pop(v, None)
        self._bump()

    def topological_order(self) -> list:
        """Nodes with every parent before its children (ties in node order)."""
        indeg = {n: len(self._parents[n]) for n in self._nodes}
        ready = [n for n in self._nodes if indeg[n] == 0]
        order = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for child in self._children[node]:
                indeg[child] -= 1
                if indeg[child] == 0:
                    ready.append(child)
        return order

    def get_ancestors(self, nodes: Iterable[Any]) -> set:
        """The nodes and all their ancestors."""
        stack = list(nodes)
        for n in stack:
            self._require(n)
        seen = set(stack)
        while stack:
            for p in self._parents[stack.pop()]:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        return seen

    # -- parameters ---------------------------------------------------------------------------
    def add_cpds(self, *cpds: TabularCPD) -> None:
        """Attach CPDs (replacing a node's previous CPD), all or none.

        Raises
        ------
        TypeError
            If an argument is not a :class:`TabularCPD`.
        UnknownVariableError
            If a CPD names a variable that is not a node.
        """
        for cpd in cpds:
            if not isinstance(cpd, TabularCPD):
                raise TypeError(f"add_cpds expects TabularCPD objects, got {type(cpd).__name__}")
            for var in cpd.variables:
                if var not in self._nodes:
                    raise UnknownVariableError(
                        f"CPD of {cpd.variable!r} names {var!r}, which is not a node of the model"
                    )
        for cpd in cpds:
            self._cpds[cpd.variable] = cpd
        if cpds:
            self._bump()

    def get_cpds(self, node: Any = None) -> list[TabularCPD] | TabularCPD | None:
        """All CPDs in node order, or the CPD of ``node`` (``None`` if it has none)."""
        if node is None:
            return [self._cpds[n] for n in self._nodes if n in self._cpds]
        self._require(node)
        return self._cpds.get(node)

    def remove_cpds(self, *cpds: TabularCPD | Any) -> None:
        """Detach CPDs, given as CPD objects or node names."""
        nodes = [c.variable if isinstance(c, TabularCPD) else c for c in cpds]
        for node in nodes:
            if node not in self._cpds:
                raise PGMError(f"node {node!r} has no CPD to remove")
        for node in nodes:
            del self._cpds[node]
        if nodes:
            self._bump()

    def check_model(self) -> bool:
        """Check that every node has a CPD over exactly its parents, consistent in cardinality
        and state names with the parents' own CPDs.

        Raises
        ------
        ModelError
            Naming the first node that fails.
        """
        for node in self._nodes:
            cpd = self._cpds.get(node)
            if cpd is None:
                raise ModelError(f"node {node!r} has no CPD")
            if set(cpd.evidence) != set(self._parents[node]):
                raise ModelError(
                    f"CPD of {node!r} is conditioned on {cpd.evidence} but the node's parents "
                    f"are {self._parents[node]}"
                )
        for node in self._nodes:
            cpd = self._cpds[node]
            for parent, card in zip(cpd.evidence, cpd.evidence_card, strict=True):
                own = self._cpds[parent]
                if own.variable_card != card:
                    raise ModelError(
                        f"CPD of {node!r} gives parent {parent!r} cardinality {card} but the "
                        f"CPD of {parent!r} has {own.variable_card}"
                    )
                if own.state_names[parent] != cpd.state_names[parent]:
                    raise ModelError(
                        f"CPD of {node!r} names the states of {parent!r} "
                        f"{cpd.state_names[parent]} but its own CPD has "
                        f"{own.state_names[parent]}"
                    )
        return True

    def get_cardinality(self, node: Any = None) -> int | dict[Any, int]:
        """Number of states of ``node`` (from its CPD), or a dict for every node with a CPD."""
        if node is None:
            return {n: c.variable_card for n, c in self._cpds.items()}
        return self._cpd_of(node).variable_card

    def states(self, node: Any) -> list[str]:
        """State names of ``node`` (from its CPD)."""
        return self._cpd_of(node).state_names[node]

    def _cpd_of(self, node: Any) -> TabularCPD:
        self._require(node)
        if node not in self._cpds:
            raise ModelError(f"node {node!r} has no CPD")
        return self._cpds[node]

    # -- derived models -----------------------------------------------------------------------
    def to_markov_network(self) -> MarkovNetwork:
        """Moralize: connect co-parents, drop directions; the CPDs become the factors."""
        mn = MarkovNetwork()
        mn.add_nodes_from(self._nodes)
        moral = set()
        for child in self._nodes:
            family = [*self._parents[child], child]
            for i, a in enumerate(family):
                for b in family[i + 1 :]:
                    if (b, a) not in moral:
                        moral.add((a, b))
        mn.add_edges_from(sorted(moral, key=str))
        mn.add_factors(*(c.to_factor() for c in self.get_cpds()))
        return mn

    def copy(self) -> BayesianNetwork:
        """An independent network with the same structure, CPDs and version."""
        other = BayesianNetwork()
        other._nodes = dict(self._nodes)
        other._parents = {n: list(p) for n, p in self._parents.items()}
        other._children = {n: list(c) for n, c in self._children.items()}
        other._cpds = dict(self._cpds)
        other._version = self._version
        return other

    def simulate(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``n`` joint samples by forward sampling (vectorised per node).

        Parameters
        ----------
        n : int
            Number of samples.
        rng : numpy.random.Generator

        Returns
        -------
        pandas.DataFrame
            ``n`` rows, one column per node (node order), holding state names (``str``).
        """
        self.check_model()
        if not isinstance(rng, np.random.Generator):
            raise TypeError("simulate needs an explicit numpy.random.Generator")
        idx: dict[Any, np.ndarray] = {}
        for node in self.topological_order():
            cpd = self._cpds[node]
            if cpd.evidence:
                col = np.ravel_multi_index([idx[p] for p in cpd.evidence], cpd.evidence_card)
            else:
                col = np.zeros(n, dtype=np.int64)
            cum = np.cumsum(cpd.get_values(), axis=0)[:, col]  # (k, n)
            u = rng.random(n) * cum[-1]
            idx[node] = np.minimum((u[None, :] >= cum).sum(axis=0), cpd.variable_card - 1)
        return pd.DataFrame(
            {node: np.asarray(self.states(node), dtype=object)[idx[node]] for node in self._nodes}
        )


class MarkovNetwork(_Graph):
    """An undirected graph with non-negative factors over its cliques.

    Parameters
    ----------
    edges : iterable of (u, v), optional
    """

    def __init__(self, edges: Iterable[tuple[Any, Any]] | None = None) -> None:
        super().__init__()
        self._adj: dict[Any, dict[Any, None]] = {}
        self._factors: list[Factor] = []
        if edges is not None:
            self.add_edges_from(edges)

    def _add_new_nodes(self, new: list) -> None:
        for node in new:
            self._nodes[node] = None
            self._adj[node] = {}

    def edges(self) -> list[tuple[Any, Any]]:
        """Each undirected edge once, as added."""
        seen, out = set(), []
        for u in self._nodes:
            for v in self._adj[u]:
                if (v, u) not in seen:
                    seen.add((u, v))
                    out.append((u, v))
        return out

    def neighbors(self, node: Any) -> list:
        """Neighbours of ``node``."""
        self._require(node)
        return list(self._adj[node])

    def add_edges_from(self, edges: Iterable[tuple[Any, Any]]) -> None:
        """Add undirected edges (self-loops rejected), adding missing nodes."""
        edges = [tuple(e) for e in edges]
        for u, v in edges:
            if u == v:
                raise PGMError(f"self-loop on {u!r} is not allowed")
        self._add_new_nodes(
            [n for n in dict.fromkeys(x for e in edges for x in e) if n not in self._nodes]
        )
        for u, v in edges:
            self._adj[u][v] = None
            self._adj[v][u] = None
        if edges:
            self._bump()

    def add_factors(self, *factors: Factor) -> None:
        """Attach factors, all or none; each scope must be a set of nodes of the model."""
        for f in factors:
            if not isinstance(f, Factor):
                raise TypeError(f"add_factors expects Factor objects, got {type(f).__name__}")
            for var in f.variables:
                if var not in self._nodes:
                    raise UnknownVariableError(
                        f"factor {f!r} names {var!r}, which is not a node of the model"
                    )
        self._factors.extend(factors)
        if factors:
            self._bump()

    def get_factors(self, node: Any = None) -> list[Factor]:
        """All factors, or those whose scope contains ``node``."""
        if node is None:
            return list(self._factors)
        self._require(node)
        return [f for f in self._factors if node in f.variables]

    def remove_factors(self, *factors: Factor) -> None:
        """Detach factors (compared by identity)."""
        ids = [id(f) for f in factors]
        if not set(ids) <= {id(f) for f in self._factors}:
            raise PGMError("remove_factors got a factor that is not in the model")
        self._factors = [f for f in self._factors if id(f) not in ids]
        if factors:
            self._bump()

    def check_model(self) -> bool:
        """Check that every factor scope is a clique and that cardinalities and state names of a
        variable agree across factors.

        Raises
        ------
        ModelError
            Naming the variable or factor that fails.
        """
        self._variable_states()
        for f in self._factors:
            scope = f.variables
            for i, a in enumerate(scope):
                for b in scope[i + 1 :]:
                    if b not in self._adj[a]:
                        raise ModelError(
                            f"factor {f!r} spans {a!r} and {b!r}, which are not neighbours"
                        )
        return True

    def _variable_states(self) -> dict[Any, list[str]]:
        names: dict[Any, list[str]] = {}
        for f in self._factors:
            for var, states in f.state_names.items():
                if names.setdefault(var, states) != states:
                    raise ModelError(
                        f"variable {var!r} has states {names[var]} in one factor and {states} "
                        f"in another"
                    )
        return names

    def get_cardinality(self, node: Any = None) -> int | dict[Any, int]:
        """Number of states of ``node`` (from the factors), or a dict for every variable."""
        names = self._variable_states()
        if node is None:
            return {v: len(s) for v, s in names.items()}
        return len(self.states(node))

    def states(self, node: Any) -> list[str]:
        """State names of ``node`` (from the factors that contain it)."""
        self._require(node)
        names = self._variable_states()
        if node not in names:
            raise ModelError(f"node {node!r} is in no factor")
        return names[node]

    def partition_function(self) -> float:
        """``Z = sum_x prod_f phi_f(x)``, by variable elimination."""
        from pgm.elimination import VariableElimination

        return VariableElimination(self).probability_of_evidence({})

    def energy(self, assignment: Mapping[Any, Any]) -> float:
        """``E(x) = -sum_f log phi_f(x)`` at a full assignment ``{variable: state}``.

        Returns ``inf`` where a factor is zero.
        """
        names = self._variable_states()
        missing = [v for v in names if v not in assignment]
        if missing:
            raise PGMError(f"energy needs a state for every variable; missing {missing}")
        total = 0.0
        with np.errstate(divide="ignore"):
            for f in self._factors:
                idx = tuple(state_index(v, names[v], assignment[v]) for v in f.variables)
                total -= float(np.log(f.values[idx]))
        return total

    def copy(self) -> MarkovNetwork:
        """An independent network with the same graph, factors and version."""
        other = MarkovNetwork()
        other._nodes = dict(self._nodes)
        other._adj = {n: dict(a) for n, a in self._adj.items()}
        other._factors = list(self._factors)
        other._version = self._version
        return other

    @classmethod
    def from_ising(
        cls, weights: Any, biases: Any, names: Sequence[Any] | None = None
    ) -> MarkovNetwork:
        """Binary ``{0, 1}`` model with ``E(x) = -sum_{i<j} w_ij x_i x_j - sum_i b_i x_i``.

        Parameters
        ----------
        weights : array_like, shape (n, n)
            Symmetric couplings with zero diagonal; an edge for each non-zero ``w_ij``.
        biases : array_like, shape (n,)
        names : sequence, optional
            Variable names; default ``"x0" .. "x{n-1}"``.

        Returns
        -------
        MarkovNetwork
            Factors ``exp(b_i x_i)`` per node and ``exp(w_ij x_i x_j)`` per edge, so
            ``p(x) = exp(-E(x)) / Z``.
        """
        w = np.asarray(weights, dtype=np.float64)
        b = np.asarray(biases, dtype=np.float64)
        n = b.shape[0] if b.ndim == 1 else -1
        if b.ndim != 1 or w.shape != (n, n):
            raise PGMError(
                f"from_ising needs weights (n, n) and biases (n,), got {w.shape}, {b.shape}"
            )
        if not np.allclose(w, w.T, atol=1e-12, rtol=0) or np.any(np.diag(w) != 0):
            raise PGMError("from_ising needs symmetric weights with a zero diagonal")
        names = [f"x{i}" for i in range(n)] if names is None else list(names)
        if len(names) != n:
            raise PGMError(f"from_ising got {len(names)} names for {n} variables")
        mn = cls()
        mn.add_nodes_from(names)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if w[i, j] != 0]
        mn.add_edges_from([(names[i], names[j]) for i, j in pairs])
        unary = [Factor([names[i]], [2], np.exp([0.0, b[i]])) for i in range(n)]
        pairwise = [
            Factor([names[i], names[j]], [2, 2], np.exp([[0.0, 0.0], [0.0, w[i, j]]]))
            for i, j in pairs
        ]
        mn.add_factors(*unary, *pairwise)
        return mn
