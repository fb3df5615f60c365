"""Training data of the sequence model: merged steps, windows, batches, validation cases and the
negative sampler (the data side of :mod:`bundlerec.models.sequence`, whose docstring describes
steps, windows and event dropout).

Letters: S merged steps, W training windows, B sequences in a batch, T time steps, n cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bundlerec.models.towers import EVENT_START, EVENT_UNKNOWN

EVENT_DROPOUT = 0.5  # probability that a training step's event type is fed as "unknown"


# -- sequences ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Steps:
    """Merged steps grouped by user in time order; every array (S,) int64 (item codes)."""

    user: np.ndarray
    item: np.ndarray
    event: np.ndarray
    time: np.ndarray

    def take(self, index: np.ndarray) -> Steps:
        """The steps ``index`` (an (S',) index or bool mask)."""
        return Steps(self.user[index], self.item[index], self.event[index], self.time[index])

    def bounds(self, n_users: int) -> tuple[np.ndarray, np.ndarray]:
        """(U,) index of each user's first step and one past the last."""
        stop = np.cumsum(np.bincount(self.user, minlength=n_users))
        return stop - np.bincount(self.user, minlength=n_users), stop


@dataclass(frozen=True)
class Inputs:
    """Sequences as the user tower reads them: ``[start, step rows...]`` right-padded.

    items, events: (B, T) int64 item rows (0 = start or padding) and event rows; lengths: (B,)
    valid steps, the start step included; users: (B,) user rows (0 = unknown).
    """

    items: np.ndarray
    events: np.ndarray
    lengths: np.ndarray
    users: np.ndarray

    def __getitem__(self, rows: slice) -> Inputs:
        """The sequences ``rows``, cropped to their longest length."""
        width = int(self.lengths[rows].max(initial=1))
        items, events = self.items[rows, :width], self.events[rows, :width]
        return Inputs(items, events, self.lengths[rows], self.users[rows])


def merge(user: np.ndarray, item: np.ndarray, event: np.ndarray, time: np.ndarray) -> Steps:
    """Merge consecutive events of one user on one item; a step keeps its strongest event and
    the time of its first event."""
    new = np.r_[True, (user[1:] != user[:-1]) | (item[1:] != item[:-1])][: len(user)]
    first = np.flatnonzero(new)
    strongest = np.maximum.reduceat(event.astype(np.int64), first) if first.size else first
    return Steps(*(a[first].astype(np.int64) for a in (user, item)), strongest, time[first])


def shuffle_ties(steps: Steps, rng: np.random.Generator) -> Steps:
    """The steps with every run of one user's equal-time steps in a random order.

    Steps at one time (the items of one basket) have no order; a fresh order each epoch keeps
    the model from learning the arbitrary order of a file.
    """
    return steps.take(np.lexsort((rng.random(steps.item.size), steps.time, steps.user)))


def padded(values: np.ndarray, start: np.ndarray, stop: np.ndarray, width: int) -> np.ndarray:
    """(n, width) int64: the last ``width`` of ``values[start[i]:stop[i]]``, right-padded -1."""
    count = np.minimum(stop - start, width)
    t = np.arange(width)
    valid = t < count[:, None]
    index = np.where(valid, (stop - count)[:, None] + t, 0)
    return np.where(valid, values[index], -1) if values.size else np.full(valid.shape, -1)


def context_inputs(context: np.ndarray, users: np.ndarray) -> Inputs:
    """Tower inputs of right-padded item-code contexts (n, L) whose events are unknown."""
    n = context.shape[0]
    items = np.concatenate([np.zeros((n, 1), dtype=np.int64), context + 1], axis=1)
    events = np.full(items.shape, EVENT_UNKNOWN, dtype=np.int64)
    events[:, 0] = EVENT_START
    return Inputs(items, events, 1 + (context >= 0).sum(axis=1), users + 1)


def windows(steps: Steps, n_users: int, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(W,) start and stop step of every training window, cut from each sequence's end."""
    first, stop = steps.bounds(n_users)
    count = -(-(stop - first) // max_len)
    user = np.repeat(np.arange(n_users), count)
    rank = np.arange(user.size) - np.repeat(np.cumsum(count) - count, count)
    end = stop[user] - rank * max_len
    return np.maximum(first[user], end - max_len), end


def window_batch(
    steps: Steps, start: np.ndarray, stop: np.ndarray, rng: np.random.Generator
) -> tuple[Inputs, np.ndarray]:
    """Tower inputs (event dropout applied) and (B, T) target codes (-1 padded) of windows."""
    width = int((stop - start).max())
    targets = padded(steps.item, start, stop, width)
    seen = padded(steps.event, start, stop, width)[:, :-1]
    dropped = (seen < 0) | (rng.random(seen.shape) < EVENT_DROPOUT)
    events = np.concatenate(
        [np.full((len(start), 1), EVENT_START), np.where(dropped, EVENT_UNKNOWN, seen)], axis=1
    )
    items = np.concatenate([np.zeros((len(start), 1), dtype=np.int64), targets[:, :-1] + 1], 1)
    return Inputs(items, events, stop - start, steps.user[start] + 1), targets


def batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Window indices in batches of ``size`` with similar lengths, in random order."""
    order = np.lexsort((rng.random(lengths.size), lengths))
    chunks = [order[i : i + size] for i in range(0, order.size, size)]
    return [chunks[i] for i in rng.permutation(len(chunks))]


@dataclass(frozen=True)
class Validation:
    """Validation cases: tower inputs, context item codes (n, L) and one target code each."""

    inputs: Inputs
    context: np.ndarray
    target: np.ndarray


def validation(steps: Steps, users, stop, target, n_users: int, max_len: int) -> Validation:
    """Cases whose context is each user's steps before ``stop`` (the last ``max_len - 1``)."""
    first, _ = steps.bounds(n_users)
    context = padded(steps.item, first[users], stop, max_len - 1)
    return Validation(context_inputs(context, users), context, target)


def hold_out_last(steps: Steps, n_users: int, max_len: int) -> tuple[Steps, Validation]:
    """Each user's last step (users with >= 2 steps) as a validation case, removed from steps."""
    first, stop = steps.bounds(n_users)
    users = np.flatnonzero(stop - first >= 2)
    val = validation(steps, users, stop[users] - 1, steps.item[stop[users] - 1], n_users, max_len)
    keep = np.ones(steps.item.size, dtype=bool)
    keep[stop[users] - 1] = False
    return steps.take(keep), val


# -- sampling -------------------------------------------------------------------------------------
class Sampler:
    """Negative item rows drawn from ``q``: uniform, or proportional to step counts ** 0.75.

    ``log_q`` is indexed by item row (row 0, "none", holds 0).
    """

    def __init__(self, kind: str, items: np.ndarray, n_items: int, dtype: np.dtype) -> None:
        if kind == "uniform":
            weight = np.ones(n_items)
        else:
            weight = np.bincount(items, minlength=n_items) ** 0.75
        self.cdf = np.cumsum(weight)
        with np.errstate(divide="ignore"):
            self.log_q = np.log(np.r_[self.cdf[-1], weight] / self.cdf[-1]).astype(dtype)

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Item rows of ``shape``, drawn independently from ``q``."""
        u = rng.random(shape) * self.cdf[-1]
        return 1 + np.minimum(np.searchsorted(self.cdf, u, side="right"), self.cdf.size - 1)
