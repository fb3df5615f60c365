"""A Dask client: an embedded ``LocalCluster`` of worker processes, or a running scheduler.

Workers of the embedded cluster get one thread each, and one BLAS and Numba thread each
(``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS``), so that N workers use N cores without
oversubscribing them (docs/architecture.md, threads), and glibc's default memory allocator
settings: Dask's nannies set ``MALLOC_TRIM_THRESHOLD_``, which turns off glibc's adaptive mmap
threshold, so every large numpy temporary is mapped and faulted in afresh; top-10 scoring of
20,000 shoppers of a 1,000-item model on one thread took 6.9 s with it against 4.2 s without
(docs/scale.md). Workers of a real cluster are configured by whoever starts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["add_engine_options", "connect", "engine_client"]


@contextmanager
def connect(scheduler: str | None = None, workers: int = 2) -> Iterator[Client]:
    """A client of a running scheduler (``scheduler``, e.g. ``"tcp://10.0.0.5:8786"``) or of a
    ``LocalCluster`` of ``workers`` processes started here and closed on exit."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    one_thread = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    glibc_defaults = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    with dask.config.set(glibc_defaults):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=one_thread,
        )
    with cluster, Client(cluster) as client:
        yield client


def add_engine_options(parser, work: str) -> None:
    """The ``--engine``, ``--scheduler`` and ``--workers`` options of a command; ``work`` says
    what the cluster does (for the help text)."""
    from bundlerec.cli import _positive

    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help=f"local: this process; dask: {work} on a Dask cluster",
    )
    parser.add_argument(
        "--scheduler", help="address of a running Dask scheduler (default: start workers here)"
    )
    parser.add_argument(
        "--workers", type=_positive(int), default=2, help="Dask worker processes started here"
    )


@contextmanager
def engine_client(args) -> Iterator[Client | None]:
    """The client that parsed ``--engine/--scheduler/--workers`` ask for (None: local)."""
    if args.engine == "local":
        if args.scheduler is not None:
            raise ValueError("--scheduler needs --engine dask")
        yield None
        return
    with connect(args.scheduler, args.workers) as client:
        yield client
