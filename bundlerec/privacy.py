"""Shoppers' privacy: keyed pseudonyms of shopper ids (HMAC-SHA256).

A shop that deploys bundlerec keeps a secret key outside the model (a file, or the environment
variable :data:`KEY_ENV`). Every shopper id is replaced at ingestion by its pseudonym

``pseudonym(u) = hex(HMAC-SHA256(key, utf8(u)))``

(64 hexadecimal characters), so a model directory and an event store hold pseudonyms only:
without the key nobody can tell which pseudonym belongs to a given shopper, or test a guess.
The key is never written into a model; a model records only :attr:`Pseudonymizer.check`, a
keyed digest of a fixed text that tells whether a key is the one the model was built with and
reveals nothing about the key or any id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pandas as pd

__all__ = ["KEY_ENV", "MIN_KEY_BYTES", "Pseudonymizer", "load_key"]

KEY_ENV = "BUNDLEREC_PSEUDONYM_KEY"
"""The environment variable that may hold the key (its text, UTF-8)."""

MIN_KEY_BYTES = 16
"""Shortest key accepted (128 bits)."""

_CHECK_TEXT = b"bundlerec pseudonym key check"


class Pseudonymizer:
    """Keyed pseudonyms of shopper ids.

    Parameters
    ----------
    key : bytes
        The secret, at least :data:`MIN_KEY_BYTES` bytes.

    Raises
    ------
    ValueError
        If the key is shorter than :data:`MIN_KEY_BYTES` bytes (its length is named, never its
        content).
    """

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes):
            raise TypeError(f"the pseudonym key must be bytes, got {type(key).__name__}")
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the pseudonym key is {len(key)} bytes long; use at least {MIN_KEY_BYTES} "
                "random bytes (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        self._key = key

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymizer(check={self.check!r})"

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Pseudonymizer:
        """The key in a file (its bytes, one trailing newline ignored)."""
        data = Path(path).read_bytes()
        return cls(data[:-1] if data.endswith(b"\n") else data)

    @property
    def check(self) -> str:
        """16 hex digits identifying the key (an HMAC of a fixed text; the key stays secret)."""
        return hmac.new(self._key, _CHECK_TEXT, hashlib.sha256).hexdigest()[:16]

    def pseudonym(self, user_id: object) -> str:
        """The pseudonym of one shopper id (compared as text: ``7`` and ``"7"`` agree)."""
        return hmac.new(self._key, str(user_id).encode("utf-8"), hashlib.sha256).hexdigest()

    def pseudonymise(self, frame: pd.DataFrame, column: str = "user_id") -> pd.DataFrame:
        """A copy of ``frame`` with ``column`` replaced by pseudonyms (each distinct id hashed
        once); a frame without the column comes back unchanged."""
        if column not in frame.columns:
            return frame
        ids = frame[column]
        distinct = pd.unique(ids.dropna())
        mapping = {u: self.pseudonym(u) for u in distinct}
        return frame.assign(**{column: ids.map(mapping)})


def load_key(
    key_file: str | os.PathLike | None = None, env: str = KEY_ENV
) -> Pseudonymizer | None:
    """The pseudonymizer of ``key_file`` if given, else of the variable ``env``, else None.

    Raises
    ------
    OSError
        If ``key_file`` cannot be read.
    ValueError
        If the key is too short.
    """
    if key_file is not None:
        return Pseudonymizer.from_file(key_file)
    text = os.environ.get(env)
    return None if not text else Pseudonymizer(text.encode("utf-8"))
