"""Text features of items: hashed word and bigram n-grams, averaged into a vector.

An item's text (title and description) is lower-cased and cut into words (runs of letters and
digits); its n-grams are the distinct words and the distinct pairs of adjacent words. Each
n-gram is hashed (CRC-32 of its UTF-8 bytes, a hash that is the same in every process) into one
of ``n_buckets`` rows of a table trained with the rest of the item tower
(:class:`~bundlerec.models.towers.ItemTower`); the item's text vector is the mean of its
n-grams' rows (:func:`corenn.F.embedding_bag`), zero for an item without text. Items that share
words share rows, so an item no shopper has bought yet gets a vector from the words it shares
with known items.

Letters: N texts, M n-grams of all texts together.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

__all__ = ["TextBags", "ngrams", "text_bags"]

_WORD = re.compile(r"[^\W_]+")


def ngrams(text: str) -> list[str]:
    """The distinct words and adjacent word pairs of ``text``, in order of first appearance.

    >>> ngrams("Organic pasta, organic!")
    ['organic', 'pasta', 'organic pasta', 'pasta organic']
    """
    words = _WORD.findall(str(text).lower())
    pairs = [f"{a} {b}" for a, b in zip(words, words[1:])]
    return list(dict.fromkeys([*words, *pairs]))


class TextBags:
    """Hashed n-gram bags of a list of texts, CSR-style.

    Attributes
    ----------
    ids : ndarray (M,) int64
        Bucket of each n-gram, text after text.
    offsets : ndarray (N + 1,) int64
        Text ``t``'s buckets are ``ids[offsets[t]:offsets[t + 1]]``.
    """

    def __init__(self, ids: np.ndarray, offsets: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def rows(self, which: np.ndarray) -> TextBags:
        """The bags of texts ``which`` (any 1-D int array, repeats allowed), in that order."""
        which = np.asarray(which, dtype=np.int64)
        start, stop = self.offsets[which], self.offsets[which + 1]
        counts = stop - start
        offsets = np.concatenate([[0], np.cumsum(counts)])
        pos = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts) + np.repeat(start, counts)
        return TextBags(self.ids[pos], offsets)

    def concat(self, other: TextBags) -> TextBags:
        """These bags followed by ``other``'s."""
        return TextBags(
            np.concatenate([self.ids, other.ids]),
            np.concatenate([self.offsets, other.offsets[1:] + self.offsets[-1]]),
        )

    def replace(self, which: np.ndarray, other: TextBags) -> TextBags:
        """These bags with bag ``which[r]`` replaced by ``other``'s bag ``r``."""
        pick = np.arange(len(self), dtype=np.int64)
        pick[np.asarray(which, dtype=np.int64)] = len(self) + np.arange(len(other))
        return self.concat(other).rows(pick)


def text_bags(texts: Sequence[str], n_buckets: int) -> TextBags:
    """Hash every text's n-grams (:func:`ngrams`) into ``[0, n_buckets)``; duplicates of a
    bucket within one text are kept once."""
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    bags = [
        list(dict.fromkeys(zlib.crc32(g.encode("utf-8")) % n_buckets for g in ngrams(t)))
        for t in texts
    ]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in bags])]).astype(np.int64)
    ids = np.fromiter((i for b in bags for i in b), dtype=np.int64, count=int(offsets[-1]))
    return TextBags(ids, offsets)
