"""Row sort: the Numba radix kernel vs ``np.sort`` (its reference) vs ``torch.sort``.

The fusion sorts each component's keys of one shopper over the whole catalogue per bundle
request (:meth:`bundlerec.models.fusion.Fusion.prefixes`), so the case that matters is one row
of 47k float32 keys: distinct values (a sequence model's scores) and mostly ties (a component
that scores few items, the rest equal). A float64 row and a block of 64 rows complete the
picture. Each case is one group: ``cpu`` (ours), ``reference`` (``np.sort``), ``torch``
(``torch.sort(...).values``, same threads). Compilation is excluded by a warm-up call. Run:
``BENCH_THREADS=1 python -m pytest bench/bench_sorting.py --benchmark-group-by=group``.
"""

import numpy as np
import pytest

from kernels import cpu, reference

N_ITEMS = 47_000


def _rows(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "distinct-f32":
        return rng.normal(size=(1, N_ITEMS)).astype(np.float32)
    if kind == "ties-f32":
        keys = np.full((1, N_ITEMS), 3.0, dtype=np.float32)
        keys[0, :500] = rng.normal(size=500)
        return keys
    if kind == "distinct-f64":
        return rng.normal(size=(1, N_ITEMS))
    return rng.normal(size=(64, N_ITEMS)).astype(np.float32)  # "block-64-f32"


CASES = ["distinct-f32", "ties-f32", "distinct-f64", "block-64-f32"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", ["cpu", "reference"])
def test_sort_rows(benchmark, threads, case, impl):
    keys = _rows(case)
    sort_rows = {"cpu": cpu.sort_rows, "reference": reference.sort_rows}[impl]
    sort_rows(keys)  # compile
    benchmark.group = f"sort_rows {case}"
    out = benchmark(sort_rows, keys)
    np.testing.assert_array_equal(out, np.sort(keys, axis=1))


@pytest.mark.parametrize("case", CASES)
def test_sort_rows_torch(benchmark, torch, case):
    keys = torch.from_numpy(_rows(case))
    benchmark.group = f"sort_rows {case}"
    out = benchmark(lambda: torch.sort(keys, dim=1).values)
    np.testing.assert_array_equal(out.numpy(), np.sort(keys.numpy(), axis=1))
