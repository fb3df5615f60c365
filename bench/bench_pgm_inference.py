"""Exact-inference speed: ours against pgmpy 1.1.2 and pyAgrum LazyPropagation.

Run the comparison table (one thread everywhere)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/bench_pgm_inference.py

or the pytest-benchmark cases: ``pytest bench/bench_pgm_inference.py``. Peers that are not
installed are skipped with a message.

Workloads, per network of ``/work/shared/data/bif`` (``../shared/data/bif`` from the repo root):

- single query: 20 queries, each one random target and 3 random evidence variables whose states
  come from a forward sample (so the evidence is possible), on an engine built once per network;
  "cold" clears our plan cache before every query (plan + execute), "warm" repeats the same
  structures (execute only); the engines are timed in interleaved rounds (best of 5 each), so
  load changes hit all of them alike;
- one-off query: the same queries, each on a new engine (ours: check, compile, plan, execute;
  pgmpy: ``VariableElimination(model)``; pyAgrum: ``LazyPropagation(bn)``), the model read once;
- batch: 1,000 evidence cases on alarm (fixed target and evidence variables), ours in one
  ``batch_query`` call, the peers in a loop;
- a bundlerec-like network, a 300-node binary tree: single queries P(item | 5 cart items);
  2,000 shoppers with different carts (3-8 items) in one ``batch_query`` (each other item a
  column, ``-1`` where not in the cart) against pyAgrum looping over the shoppers; the
  coherence ``log P(bundle | cart)`` of 2,000 (cart, 3-item bundle) pairs as a ratio of two
  ``batch_probability_of_evidence`` calls; and P(item | all 299 other items) for 2,000 cases.
"""

from __future__ import annotations

import gzip
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interleave  # noqa: E402

import pgm  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bif"
NETWORKS = ["asia", "child", "insurance", "alarm", "water", "barley"]
N_QUERIES, N_EVIDENCE, N_CASES = 20, 3, 1000
N_SHOPPERS, TREE_TARGET = 2000, "item7"


def load(name: str):
    """``(our network, path of the decompressed .bif)``."""
    path = DATA / f"{name}.bif.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    text = gzip.decompress(path.read_bytes()).decode()
    out = Path(tempfile.gettempdir()) / f"bench_{name}.bif"
    out.write_text(text)
    return pgm.read_bif(text), out


def workload(model, seed: int = 0) -> list[tuple[str, dict]]:
    """``N_QUERIES`` (target, evidence) pairs with evidence drawn from a forward sample."""
    rng = np.random.default_rng(seed)
    nodes = model.nodes()
    rows = model.simulate(N_QUERIES, rng)
    out = []
    for i in range(N_QUERIES):
        picked = rng.choice(len(nodes), size=N_EVIDENCE + 1, replace=False)
        target, ev = nodes[picked[0]], [nodes[j] for j in picked[1:]]
        out.append((target, {v: rows[v].iloc[i] for v in ev}))
    return out


def batch_workload(model, seed: int = 1):
    nodes = model.nodes()
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(nodes), size=N_EVIDENCE + 1, replace=False)
    target, ev = nodes[picked[0]], [nodes[j] for j in picked[1:]]
    return target, model.simulate(N_CASES, rng)[ev].reset_index(drop=True)


# -- the three engines -------------------------------------------------------------------------
def ours_single(model, queries, cold: bool):
    ve = pgm.VariableElimination(model)

    def run():
        for target, evidence in queries:
            if cold:
                ve.clear_cache()
            ve.query([target], evidence)

    return run


def pgmpy_single(path, queries):
    bif = pytest.importorskip("pgmpy.readwrite", reason="pgmpy is not installed")
    inference = pytest.importorskip("pgmpy.inference")
    ve = inference.VariableElimination(bif.BIFReader(str(path)).get_model())

    def run():
        for target, evidence in queries:
            ve.query([target], evidence=evidence, show_progress=False)

    return run


def ours_oneoff(model, queries):
    """A new engine for every query: check and compile the model, plan, execute."""

    def run():
        for target, evidence in queries:
            pgm.VariableElimination(model).query([target], evidence)

    return run


def pgmpy_oneoff(path, queries):
    bif = pytest.importorskip("pgmpy.readwrite", reason="pgmpy is not installed")
    inference = pytest.importorskip("pgmpy.inference")
    model = bif.BIFReader(str(path)).get_model()

    def run():
        for target, evidence in queries:
            inference.VariableElimination(model).query(
                [target], evidence=evidence, show_progress=False
            )

    return run


def agrum_oneoff(model, queries):
    gum = pytest.importorskip("pyagrum", reason="pyAgrum is not installed")
    bn = agrum_network(model)

    def run():
        for target, evidence in queries:
            ie = gum.LazyPropagation(bn)  # bn: held by this closure
            ie.addTarget(target)
            ie.setEvidence(evidence)
            ie.makeInference()
            ie.posterior(target)

    return run


def agrum_network(model):
    """A copy of ``model`` built through pyAgrum's API (its BIF
    reader rejects state names such as ``Asy/Patch`` that the published files use)."""
    gum = pytest.importorskip("pyagrum", reason="pyAgrum is not installed")
    bn = gum.BayesNet()
    for node in model.nodes():
        bn.add(gum.LabelizedVariable(node, node, model.states(node)))
    for parent, child in model.edges():
        bn.addArc(parent, child)
    for cpd in model.get_cpds():
        table = cpd.get_values()
        for col, config in enumerate(np.ndindex(*cpd.evidence_card)):
            bn.cpt(cpd.variable)[dict(zip(cpd.evidence, config, strict=True))] = table[:, col]
    return bn


def agrum_engine(model):
    """A LazyPropagation engine on :func:`agrum_network` of ``model``, holding that network
    (the engine alone does not keep it alive)."""
    gum = pytest.importorskip("pyagrum", reason="pyAgrum is not installed")
    bn = agrum_network(model)
    engine = gum.LazyPropagation(bn)
    engine.network = bn
    return engine


def agrum_single(model, queries):
    ie = agrum_engine(model)

    def run():
        for target, evidence in queries:
            ie.eraseAllTargets()
            ie.addTarget(target)
            ie.setEvidence(evidence)
            ie.makeInference()
            ie.posterior(target)

    return run


def ours_batch(model, target, cases):
    ve = pgm.VariableElimination(model)
    return lambda: ve.batch_query([target], cases)


def agrum_batch(model, target, cases, n=None):
    ie = agrum_engine(model)
    rows = cases.to_dict("records")[:n]

    def run():
        ie.eraseAllTargets()
        ie.addTarget(target)
        for row in rows:
            ie.setEvidence(row)
            ie.makeInference()
            ie.posterior(target)

    return run


def pgmpy_batch(path, target, cases, n):
    run = pgmpy_single(path, [(target, row) for row in cases.to_dict("records")[:n]])
    return run


def tree_network(n: int = 300, seed: int = 2) -> pgm.BayesianNetwork:
    """A bundlerec-like binary tree (Chow-Liu shape): node i hangs under a random earlier node."""
    rng = np.random.default_rng(seed)
    names = [f"item{i}" for i in range(n)]
    parent = [None] + [int(rng.integers(0, i)) for i in range(1, n)]
    bn = pgm.BayesianNetwork()
    bn.add_nodes_from(names)
    bn.add_edges_from([(names[p], names[i]) for i, p in enumerate(parent) if p is not None])
    for i, p in enumerate(parent):
        if p is None:
            bn.add_cpds(pgm.TabularCPD(names[i], 2, rng.dirichlet([1, 1])[:, None]))
        else:
            bn.add_cpds(
                pgm.TabularCPD(names[i], 2, rng.dirichlet([1, 1], size=2).T, [names[p]], [2])
            )
    return bn


def shoppers(tree: pgm.BayesianNetwork, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(carts, bundles)``: ``(N_SHOPPERS, n_items)`` int64, 1 in the cart and -1 elsewhere,
    and ``(N_SHOPPERS, 3)`` item positions of a candidate bundle per shopper."""
    rng = np.random.default_rng(seed)
    n_items = len(tree.nodes())
    carts = np.full((N_SHOPPERS, n_items), -1, np.int64)
    for row in carts:
        row[rng.choice(n_items, int(rng.integers(3, 9)), replace=False)] = 1
    bundles = np.stack([rng.choice(n_items, 3, replace=False) for _ in range(N_SHOPPERS)])
    return carts, bundles


def ours_shoppers(tree, carts):
    ve = pgm.VariableElimination(tree)
    items = tree.nodes()
    ev = {v: carts[:, k] for k, v in enumerate(items) if v != TREE_TARGET}
    return lambda: ve.batch_query([TREE_TARGET], ev)


def agrum_shoppers(tree, carts, n):
    ie = agrum_engine(tree)
    items = tree.nodes()
    rows = [
        {items[k]: "1" for k in np.flatnonzero(c == 1) if items[k] != TREE_TARGET} for c in carts
    ]

    def run():
        ie.eraseAllTargets()
        ie.addTarget(TREE_TARGET)
        for row in rows[:n]:
            ie.setEvidence(row)
            ie.makeInference()
            ie.posterior(TREE_TARGET)

    return run


def ours_coherence(tree, carts, bundles):
    """log P(bundle items = 1 | cart) for every shopper: two batched P(evidence) calls."""
    ve = pgm.VariableElimination(tree)
    items = tree.nodes()
    both = carts.copy()
    both[np.arange(len(carts))[:, None], bundles] = 1
    cart_ev = {v: carts[:, k] for k, v in enumerate(items)}
    both_ev = {v: both[:, k] for k, v in enumerate(items)}
    return lambda: (
        np.log(ve.batch_probability_of_evidence(both_ev))
        - np.log(ve.batch_probability_of_evidence(cart_ev))
    )


def ours_markov_blanket(tree, carts):
    """P(item | every other item observed) for N_SHOPPERS cases (0/1, no missing)."""
    ve = pgm.VariableElimination(tree)
    ev = {v: (carts[:, k] > 0).astype(np.int64) for k, v in enumerate(tree.nodes())}
    del ev[TREE_TARGET]
    return lambda: ve.batch_query([TREE_TARGET], ev)


# -- pytest-benchmark cases --------------------------------------------------------------------
@pytest.mark.parametrize("name", NETWORKS)
def test_single_query_ours_cold(benchmark, name):
    model, _ = load(name)
    benchmark(ours_single(model, workload(model), cold=True))


@pytest.mark.parametrize("name", NETWORKS)
def test_single_query_pgmpy(benchmark, name):
    model, path = load(name)
    benchmark.pedantic(pgmpy_single(path, workload(model)), rounds=3)


@pytest.mark.parametrize("name", NETWORKS)
def test_single_query_pyagrum(benchmark, name):
    model, _ = load(name)
    benchmark(agrum_single(model, workload(model)))


def test_batch_alarm_ours(benchmark):
    model, _ = load("alarm")
    benchmark(ours_batch(model, *batch_workload(model)))


def test_batch_alarm_pyagrum(benchmark):
    model, _ = load("alarm")
    benchmark.pedantic(agrum_batch(model, *batch_workload(model)), rounds=3)


def test_tree_shoppers_ours(benchmark):
    tree = tree_network()
    benchmark(ours_shoppers(tree, shoppers(tree)[0]))


def test_tree_shoppers_pyagrum(benchmark):
    tree = tree_network()
    benchmark.pedantic(agrum_shoppers(tree, shoppers(tree)[0], 200), rounds=3)


def test_tree_coherence_ours(benchmark):
    tree = tree_network()
    benchmark(ours_coherence(tree, *shoppers(tree)))


# -- the comparison table ----------------------------------------------------------------------
def best_of(fn, repeat: int = 5) -> float:
    """Best CPU time of ``repeat`` calls after one warm-up call, in seconds."""
    return interleaved({"fn": fn}, repeat)["fn"]


def interleaved(fns: dict, rounds: int = 5) -> dict:
    """Best CPU time (s) of each callable over ``rounds`` interleaved rounds: CPU time of this
    process, not wall time, so that a busy neighbour slows no engine by taking its core away
    (with one thread everywhere the two agree on an idle machine)."""
    return interleave.interleaved(fns, rounds, clock=time.process_time)


def peer(make, *args, **kwargs):
    try:
        return make(*args, **kwargs)
    except pytest.skip.Exception as skip:
        print(f"skipped: {skip}")
        return None


def main() -> None:
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    header = (
        "| network | ours cold ms | ours warm ms | pgmpy ms | pyAgrum ms "
        "| pgmpy/ours cold | pgmpy/ours warm | pyAgrum/ours cold | pyAgrum/ours warm |"
    )
    print(header + "\n|" + "---|" * 9)
    for name in NETWORKS:
        model, path = load(name)
        queries = workload(model)
        fns = {
            "cold": ours_single(model, queries, cold=True),
            "warm": ours_single(model, queries, cold=False),
            "pgmpy": peer(pgmpy_single, path, queries),
            "agrum": peer(agrum_single, model, queries),
        }
        ms = {k: float("nan") for k in fns}
        ms.update(interleaved({k: f for k, f in fns.items() if f}))
        cold, warm, pg, ag = (ms[k] / N_QUERIES * 1e3 for k in fns)
        print(
            f"| {name} | {cold:.3f} | {warm:.3f} | {pg:.2f} | {ag:.3f} "
            f"| {pg / cold:.1f}x | {pg / warm:.0f}x | {ag / cold:.1f}x | {ag / warm:.1f}x |"
        )
    print(
        "\none-off queries (a new engine for every query, model already loaded):\n"
        "| network | ours ms | pgmpy ms | pyAgrum ms | pgmpy/ours | pyAgrum/ours |\n"
        "|---|---|---|---|---|---|"
    )
    for name in NETWORKS:
        model, path = load(name)
        queries = workload(model)
        fns = {
            "ours": ours_oneoff(model, queries),
            "pgmpy": peer(pgmpy_oneoff, path, queries),
            "agrum": peer(agrum_oneoff, model, queries),
        }
        ms = {k: float("nan") for k in fns}
        ms.update(interleaved({k: f for k, f in fns.items() if f}))
        ours, pg, ag = (ms[k] / N_QUERIES * 1e3 for k in fns)
        print(
            f"| {name} | {ours:.3f} | {pg:.2f} | {ag:.3f} | {pg / ours:.1f}x | {ag / ours:.1f}x |"
        )
    model, path = load("alarm")
    target, cases = batch_workload(model)
    ours = N_CASES / best_of(ours_batch(model, target, cases))
    fn = peer(agrum_batch, model, target, cases)
    ag = N_CASES / best_of(fn, 2) if fn else float("nan")
    fn = peer(pgmpy_batch, path, target, cases, 200)
    pg = 200 / best_of(fn, 1) if fn else float("nan")
    print(f"\nalarm batch, {N_CASES} cases, P({target} | {', '.join(cases.columns)}):")
    print(f"ours {ours:,.0f} cases/s, pyAgrum {ag:,.0f} cases/s, pgmpy {pg:,.0f} cases/s")
    print(f"ours / pyAgrum = {ours / ag:.0f}x, ours / pgmpy = {ours / pg:.0f}x")
    tree = tree_network()
    rng = np.random.default_rng(3)
    items = tree.nodes()
    shop = [
        (items[int(i[0])], {items[int(j)]: 1 for j in i[1:]})
        for i in (rng.choice(len(items), 6, replace=False) for _ in range(N_QUERIES))
    ]
    cold = best_of(ours_single(tree, shop, cold=True)) / N_QUERIES * 1e3
    warm = best_of(ours_single(tree, shop, cold=False)) / N_QUERIES * 1e3
    print(
        f"\n300-node binary tree, P(item | 5 cart items): cold {cold:.3f} ms, warm {warm:.3f} ms"
    )
    carts, bundles = shoppers(tree)
    ours = N_SHOPPERS / best_of(ours_shoppers(tree, carts))
    fn = peer(agrum_shoppers, tree, carts, 200)
    ag = 200 / best_of(fn, 2) if fn else float("nan")
    print(
        f"{N_SHOPPERS} shoppers, P({TREE_TARGET} | cart), one batch_query: ours {ours:,.0f} "
        f"cases/s, pyAgrum loop {ag:,.0f} cases/s, ours / pyAgrum = {ours / ag:.0f}x"
    )
    per = best_of(ours_coherence(tree, carts, bundles)) / N_SHOPPERS * 1e6
    print(f"coherence log P(3-item bundle | cart), batched: {per:.2f} us per (cart, bundle)")
    per = best_of(ours_markov_blanket(tree, carts)) / N_SHOPPERS * 1e6
    print(f"P({TREE_TARGET} | all 299 other items), batched: {per:.2f} us per case")


if __name__ == "__main__":
    main()
