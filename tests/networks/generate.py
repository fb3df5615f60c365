"""Write the generated test networks of this folder with pgm's own BIF writer.

``python tests/networks/generate.py`` rewrites ``hub45.bif``: 45 variables of 2-5 states, a hub
that 34 variables depend on (a step with more operands than one einsum takes is grouped), and
up to three further parents each among the six variables before it, so that the plans of its
queries have large steps (pairwise products, planned matrix products) as well as small ones.
CPT columns are Dirichlet(0.7) draws from ``numpy.random.default_rng(2024)``, rounded to 6
decimals with the last state taking the remainder; the file is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pgm

HERE = Path(__file__).resolve().parent


def hub_network(seed: int = 2024, n: int = 45, hub_children: int = 34) -> pgm.BayesianNetwork:
    """The network of ``hub45.bif`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    names = ["Hub"] + [f"N{i:02d}" for i in range(1, n)]
    cards = [3] + [int(c) for c in rng.integers(2, 6, n - 1)]
    model = pgm.BayesianNetwork()
    model.add_nodes_from(names)
    cpds = []
    for i, name in enumerate(names):
        parents = [0] if 1 <= i <= hub_children else []
        if i > 1:
            window = np.arange(max(1, i - 6), i)  # recent variables: wide cliques
            extra = rng.choice(window, min(len(window), int(rng.integers(0, 4))), replace=False)
            parents += sorted(int(j) for j in extra)
        model.add_edges_from([(names[j], name) for j in parents])
        columns = int(np.prod([cards[j] for j in parents]))
        values = np.round(rng.dirichlet(np.full(cards[i], 0.7), size=columns).T, 6)
        values[-1] = 1.0 - values[:-1].sum(axis=0)
        states = {names[k]: [f"s{s}" for s in range(cards[k])] for k in [i, *parents]}
        cpds.append(
            pgm.TabularCPD(
                name,
                cards[i],
                values,
                [names[j] for j in parents] or None,
                [cards[j] for j in parents] or None,
                state_names=states,
            )
        )
    model.add_cpds(*cpds)
    return model


if __name__ == "__main__":
    pgm.write_bif(hub_network(), HERE / "hub45.bif")
