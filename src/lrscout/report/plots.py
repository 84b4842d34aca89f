"""Matplotlib figures for results (Agg backend: works headless)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..results import FindResult

_MARKERS = {"steep": "v", "valley": "o", "minimum": "s", "slide": "D"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def new_axes(figsize: tuple[float, float] = (7.0, 4.5)) -> Axes:
    plt = _pyplot()
    ax: Axes = plt.subplots(figsize=figsize)[1]
    return ax


def plot_find(result: FindResult, ax: Axes | None = None) -> Axes:
    import numpy as np

    ax = ax if ax is not None else new_axes()
    lrs = np.asarray(result.history_lr)
    ax.plot(lrs, result.history_loss, color="0.7", lw=1, label="loss (raw)")
    if result.smoothed:
        ax.plot(lrs, result.smoothed, color="C0", lw=2, label="loss (smoothed, lag-free)")
    lo, hi = result.interval
    ax.axvspan(lo, hi, color="C2", alpha=0.15, label=f"interval [{lo:.2g}, {hi:.2g}]")
    ax.axvline(result.lr, color="C2", lw=2, label=f"lrscout: {result.lr:.3g}")
    curve = np.asarray(result.smoothed or result.history_loss)
    for i, (name, lr) in enumerate(sorted(result.suggestions.items())):
        y = float(np.interp(np.log10(lr), np.log10(lrs), curve))
        ax.plot([lr], [y], _MARKERS.get(name, "x"), color=f"C{i + 3}", ms=8, label=f"{name}: {lr:.3g}")
    if result.onset is not None:
        ax.axvline(result.onset, color="C3", ls="--", lw=1, label=f"instability onset {result.onset:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    raw = np.asarray(result.history_loss)
    if raw.size:
        low = float(min(raw.min(), curve.min()))
        start = float(np.median(raw[: max(1, raw.size // 10)]))
        gap = max(start - low, 0.1 * abs(start), 1e-6)
        ax.set_ylim(low - 0.15 * gap, start + 0.8 * gap)  # the blow-up goes off the top
    ax.set_title("LR range test")
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write a PNG atomically and close the figure."""
    from .._io import atomic_write

    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))
    _pyplot().close(fig)
