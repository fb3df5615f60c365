"""Progress bars and messages of long steps, never on a user's stdout.

With ``enabled`` (a model's ``verbose=True``, the CLI without ``--quiet``) bars and messages go
to stderr through tqdm; otherwise bars are off and messages go to the ``bundlerec`` logger at
INFO level, which is silent unless the user's program configures logging.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

__all__ = ["bar", "logger", "say"]

logger = logging.getLogger("bundlerec")


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    enabled: bool,
    total: int | None = None,
    unit: str = "it",
) -> tqdm:
    """A tqdm bar on stderr, or a silent pass-through iterator when not ``enabled``."""
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        leave=False,
    )


def say(message: str, enabled: bool) -> None:
    """One line on stderr (kept clear of open bars) if ``enabled``; else an INFO log record."""
    if enabled:
        tqdm.write(message, file=sys.stderr)
    else:
        logger.info(message)
