"""Batch scoring in partitions: top items, bundles, campaign audiences, as partitioned Parquet.

A job splits its inputs (shoppers for ``items`` and ``bundles``, campaigns for ``audience``)
into partitions of ``partition_size`` and scores each partition with :func:`score_partition`, in
this process (``client=None``) or as one task per partition on a Dask cluster. A task ships only
the model's path and the partition's inputs: each process loads the model once
(:func:`cached_model`) and keeps it for every later task, so a worker pays the load once per
job, not once per partition (and, for audiences, builds the model's audience index once).

Output: a directory of ``part-NNNNN.parquet`` files (one per partition, in shopper order) and
``_batch.json`` (the job's task, model, counts and part names). Parts are written into a
temporary sibling of the destination, which is renamed to the destination only when every
part is in; a failed job removes it, so a directory at the destination is always complete. A
task whose worker dies is run again by Dask on another worker (``retries``); parts are written
through a temporary name, so a rerun replaces a half-written part, and the temporary files a
killed worker leaves behind are removed before the directory is renamed (every part is checked
to be there). On a real cluster the
destination must be on a file system every worker shares.

Tables (one row per shopper and rank):

- ``items``: ``user_id``, ``rank`` (1..k), ``item_id``
  (:meth:`~bundlerec.recommender.Recommender.recommend_items_batch`);
- ``bundles``: ``user_id``, ``rank``, ``items`` (list of ids, anchors first), ``total_price``,
  ``probability``, ``lift``, ``baskets_together``, ``p_any_companion``, ``expected_revenue``
  (:meth:`~bundlerec.recommender.Recommender.recommend_bundles`);
- ``audience``: ``campaign_id``, ``rank``, ``user_id``, ``probability``: each campaign's exact
  top shoppers among every shopper of the model (:meth:`Recommender.audience`). A campaign is a
  record with ``campaign_id`` and one of ``items`` (ids, comma-separated: shoppers likely to
  buy all of them), ``category`` or ``brand``, and optionally ``n`` (default ``k``),
  ``min_probability``, ``horizon_days`` (default 30, as :meth:`Recommender.audience`) and
  ``next_purchase`` (true: the next-purchase probability instead of a horizon).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bundlerec.audience import HORIZON_DAYS
from bundlerec.files import temporary_directory
from bundlerec.progress import bar

if TYPE_CHECKING:
    from distributed import Client

    from bundlerec.recommender import Recommender

__all__ = [
    "TASKS",
    "BatchResult",
    "cached_model",
    "check_output",
    "run_batch",
    "score_partition",
]

MANIFEST = "_batch.json"

_models: dict[tuple[str, int], Recommender] = {}
_models_lock = threading.Lock()


def cached_model(path: str | os.PathLike) -> Recommender:
    """The model directory at ``path``, loaded once per process.

    Keyed by the resolved path and the modification time of its ``meta.json``, so a model saved
    again at the same path is read anew; older entries are dropped.
    """
    from bundlerec.recommender import Recommender

    resolved = Path(path).expanduser().resolve()
    key = (str(resolved), (resolved / "meta.json").stat().st_mtime_ns)
    with _models_lock:
        if key not in _models:
            _models.clear()
            _models[key] = Recommender.load(resolved)
        return _models[key]


def _items(model: Recommender, users: list[str], k: int, **_: Any) -> pd.DataFrame:
    top = model.recommend_items_batch(users, k)
    rows, ranks = np.nonzero(top != None)  # noqa: E711 (elementwise on an object array)
    return pd.DataFrame(
        {
            "user_id": np.asarray(users, dtype=object)[rows].astype(str),
            "rank": (ranks + 1).astype(np.int16),
            "item_id": top[rows, ranks].astype(str),
        }
    )


_BUNDLE_FIGURES = (
    "total_price",
    "probability",
    "lift",
    "baskets_together",
    "p_any_companion",
    "expected_revenue",
)


def _bundles(model: Recommender, users: list[str], k: int, size: int = 3, **_) -> pd.DataFrame:
    records = [
        {
            "user_id": str(user),
            "rank": rank,
            "items": [item["item_id"] for item in b["items"]],
            **{name: b[name] for name in _BUNDLE_FIGURES},
        }
        for user in users
        for rank, b in enumerate(model.recommend_bundles(user, k=k, size=size)["bundles"], 1)
    ]
    frame = pd.DataFrame.from_records(
        records, columns=["user_id", "rank", "items", *_BUNDLE_FIGURES]
    )
    floats = {name: np.float64 for name in _BUNDLE_FIGURES if name != "baskets_together"}
    return frame.astype({"rank": np.int16, "baskets_together": np.int64, **floats})


def _truthy(value: Any) -> bool:
    """A table cell read as a flag: true/yes/1 (any case) or a true number."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def _audience(model: Recommender, campaigns: list[dict], k: int, **_: Any) -> pd.DataFrame:
    frames = []
    for campaign in campaigns:
        items = campaign.get("items")
        result = model.audience(
            None if items is None else [i.strip() for i in str(items).split(",") if i.strip()],
            n=int(campaign.get("n") or k),
            min_probability=campaign.get("min_probability"),
            category=campaign.get("category"),
            brand=campaign.get("brand"),
            horizon_days=(
                None
                if _truthy(campaign.get("next_purchase"))
                else float(campaign.get("horizon_days", HORIZON_DAYS))
            ),
        )
        chosen = pd.DataFrame(result["users"], columns=["user_id", "probability"])
        chosen.insert(0, "rank", np.arange(1, len(chosen) + 1, dtype=np.int32))
        chosen.insert(0, "campaign_id", str(campaign["campaign_id"]))
        frames.append(chosen)
    return pd.concat(frames, ignore_index=True).astype({"probability": np.float64})


_SCORERS = {"items": _items, "bundles": _bundles, "audience": _audience}
TASKS = tuple(_SCORERS)


def score_partition(
    model_path: str, inputs: Sequence[Any], task: str, k: int, target: str, options: dict
) -> int:
    """Score one partition and write its Parquet part; return its row count.

    Parameters
    ----------
    model_path : str
        A model directory (loaded once per process, :func:`cached_model`).
    inputs : sequence
        The partition's shopper ids (unknown shoppers get the model's answer for a newcomer),
        or its campaigns (``audience``, module docstring).
    task : {"items", "bundles", "audience"}
    k : int
        Items or bundles per shopper, or shoppers per campaign.
    target : str
        The part's path; written through a temporary name in the same directory.
    options : dict
        Task options: ``size`` (items per bundle).
    """
    frame = _SCORERS[task](cached_model(model_path), list(inputs), k, **options)
    tmp = f"{target}.{uuid.uuid4().hex}.tmp"
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(frame)


def check_output(out: str | os.PathLike) -> Path:
    """Refuse, before any work, a destination that is not absent, empty or a batch output.

    Returns the absolute path. A previous batch output (a directory with ``_batch.json``) is
    replaced when the job succeeds; a user's file or other folder is never touched.
    """
    path = Path(out).expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{out} is a file; name a directory for the batch output")
        if any(path.iterdir()) and not (path / MANIFEST).is_file():
            raise ValueError(
                f"{out} exists and is not a batch output (no {MANIFEST}); refusing to replace "
                "it (choose another path or remove it)"
            )
    parent = next((p for p in path.parents if p.exists()), Path(path.anchor))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(13, "Permission denied", str(parent))
    return path


@dataclass(frozen=True)
class BatchResult:
    """What a job wrote: the directory, inputs scored (shoppers or campaigns), rows, parts and
    wall seconds."""

    out: Path
    n_inputs: int
    n_rows: int
    n_parts: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Inputs scored per second of wall time (model loads and writes included)."""
        return self.n_inputs / self.seconds if self.seconds > 0 else float("inf")


def _sweep(tmp: Path, names: list[str]) -> None:
    """Leave only ``names`` in the job's ``tmp`` directory: anything else is a temporary part
    file of a worker killed while writing it (its task was rerun). Raises RuntimeError naming
    a missing part."""
    missing = [name for name in names if not (tmp / name).is_file()]
    if missing:
        raise RuntimeError(f"batch job finished without its parts {missing[:5]}")
    for stray in set(os.listdir(tmp)) - set(names):
        (tmp / stray).unlink()


def _publish(tmp: Path, path: Path) -> None:
    """Swap the finished ``tmp`` directory in at ``path`` (a previous output is removed)."""
    if path.exists() and any(path.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
        os.replace(path, old / "out")
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)


def run_batch(
    model: str | os.PathLike,
    inputs: Sequence[Any],
    task: str,
    out: str | os.PathLike,
    *,
    k: int = 10,
    client: Client | None = None,
    partition_size: int | None = None,
    retries: int = 2,
    verbose: bool = False,
    **options: Any,
) -> BatchResult:
    """Score ``inputs`` with the model directory ``model`` and write the parts under ``out``.

    Parameters
    ----------
    model : path
        A saved model directory (:meth:`Recommender.save`).
    inputs : sequence
        Shopper ids (``items``, ``bundles``) or campaign records (``audience``), in the order of
        the output parts.
    task : {"items", "bundles", "audience"}
        See the module docstring.
    out : path
        Output directory (:func:`check_output`).
    k : int
        Items or bundles per shopper, or shoppers per campaign without its own ``n``.
    client : distributed.Client, optional
        Run one task per partition on this cluster; None runs them here, one after another.
    partition_size : int, optional
        Inputs per partition: default 20000 shoppers, or 1 campaign (see docs/scale.md).
    retries : int
        Times Dask reruns a partition whose worker died or that raised.
    verbose : bool
        A progress bar (inputs scored) on stderr.
    **options
        ``size`` (items per bundle, default 3) for ``bundles``.

    Returns
    -------
    BatchResult
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if partition_size is None:
        partition_size = 1 if task == "audience" else 20000
    if k < 1 or partition_size < 1:
        raise ValueError(f"k and partition_size must be >= 1, got {k} and {partition_size}")
    path = check_output(out)
    model_path = str(Path(model).expanduser().resolve())
    if not (Path(model_path) / "meta.json").is_file():
        raise ValueError(f"{model}: not a model directory (no meta.json)")
    if task == "audience":
        inputs = [_campaign(c) for c in inputs]
        if len({c["campaign_id"] for c in inputs}) < len(inputs):
            raise ValueError("campaign_id values must be distinct")
    else:
        inputs = [str(u) for u in inputs]
    starts = range(0, len(inputs), partition_size)
    parts = [f"part-{n:05d}.parquet" for n in range(len(starts))]
    start_time = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_directory(path)
    try:
        jobs = [
            (model_path, inputs[s : s + partition_size], task, k, str(tmp / name), options)
            for s, name in zip(starts, parts)
        ]
        unit = "campaigns" if task == "audience" else "shoppers"
        progress = bar(desc=f"batch {task}", enabled=verbose, total=len(inputs), unit=unit)
        with progress:
            if client is None:
                rows = []
                for job in jobs:
                    rows.append(score_partition(*job))
                    progress.update(len(job[1]))
            else:
                rows = _run_on(client, jobs, retries, progress)
        manifest = {
            "task": task,
            "model": model_path,
            "k": k,
            "options": options,
            "n_inputs": len(inputs),
            "n_rows": int(sum(rows)),
            "parts": parts,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _sweep(tmp, [*parts, MANIFEST])
        _publish(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BatchResult(
        path, len(inputs), int(sum(rows)), len(parts), time.perf_counter() - start_time
    )


def _campaign(record: dict) -> dict:
    """A campaign record with its missing fields dropped (NaN from a table), checked."""
    kept = {k: v for k, v in dict(record).items() if not (v is None or v != v)}
    if "campaign_id" not in kept:
        raise ValueError(f"a campaign needs a campaign_id: {record!r}")
    given = [f for f in ("items", "category", "brand") if f in kept]
    if len(given) != 1:
        raise ValueError(
            f"campaign {kept['campaign_id']!r} must give exactly one of items, category, brand"
        )
    return kept


def _run_on(client: Client, jobs: list[tuple], retries: int, progress) -> list[int]:
    """Run the partitions as Dask tasks; the row counts in partition order."""
    from distributed import as_completed

    futures = [
        client.submit(score_partition, *job, retries=retries, key=f"score-part-{uuid.uuid4()}")
        for job in jobs
    ]
    size = {f.key: len(job[1]) for f, job in zip(futures, jobs)}
    try:
        for future in as_completed(futures):
            future.result()  # raises the task's error (after its retries)
            progress.update(size[future.key])
        return [f.result() for f in futures]
    except BaseException:
        client.cancel(futures)
        raise
