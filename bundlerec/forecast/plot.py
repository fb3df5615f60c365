"""Plot history, P50 and the P10-P90 band of chosen items to a PNG (matplotlib, optional)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bundlerec.files import write_atomically
from bundlerec.forecast.grid import Grid
from bundlerec.forecast.model import Forecast

__all__ = ["plot_forecast"]


def plot_forecast(
    grid: Grid,
    forecast: Forecast,
    items,
    path: str | os.PathLike,
    history: int | None = None,
) -> Path:
    """Write one panel per item: the last ``history`` periods, the P50 and the P10-P90 band.

    Parameters
    ----------
    grid : Grid
        The history the forecast was made from.
    forecast : Forecast
        With levels 0.1, 0.5 and 0.9.
    items : sequence of str
        Item ids to draw (1 to 12).
    path : path
        PNG to write (via a temporary file, then renamed).
    history : int, optional
        Periods of history shown; default 4 horizons.

    Raises
    ------
    ImportError
        Without matplotlib (``pip install 'bundlerec[plot]'``).
    KeyError
        An item without a forecast, or a level missing from the forecast.
    ValueError
        No items, or more than 12.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'bundlerec[plot]'") from err
    items = list(items)
    if not 1 <= len(items) <= 12:
        raise ValueError(f"plot 1 to 12 items; got {len(items)}")
    index = {item: k for k, item in enumerate(forecast.items)}
    for item in items:
        if item not in index:
            raise KeyError(f"item {item!r} has no forecast")
    low, mid, high = forecast.level(0.1), forecast.level(0.5), forecast.level(0.9)
    shown = history or 4 * len(forecast.periods)
    past = grid.periods[-shown:].to_timestamp()
    future = forecast.periods.to_timestamp()
    fig, axes = plt.subplots(len(items), 1, figsize=(9, 2.4 * len(items)), squeeze=False)
    for ax, item in zip(axes[:, 0], items):
        k = index[item]
        ax.plot(past, grid.values[k, -shown:], color="0.3", lw=1, label="history")
        ax.fill_between(future, low[k], high[k], color="tab:blue", alpha=0.25, label="P10-P90")
        ax.plot(future, mid[k], color="tab:blue", lw=1.5, label="P50")
        ax.set_title(str(item), fontsize=10, loc="left")
        locator = matplotlib.dates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(matplotlib.dates.ConciseDateFormatter(locator))
        ax.set_ylim(
            bottom=0, top=max(1.0, float(np.max(high[k])), float(grid.values[k, -shown:].max()))
        )
    axes[0, 0].legend(loc="upper left", fontsize=8, ncol=3)
    fig.tight_layout()
    try:
        return write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)
