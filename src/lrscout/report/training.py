"""Figures for training runs and loss-log diagnoses (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from .._io import atomic_write_json
from ..curve.smoothing import rolling_median
from .plots import new_axes, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..training.diagnosis import Diagnosis
    from ..training.result import TrainResult

_EVENT_COLOURS = {"nan": "C3", "spike": "C1", "growth": "C4"}


def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing median over the finite values (what the eye reads through the noise)."""
    v = np.where(np.isfinite(values), values, np.nan)
    return rolling_median(v, window, trailing=True)


def _loss_limits(loss: np.ndarray) -> tuple[float, float] | None:
    """Y limits that show the curve, not the one 1e30 spike (log scale)."""
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if finite.size == 0:
        return None
    low = float(np.min(finite))
    head = float(np.median(finite[: max(3, finite.size // 20)]))
    high = min(float(np.max(finite)), 10.0 * max(head, low))
    return low / 1.5, high * 1.5


def plot_train(result: TrainResult, ax: Axes | None = None) -> Axes:
    """Training loss and LR against the optimizer step; guard events as red lines."""
    ax = ax if ax is not None else new_axes((8.0, 4.8))
    loss = np.asarray(result.fit.step_loss, dtype=np.float64)
    steps = np.arange(loss.size)
    ax.plot(steps, loss, color="0.75", lw=0.8, label="train loss (per step)")
    window = max(3, loss.size // 50)
    ax.plot(steps, _rolling_median(loss, window), color="C0", lw=2, label=f"train loss (median of {window})")
    spe = max(result.steps_per_epoch, 1)
    ends = [min(e.epoch * spe, max(loss.size - 1, 0)) for e in result.epochs]
    vals = [e.val_loss for e in result.epochs]
    if ends:
        ax.plot(ends, vals, "o-", color="C2", ms=4, lw=1, label="validation loss (epoch end)")
    limits = _loss_limits(loss)
    if limits is not None:
        ax.set_yscale("log")
        ax.set_ylim(*limits)
    for i, event in enumerate(result.events):
        colour = _EVENT_COLOURS.get(event["kind"], "C3")
        label = f"guard: {event['kind']} (lr {event['lr_before']:.2g} -> {event['lr_after']:.2g})"
        ax.axvline(event["step"], color=colour, ls="--", lw=1.2, label=label if i < 6 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    lr_ax = ax.twinx()
    lrs = np.asarray(result.fit.step_lr, dtype=np.float64)
    lr_ax.plot(steps[: lrs.size], lrs, color="C5", lw=1.2, label="learning rate")
    if lrs.size and np.all(lrs > 0):
        lr_ax.set_yscale("log")
    lr_ax.set_ylabel("learning rate", color="C5")
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = lr_ax.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, fontsize=8, loc="upper right")
    acc = result.best_val_acc
    ax.set_title(f"training: lr {result.lr:.3g} ({result.lr_source}), {result.schedule.get('kind', '?')}, "
                 f"best val acc {acc:.1%}")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_diagnosis(diagnosis: Diagnosis, ax: Axes | None = None) -> Axes:
    """The loss log with its smoothed trend and the verdict in the title."""
    ax = ax if ax is not None else new_axes()
    steps = np.asarray(diagnosis.steps, dtype=np.float64)
    loss = np.asarray(diagnosis.losses, dtype=np.float64)
    ax.plot(steps, loss, color="0.7", lw=0.8, label="loss")
    window = max(3, loss.size // 25)
    ax.plot(steps, _rolling_median(loss, window), color="C0", lw=2, label=f"median of {window}")
    limits = _loss_limits(loss)
    if limits is not None:
        ax.set_yscale("log")
        ax.set_ylim(*limits)
    start = diagnosis.evidence.get("plateau_start_step")
    if start is not None:
        ax.axvline(start, color="C1", ls="--", label="plateau starts")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{diagnosis.verdict}: LR x{diagnosis.lr_factor:g}")
    ax.legend(fontsize=8, loc="best")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def save_train(result: TrainResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/train.json`` and ``out_dir/train.png``; returns both paths."""
    out = Path(out_dir)
    json_path = atomic_write_json(out / "train.json", result.to_json())
    save_figure(cast("Figure", plot_train(result).figure), out / "train.png")
    return json_path, out / "train.png"


def save_diagnosis(diagnosis: Diagnosis, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/diagnosis.json`` and ``out_dir/diagnosis.png``; returns both paths."""
    out = Path(out_dir)
    json_path = atomic_write_json(out / "diagnosis.json", diagnosis.to_json())
    save_figure(cast("Figure", plot_diagnosis(diagnosis).figure), out / "diagnosis.png")
    return json_path, out / "diagnosis.png"
