"""Files and directories written whole or not at all: a temporary sibling, then a rename.

``tempfile`` makes its files 0o600 and its directories 0o700; the outputs of bundlerec (model
directories, CSV, plots, batch outputs) are ordinary files that a service running as another user
must be able to read, so they get the permissions of the file they replace, or 0o644 (0o755 for
directories).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "FILE_MODE",
    "DIRECTORY_MODE",
    "write_atomically",
    "temporary_directory",
    "writable_place",
]

FILE_MODE = 0o644
DIRECTORY_MODE = 0o755


def write_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp)`` on a temporary sibling, then rename it into place.

    Parameters
    ----------
    path : path-like
        The file to write (its parent is created when missing).
    write : callable
        Writes the whole content to the path it is given.

    Returns
    -------
    Path
        ``path``. On any error (or Ctrl-C) the temporary file is removed and ``path`` is as it
        was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = target.stat().st_mode & 0o777 if target.exists() else FILE_MODE
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def temporary_directory(beside: str | os.PathLike) -> Path:
    """A new empty directory next to ``beside`` (to be renamed onto it), mode 0o755."""
    beside = Path(beside)
    tmp = Path(tempfile.mkdtemp(prefix=f".{beside.name}.tmp.", dir=beside.parent))
    tmp.chmod(DIRECTORY_MODE)
    return tmp


def writable_place(path: str | os.PathLike) -> Path:
    """The nearest existing directory above ``path``, checked by making and removing a directory
    in it (permission bits alone say nothing for root or a read-only file system).

    Raises
    ------
    OSError
        What the operating system said, naming that directory.
    """
    path = Path(path).expanduser().absolute()
    parent = next((p for p in path.parents if p.exists()), Path(path.anchor))
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bundlerec-probe.", dir=parent))
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(parent)) from err
    return parent
