"""Interleaved timing for the comparison tables of the benchmarks run as scripts."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved(
    fns: dict[str, Callable[[], object]],
    rounds: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Best time (s, by ``clock``) of each callable over ``rounds`` rounds that call each once
    in turn, after one warm-up call each, so that a change of machine load hits all alike.

    ``clock``: wall time by default; ``time.process_time`` (CPU time of this process) for
    single-threaded work, which a busy neighbour then cannot slow by taking the core away.
    """
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for key, fn in fns.items():
            start = clock()
            fn()
            best[key] = min(best[key], clock() - start)
    return best
