"""Save and load state dicts as ``.npz`` files: no pickle, atomic writes, clear errors.

A file holds one ``.npy`` entry per array, named by its dotted path in the saved object
(``"model.encoder.weight"``, ``"optim.state.0.exp_avg"``), and one entry
``__corenn_manifest__``: UTF-8 JSON (as a uint8 array) that records the nesting of mappings and
lists, the scalars, and where each array sits, so :func:`load` rebuilds exactly what was saved,
keys that contain dots included. Arrays are written and read with ``allow_pickle=False``: an
object array is refused on both sides. A plain ``.npz`` without a manifest (e.g. from
``numpy.savez``) loads as a flat ``{name: array}`` dict.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from corenn.tensor import Tensor

MANIFEST = "__corenn_manifest__"
FORMAT = "corenn-state-1"


class ModelFileError(ValueError):
    """A model file is corrupt, truncated, or holds what we refuse to load; names the path."""


def save(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a state dict to ``path`` (used as given: no suffix is added), atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed, and then
    replaces ``path`` in one ``os.replace``: a crash or an error leaves either the old file or
    the new one, never a half-written file.

    Parameters
    ----------
    obj : mapping of str
        Values are arrays (numpy, cupy or Tensors: stored as numpy arrays of their dtype and
        shape), nested mappings with str keys, lists or tuples (loaded as lists), and JSON
        scalars (bool, int, float, str, None; numpy scalars become Python scalars).
    path : str or PathLike

    Raises
    ------
    TypeError
        If a value has another type, a key is not a str, or an array has dtype object; the
        message names the value's dotted path.
    ValueError
        If two arrays would get the same entry name (``{"a.b": x, "a": {"b": y}}``).
    """
    if not isinstance(obj, Mapping):
        raise TypeError(f"save() takes a mapping (a state dict), got {type(obj).__name__}")
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, (), arrays)
    manifest = json.dumps({"format": FORMAT, "tree": tree}).encode("utf-8")
    arrays[MANIFEST] = np.frombuffer(manifest, dtype=np.uint8)
    _write_atomically(os.fspath(path), arrays)


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :func:`save` (or a plain ``.npz`` of arrays).

    Returns
    -------
    dict
        The saved object, with numpy arrays (dtype and shape as saved).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ModelFileError
        If the file is not a readable ``.npz``, is truncated or corrupt, holds an object array
        (pickle is never used), or its manifest does not match its arrays; the message names the
        path and the entry.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    entries = _read_entries(path)
    if MANIFEST not in entries:
        return entries
    try:
        header = json.loads(entries.pop(MANIFEST).tobytes().decode("utf-8"))
        if header.get("format") != FORMAT:
            raise ValueError(f"unknown format {header.get('format')!r}, expected {FORMAT!r}")
        used: set[str] = set()
        out = _decode(header["tree"], entries, used)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{path}: invalid manifest: {exc}") from exc
    unused = sorted(set(entries) - used)
    if unused:
        raise ModelFileError(f"{path}: arrays {unused} are not in the manifest")
    return out


# -- encoding ---------------------------------------------------------------------------------
# Tree nodes: {"dict": {key: node}}, {"list": [node]}, {"array": name}, {"value": json scalar}.


def _encode(value: Any, where: tuple[str, ...], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"keys must be str; {_name(where) or 'the top level'} has keys {bad}")
        return {"dict": {k: _encode(v, (*where, k), arrays) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v, (*where, str(i)), arrays) for i, v in enumerate(value)]}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    array = _as_numpy(value)
    if array is None:
        raise TypeError(f"cannot save {_name(where)!r}: unsupported type {type(value).__name__}")
    if array.dtype.hasobject:
        raise TypeError(f"cannot save {_name(where)!r}: object arrays are refused (no pickle)")
    name = _name(where)
    if name in arrays or name == MANIFEST:
        raise ValueError(f"two values would be saved under the same name {name!r}")
    arrays[name] = array
    return {"array": name}


def _as_numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, Tensor):
        value = value.data
    if type(value).__module__.startswith("cupy"):
        return value.get()
    return value if isinstance(value, np.ndarray) else None


def _name(where: tuple[str, ...]) -> str:
    return ".".join(where)


def _decode(node: dict[str, Any], arrays: dict[str, np.ndarray], used: set[str]) -> Any:
    (kind, body), *rest = node.items()
    if rest:
        raise ValueError(f"malformed node with keys {list(node)}")
    if kind == "dict":
        return {k: _decode(v, arrays, used) for k, v in body.items()}
    if kind == "list":
        return [_decode(v, arrays, used) for v in body]
    if kind == "array":
        if body not in arrays:
            raise ValueError(f"array {body!r} is missing from the file")
        used.add(body)
        return arrays[body]
    if kind == "value":
        return body
    raise ValueError(f"unknown node kind {kind!r}")


# -- files ------------------------------------------------------------------------------------


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, array in arrays.items():
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as entry:
                        np.lib.format.write_array(entry, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where directories can be synced
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read_entries(path: str) -> dict[str, np.ndarray]:
    name = None
    try:
        npz = np.load(path, allow_pickle=False)
        if not hasattr(npz, "files"):
            raise ValueError("a single .npy array, not an .npz archive")
        with npz:
            out = {}
            for name in npz.files:
                out[name] = npz[name]
            return out
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        where = f" (entry {name!r})" if name is not None else ""
        raise ModelFileError(f"{path}: not a readable corenn model file{where}: {exc}") from exc
