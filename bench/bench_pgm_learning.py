"""Speed of BIF reading and of learning: ours against pgmpy 1.1.2 and pyAgrum (if installed).

Run the comparison table (one thread everywhere)::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python bench/bench_pgm_learning.py

or the pytest-benchmark cases: ``pytest bench/bench_pgm_learning.py``. Peers that are not
installed are skipped with a message.

Workloads:

- ``read``: read barley / mildew / alarm from ``../shared/data/bif`` (decompressed text, so
  every reader parses the same bytes);
- ``app``: the bundlerec shape, binary item-presence data from a random 300-node tree network,
  100,000 rows: ``chow_liu_tree`` + ``estimate_parameters`` (BDeu), and ``update_parameters``
  with 5,000 new rows (ours only: the peers take minutes at this size);
- ``app-small``: the same on 50 columns x 20,000 rows, against pgmpy ``TreeSearch`` +
  ``BayesianEstimator`` and pyAgrum ``BNLearner.learnParameters`` on our tree;
- ``hill``: BIC hill climbing on 5,000 rows sampled from alarm (pyAgrum greedy hill climbing,
  pgmpy ``HillClimbSearch``).
"""

from __future__ import annotations

import gzip
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pgm.io import read_bif  # noqa: E402
from pgm.learning import (  # noqa: E402
    chow_liu_tree,
    estimate_parameters,
    hill_climb,
    update_parameters,
)
from pgm.models import BayesianNetwork, TabularCPD  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bif"


def bif_text(name: str) -> tuple[str, Path]:
    """Decompressed text of a shared network and a plain .bif copy of it (for the peers)."""
    path = DATA / f"{name}.bif.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    text = gzip.decompress(path.read_bytes()).decode()
    out = Path(tempfile.gettempdir()) / f"bench_learning_{name}.bif"
    out.write_text(text)
    return text, out


def random_tree_data(d: int, n: int, seed: int = 0) -> pd.DataFrame:
    """Binary data (0/1 ints) sampled from a random tree network over ``i0 .. i{d-1}``."""
    rng = np.random.default_rng(seed)
    names = [f"i{k}" for k in range(d)]
    model = BayesianNetwork()
    model.add_nodes_from(names)
    model.add_edges_from([(names[int(rng.integers(0, k))], names[k]) for k in range(1, d)])
    cpds = []
    for node in names:
        parents = model.get_parents(node)
        p_buy = rng.uniform(0.02, 0.3, size=2 if parents else 1)
        if parents:
            p_buy[1] = min(0.95, p_buy[1] * 3)
        values = np.stack([1 - p_buy, p_buy])
        cpds.append(
            TabularCPD(
                node, 2, values, evidence=parents or None, evidence_card=[2] if parents else None
            )
        )
    model.add_cpds(*cpds)
    return model.simulate(n, rng).astype(np.int64)


def alarm_sample(n: int = 5000) -> pd.DataFrame:
    text, _ = bif_text("alarm")
    return read_bif(text).simulate(n, np.random.default_rng(1))


# -- what each library runs --------------------------------------------------------------------
def ours_read(name):
    text, _ = bif_text(name)
    return lambda: read_bif(text)


def pyagrum_read(name):
    gum = pytest.importorskip("pyagrum", reason="pyAgrum not installed: peer skipped")
    _, path = bif_text(name)
    return lambda: gum.loadBN(str(path))


def pgmpy_read(name):
    bif = pytest.importorskip("pgmpy.readwrite", reason="pgmpy not installed: peer skipped")
    text, _ = bif_text(name)
    return lambda: bif.BIFReader(string=text).get_model()


def ours_tree_fit(data):
    return lambda: estimate_parameters(chow_liu_tree(data), data, prior="bdeu")


def pgmpy_tree_fit(data):
    est = pytest.importorskip("pgmpy.estimators", reason="pgmpy not installed: peer skipped")
    models = pytest.importorskip("pgmpy.models")

    def run():
        dag = est.TreeSearch(data, root_node=data.columns[0], n_jobs=1).estimate(
            estimator_type="chow-liu", show_progress=False
        )
        model = models.DiscreteBayesianNetwork(dag.edges())
        model.add_nodes_from(data.columns)
        cpds = est.BayesianEstimator(model, data).get_parameters(
            prior_type="BDeu", equivalent_sample_size=1
        )
        model.add_cpds(*cpds)
        return model

    return run


def pyagrum_param_fit(data):
    gum = pytest.importorskip("pyagrum", reason="pyAgrum not installed: peer skipped")
    tree = chow_liu_tree(data)
    frame = data.astype(str)

    def run():
        bn = gum.BayesNet()
        for col in frame.columns:
            bn.add(gum.LabelizedVariable(col, col, ["0", "1"]))
        for u, v in tree.edges():
            bn.addArc(u, v)
        learner = gum.BNLearner(frame, bn)
        learner.useBDeuPrior(1.0)
        return learner.learnParameters(bn.dag())

    return run


def ours_hill(data):
    return lambda: hill_climb(data, score="bic")


def pyagrum_hill(data):
    gum = pytest.importorskip("pyagrum", reason="pyAgrum not installed: peer skipped")

    def run():
        learner = gum.BNLearner(data)
        learner.useGreedyHillClimbing()
        learner.useScoreBIC()
        learner.useNoPrior()
        return learner.learnDAG()

    return run


def pgmpy_hill(data):
    est = pytest.importorskip("pgmpy.estimators", reason="pgmpy not installed: peer skipped")
    return lambda: est.HillClimbSearch(data).estimate(
        scoring_method="bic-d", show_progress=False, tabu_length=100
    )


# -- pytest-benchmark cases --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["alarm", "barley", "mildew"])
@pytest.mark.parametrize("peer", [ours_read, pyagrum_read, pgmpy_read], ids=lambda f: f.__name__)
def test_read(benchmark, threads, name, peer):
    benchmark.pedantic(peer(name), rounds=3, iterations=1, warmup_rounds=1)


def test_app_fit(benchmark, threads):
    data = random_tree_data(300, 100_000)
    benchmark.pedantic(ours_tree_fit(data), rounds=3, iterations=1, warmup_rounds=1)


def test_app_update(benchmark, threads):
    data = random_tree_data(300, 105_000)
    model = estimate_parameters(chow_liu_tree(data.iloc[:100_000]), data.iloc[:100_000])
    new = data.iloc[100_000:]
    benchmark.pedantic(lambda: update_parameters(model, new, 100.0), rounds=5, iterations=1)


@pytest.mark.parametrize(
    "peer", [ours_tree_fit, pgmpy_tree_fit, pyagrum_param_fit], ids=lambda f: f.__name__
)
def test_app_small_fit(benchmark, threads, peer):
    benchmark.pedantic(peer(random_tree_data(50, 20_000)), rounds=3, iterations=1)


@pytest.mark.parametrize("peer", [ours_hill, pyagrum_hill, pgmpy_hill], ids=lambda f: f.__name__)
def test_hill_climb(benchmark, threads, peer):
    benchmark.pedantic(peer(alarm_sample()), rounds=1, iterations=1)


# -- the comparison table ----------------------------------------------------------------------
def best_of(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import corenn

    print(f"threads: {corenn.set_num_threads()}")
    rows = []
    small, big, hill = random_tree_data(50, 20_000), random_tree_data(300, 100_000), alarm_sample()
    cases = [
        (f"read {n}", n, [ours_read, pyagrum_read, pgmpy_read])
        for n in ("alarm", "barley", "mildew")
    ]
    cases += [
        ("app 300x100k tree+fit", big, [ours_tree_fit]),
        ("app 50x20k tree+fit", small, [ours_tree_fit, pgmpy_tree_fit, pyagrum_param_fit]),
        ("hill climb alarm 5k", hill, [ours_hill, pyagrum_hill, pgmpy_hill]),
    ]
    for label, arg, peers in cases:
        timings = {}
        for peer in peers:
            try:
                timings[peer.__name__.split("_")[0]] = best_of(
                    peer(arg), 1 if "hill" in label else 3
                )
            except pytest.skip.Exception as skip:
                timings[peer.__name__.split("_")[0]] = str(skip)
        rows.append((label, timings))
    model = estimate_parameters(chow_liu_tree(big), big)
    new = random_tree_data(300, 5_000, seed=1)
    rows.append(
        ("app update 5k rows", {"ours": best_of(lambda: update_parameters(model, new, 100.0))})
    )
    print(f"{'workload':28s} {'ours':>10s} {'pyagrum':>12s} {'pgmpy':>12s}")
    for label, t in rows:
        cells = []
        for key in ("ours", "pyagrum", "pgmpy"):
            value = t.get(key, "-")
            if isinstance(value, float):
                ratio = "" if key == "ours" else f" ({value / t['ours']:.1f}x)"
                cells.append(f"{value * 1e3:.1f} ms{ratio}")
            else:
                cells.append("skipped" if value != "-" else "-")
        print(f"{label:28s} {cells[0]:>10s} {cells[1]:>16s} {cells[2]:>16s}")


if __name__ == "__main__":
    main()
