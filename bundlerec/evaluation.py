"""Offline evaluation of scoring models on a set of cases.

:func:`evaluate` scores every case with every model over the *whole* catalogue, removes the
items each case excludes, and reports the mean of the per-case metrics of
:mod:`bundlerec.metrics` (precision, recall, F1, NDCG and hit rate at each K, and MRR) plus the
catalogue coverage at each K. Cases are scored in batches so that the (batch, I) score matrix
stays bounded (about 2**23 cells) however large the catalogue. See ``docs/evaluation.md`` for
the protocols (next item, basket completion) that build the cases.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bundlerec.metrics import (
    coverage,
    f1_at_k,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
    top_k,
)
from bundlerec.progress import bar

if TYPE_CHECKING:
    from bundlerec.cases import Cases

__all__ = ["Scorer", "Report", "evaluate"]

_PER_CASE = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "f1": f1_at_k,
    "ndcg": ndcg_at_k,
    "hitrate": hit_rate_at_k,
}
_CELLS_PER_BATCH = 1 << 23


class Scorer(Protocol):
    """Anything with ``score(cases) -> ndarray (n, n_items)``, higher is better."""

    def score(self, cases: Cases) -> np.ndarray: ...


def _metric_names(k: int) -> list[str]:
    return [f"{name}@{k}" for name in (*_PER_CASE, "coverage")] + ["mrr"]


@dataclasses.dataclass(frozen=True)
class Report:
    """Mean metrics of several models on one set of cases.

    Attributes
    ----------
    protocol : str
        Name of the protocol that built the cases (e.g. ``"next-item"``).
    n_cases : int
        Number of cases every model was scored on.
    results : dict of str to dict of str to float
        ``results[model]["recall@10"]``; keys ``precision@K``, ``recall@K``, ``f1@K``,
        ``ndcg@K``, ``hitrate@K``, ``coverage@K`` for each K, and ``mrr``.
    """

    protocol: str
    n_cases: int
    results: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict ``{"protocol", "n_cases", "results": {model: {metric: v}}}``."""
        return {
            "protocol": self.protocol,
            "n_cases": self.n_cases,
            "results": {model: dict(values) for model, values in self.results.items()},
        }

    def to_table(self, k: int = 10) -> str:
        """Text table of the metrics at cut-off ``k`` (and MRR), one row per model.

        The best value of each column is marked with ``*`` (all of them when tied).
        """
        columns = _metric_names(k)
        missing = [c for c in columns if any(c not in v for v in self.results.values())]
        if missing:
            raise KeyError(f"the report has no {missing[0]!r}: evaluate with {k} among the ks")
        best = {c: max(v[c] for v in self.results.values()) for c in columns}
        name_width = max([len("model"), *map(len, self.results)])
        width = {c: max(len(c), 7) + 1 for c in columns}
        lines = [
            f"protocol: {self.protocol}   cases: {self.n_cases}   (* = best in column)",
            "  ".join(["model".ljust(name_width), *(c.rjust(width[c]) for c in columns)]),
        ]
        for model, values in self.results.items():
            cells = [
                (f"{values[c]:.4f}" + ("*" if values[c] == best[c] else " ")).rjust(width[c])
                for c in columns
            ]
            lines.append("  ".join([model.ljust(name_width), *cells]))
        return "\n".join(lines)


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    values = tuple(ks)
    if not values or any(
        isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in values
    ):
        raise ValueError(f"ks must be a non-empty sequence of positive integers, got {ks!r}")
    return tuple(sorted({int(k) for k in values}))


def _evaluate_one(
    name: str, scorer: Scorer, cases: Cases, ks: tuple[int, ...], batch: int, progress
) -> dict[str, float]:
    n, n_items = cases.exclude.shape
    sums = dict.fromkeys([f"{m}@{k}" for k in ks for m in _PER_CASE] + ["mrr"], 0.0)
    shown: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    progress.set_postfix_str(name)
    for start in range(0, n, batch):
        part = cases.rows(slice(start, min(start + batch, n)))
        scores = np.asarray(scorer.score(part))
        expected = (part.exclude.shape[0], n_items)
        if scores.shape != expected:
            raise ValueError(
                f"model {name!r} returned scores of shape {scores.shape}, expected {expected}"
            )
        lists = top_k(scores, ks[-1], part.exclude)
        for k in ks:
            for metric, fn in _PER_CASE.items():
                sums[f"{metric}@{k}"] += float(fn(lists, part.targets, k).sum())
            shown[k].append(np.unique(lists[:, :k]))
        sums["mrr"] += float(reciprocal_rank(scores, part.targets, part.exclude).sum())
        progress.update(1)
    results = {}
    for k in ks:
        for metric in _PER_CASE:
            results[f"{metric}@{k}"] = sums[f"{metric}@{k}"] / n
        results[f"coverage@{k}"] = coverage(np.concatenate(shown[k]), n_items)
    results["mrr"] = sums["mrr"] / n
    return results


def evaluate(
    scorers: Mapping[str, Scorer],
    cases: Cases,
    ks: Sequence[int] = (5, 10, 20),
    *,
    protocol: str = "unspecified",
    batch_size: int | None = None,
    verbose: bool = False,
) -> Report:
    """Score ``cases`` with every model and average the ranking metrics.

    Parameters
    ----------
    scorers : mapping of str to Scorer
        Fitted models by display name; each returns (n, I) scores for a :class:`Cases`.
    cases : Cases
        ``n`` cases with ``targets`` (n, M) int64 (at least one per case) and ``exclude``
        (n, I) bool sparse; excluded items are removed before ranking.
    ks : sequence of int, default (5, 10, 20)
        Cut-offs; every per-K metric is reported for each.
    protocol : str, default "unspecified"
        Name of the protocol that built the cases (``"next-item"``, ``"basket-completion"``).
    batch_size : int, optional
        Cases scored per call; by default about ``2**23 / I`` (at least 1).
    verbose : bool, default False
        A progress bar on stderr (batches of every model; the postfix names the model).

    Returns
    -------
    Report
        ``results[name]`` holds ``precision@K``, ``recall@K``, ``f1@K``, ``ndcg@K``,
        ``hitrate@K``, ``coverage@K`` for each K and ``mrr``, as Python floats.
    """
    if not scorers:
        raise ValueError("evaluate needs at least one scorer")
    ks = _check_ks(ks)
    n, n_items = cases.exclude.shape
    if n == 0:
        raise ValueError("evaluate needs at least one case, got 0")
    no_target = np.flatnonzero(~(np.asarray(cases.targets) >= 0).any(axis=1))
    if no_target.size:
        raise ValueError(f"{no_target.size} case(s) have no target (first: case {no_target[0]})")
    if batch_size is None:
        batch_size = max(1, _CELLS_PER_BATCH // max(n_items, 1))
    elif isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    batches = -(-n // batch_size)
    with bar(
        total=len(scorers) * batches, desc="evaluating", enabled=verbose, unit="batch"
    ) as progress:
        results = {
            name: _evaluate_one(name, scorer, cases, ks, batch_size, progress)
            for name, scorer in scorers.items()
        }
    return Report(protocol=protocol, n_cases=int(n), results=results)
