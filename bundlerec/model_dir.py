"""The saved form of a :class:`~bundlerec.recommender.Recommender`: a model directory.

A model directory holds ``meta.json`` (format name and version, configuration, encoders,
catalogue), ``arrays.npz`` (weights and training history, via :func:`corenn.save`, no pickle)
and ``network.bif`` (the co-purchase network). The pairwise network's arrays sit under the
``pairwise`` prefix of ``arrays.npz``; a directory without them (saved before it existed) loads
with ``pairwise = None``, and its bundles are scored as then; it is also the fusion's third
component, whose weight is missing (0) from the fusion weights of models saved before it was one,
so they score as then. The fusion's EASE component (:class:`~bundlerec.models.baselines.EASE`,
``keep`` entries of ``B`` per row as CSR arrays) sits under the ``ease`` prefix; a directory
without it (saved before it, or fitted with ``ease=None``) loads with ``ease = None`` and no
weight for it. The co-purchase network's family counts sit under ``network.counts``
(absent before the feedback loop kept them). ``meta.json`` holds ``home_fusion``, the weights
of a basket-completion model's fusion for a shopper with an empty cart and ``repeats``
(:attr:`Recommender.history_repeats`, absent before it existed: None) (null for next-item
models; absent before it existed, which loads as null), and records ``privacy.key_check`` (the
check of the pseudonym key when the shopper ids are pseudonyms, :mod:`bundlerec.privacy`; never
the key) and ``store_seq`` (the last event-store sequence number folded in,
:mod:`bundlerec.store`). :func:`save` writes it to a
temporary sibling and swaps it in, so a failed save leaves the previous model intact; it never
replaces a path that is not a bundlerec model directory (a user's folder or file), and
:func:`check_destination` tells before any work is done whether a path can take a model.
:func:`load` executes no code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import corenn
import pgm
from bundlerec.catalogue import Catalogue
from bundlerec.files import temporary_directory, writable_place
from bundlerec.models.baselines import EASE
from bundlerec.models.copurchase import CoPurchaseNetwork
from bundlerec.models.fusion import Fusion
from bundlerec.models.pairwise import PairwiseNetwork
from bundlerec.models.sequence import SequenceModel
from bundlerec.prep import Encoder, Interactions

if TYPE_CHECKING:
    from bundlerec.recommender import Recommender

__all__ = [
    "FORMAT",
    "VERSION",
    "ModelDirError",
    "check_destination",
    "is_model_dir",
    "load",
    "save",
]

FORMAT = "bundlerec-model"
VERSION = 1


class ModelDirError(ValueError):
    """A model directory is missing, of another format or version, or corrupt, or a destination
    cannot take a model (it is a user's file or folder, or not writable); the message names the
    path."""


def is_model_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory whose ``meta.json`` names the bundlerec model format."""
    meta = Path(path) / "meta.json"
    try:
        return json.loads(meta.read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_destination(directory: str | os.PathLike) -> Path:
    """Check that a model can be written at ``directory``; return its absolute path.

    The path may be absent (it is created), an empty directory, or an existing model directory
    (replaced atomically on save). Anything else is refused, so a save never deletes a user's
    data: a file, a directory with other content, the current directory or one of its parents.
    The nearest existing parent must be writable (a temporary directory is made and removed).

    Raises
    ------
    ModelDirError
        Naming the path and what is wrong, before any training is done.
    """
    given = directory
    path = Path(directory).expanduser().absolute().resolve()
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise ModelDirError(
            f"{given}: refusing to write a model over the current directory or one of its "
            "parents; name a new directory"
        )
    if path.exists():
        if not path.is_dir():
            raise ModelDirError(
                f"{given} exists and is a file, not a bundlerec model directory; refusing to "
                "replace it (choose another path or remove it)"
            )
        if any(path.iterdir()) and not is_model_dir(path):
            raise ModelDirError(
                f"{given} exists and is not a bundlerec model directory (no meta.json of "
                f"format {FORMAT!r}); refusing to replace it (choose another path or remove it)"
            )
    try:
        writable_place(path)
    except OSError as err:
        raise ModelDirError(
            f"{given}: cannot write there ({err.strerror} in {err.filename})"
        ) from err
    return path


def _state(model: Recommender) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arrays, meta) of a fitted model: what ``arrays.npz`` and ``meta.json`` hold."""
    seq_arrays, seq_config = model.sequence.get_state()
    h = model.history
    arrays = {
        "sequence": seq_arrays,
        "history": {
            "user": h.user,
            "item": h.item,
            "basket": h.basket,
            "timestamp": h.timestamp,
            "event": h.event,
        },
        "catalogue": {
            "price": model.catalogue.price,
            **{f"feature.{k}": v for k, v in model.catalogue.features.items()},
        },
        "user_features": model.user_features,
        "network": {"items": model.network.items, "prior": model.network.prior},
    }
    if model.network.counts is not None:
        arrays["network"]["counts"] = model.network.counts
    if model.pairwise is not None:
        arrays["pairwise"] = model.pairwise.get_state()
    if model.ease is not None:
        arrays["ease"] = model.ease.get_state()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "task": model.task,
        "config": {
            "sequence": model.sequence_config,
            "network": model.network_config,
            "pairwise": model.pairwise_config,
            "ease": model.ease_config,
            "bundle": model.bundle_config,
            "window": model.window,
            "valid_share": model.valid_share,
            "seed": model.seed,
        },
        "users": model.users.to_json(),
        "items": model.items.to_json(),
        "n_users": h.n_users,
        "n_items": h.n_items,
        "item_state": model.item_state,
        "user_state": model.user_state,
        "category": [str(c) for c in model.catalogue.category],
        "sequence": seq_config,
        "network": {
            "attributes": model.network.attributes,
            "n_rows": model.network.n_rows,
            "config": model.network_config,
        },
        "fusion": {"weights": model.fusion.weights, "bias": model.fusion.bias},
        "home_fusion": None
        if model.home_fusion is None
        else {
            "weights": model.home_fusion.weights,
            "bias": model.home_fusion.bias,
            "repeats": model.history_repeats,
        },
        "privacy": {"key_check": model.key_check},
        "store_seq": model.store_seq,
    }
    return arrays, meta


def save(model: Recommender, directory: str | os.PathLike) -> Path:
    """Write ``model`` to ``directory`` atomically (see the module docstring); return the path.

    Raises
    ------
    ModelDirError
        When ``directory`` is not a place a model may be written (:func:`check_destination`).
    """
    path = check_destination(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, meta = _state(model)
    tmp = temporary_directory(path)
    try:
        corenn.save(arrays, tmp / "arrays.npz")
        pgm.write_bif(model.network.model, tmp / "network.bif")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "model")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _read(directory: Path) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(meta, arrays, network) of a model directory, checked for format and version."""
    meta_path = directory / "meta.json"
    if not meta_path.is_file():
        raise ModelDirError(f"{directory} is not a bundlerec model directory (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelDirError(f"{meta_path} is corrupt: {err}") from err
    if not isinstance(meta, dict):
        raise ModelDirError(f"{meta_path} is corrupt: not a JSON object")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ModelDirError(
            f"{directory}: format {meta.get('format')!r} version {meta.get('version')!r}, "
            f"expected {FORMAT!r} version {VERSION}"
        )
    try:
        arrays = corenn.load(directory / "arrays.npz")
        network = pgm.read_bif(directory / "network.bif")
    except (ValueError, OSError) as err:
        raise ModelDirError(f"{directory}: {err}") from err
    return meta, arrays, network


def load(cls: type[Recommender], directory: str | os.PathLike) -> Recommender:
    """Read a model directory written by :func:`save` into a new ``cls`` (no code is executed).

    Raises
    ------
    ModelDirError
        When the directory is missing, of another format or version, or its files are corrupt
        or inconsistent with each other.
    """
    directory = Path(directory)
    meta, arrays, network = _read(directory)
    try:
        cfg = meta["config"]
        model = cls(
            task=meta["task"],
            sequence=cfg["sequence"],
            network=cfg["network"],
            pairwise=cfg.get("pairwise"),
            ease=cfg.get("ease"),  # absent before EASE was a component: none
            # models saved before the category back-off score bundles without it
            bundle={"categories": 0.0, **cfg["bundle"]} if cfg.get("bundle") else None,
            window=cfg["window"],
            valid_share=cfg["valid_share"],
            seed=cfg["seed"],
            verbose=False,
        )
        model.users = Encoder.from_json(meta["users"])
        model.items = Encoder.from_json(meta["items"])
        model.item_state, model.user_state = meta["item_state"], meta["user_state"]
        cat = arrays["catalogue"]
        model.catalogue = Catalogue(
            {k[len("feature.") :]: v for k, v in cat.items() if k.startswith("feature.")},
            np.asarray(meta["category"], dtype=object),
            cat["price"],
        )
        model.user_features = dict(arrays.get("user_features", {}))
        h = arrays["history"]
        model.history = Interactions(
            h["user"],
            h["item"],
            h["basket"],
            h["timestamp"],
            h["event"],
            meta["n_users"],
            meta["n_items"],
        )
        model.sequence = SequenceModel.from_state(arrays["sequence"], meta["sequence"])
        model.network = CoPurchaseNetwork.from_state(
            network, arrays["network"], meta["network"], meta["n_items"], model.user_features
        )
        model.fusion = Fusion({"sequence": model.sequence, "copurchase": model.network})
        model.fusion.weights = dict(meta["fusion"]["weights"])
        model.fusion.bias = float(meta["fusion"]["bias"])
        if "pairwise" in arrays:  # absent in models saved before it: bundles fall back
            model.pairwise = PairwiseNetwork.from_state(arrays["pairwise"])
            model.fusion.components["pairwise"] = model.pairwise
        if "ease" in arrays:
            model.ease = EASE.from_state(arrays["ease"])
        home = meta.get("home_fusion")  # absent in models saved before it: no home fusion
        if home is not None:
            model.home_fusion = Fusion(dict(model.fusion.components))
            model.home_fusion.weights = dict(home["weights"])
            model.home_fusion.bias = float(home["bias"])
            model.history_repeats = home.get("repeats")  # absent before it: None, as then
        # Absent in models saved before the service: raw shopper ids, nothing folded from a store.
        model.key_check = meta.get("privacy", {}).get("key_check")
        model.store_seq = int(meta.get("store_seq", 0))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelDirError(f"{directory}: model files are inconsistent: {err}") from err
    return model
