"""Write results to a run directory: JSON (atomic), PNG plots and HTML pages."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from .._io import atomic_write, atomic_write_json, atomic_write_text
from .html import render_compare, render_select
from .plots import plot_find, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..results import FindResult
    from ..selection.results import CompareResult, SelectResult


def save_find(result: FindResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/find.json`` and ``out_dir/find.png``; returns both paths."""
    out = Path(out_dir)
    json_path = atomic_write_json(out / "find.json", result.to_json())
    ax = plot_find(result)
    png_path = out / "find.png"
    save_figure(cast("Figure", ax.figure), png_path)
    return json_path, png_path


#: The chosen run's weights in a selection's directory.
SELECT_MODEL = "model.pt"
#: Version of the weights files a selection or fine-tuning writes (lrscout's training
#: checkpoint layout: :func:`lrscout.training.run.load_checkpoint` reads them).
CHECKPOINT_VERSION = 1


def save_select(result: SelectResult, out_dir: str | Path) -> tuple[Path, ...]:
    """``out_dir/select.json``, ``out_dir/report.html`` and, when the result holds the chosen
    run's network, ``out_dir/model.pt`` (its weights under ``"model"``, with the LR, the
    schedule and the validation score; an lrscout checkpoint that ``--weights`` and
    :func:`lrscout.training.run.load_checkpoint` read); returns the paths written."""
    out = Path(out_dir)
    paths = [atomic_write_json(out / "select.json", result.to_json()),
             atomic_write_text(out / "report.html", render_select(result))]
    if result.model is not None:
        import torch

        state = {"version": CHECKPOINT_VERSION, "epoch": result.schedule.epochs, "lr": result.lr,
                 "val_acc": result.score, "val_loss": result.val_loss, "model": result.model.state_dict(),
                 "task": result.config.get("task"), "schedule": result.schedule.to_json()}
        paths.append(atomic_write(out / SELECT_MODEL, lambda p: torch.save(state, p)))
    return tuple(paths)


def save_compare(result: CompareResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/compare.json`` and ``out_dir/report.html``; returns both paths."""
    out = Path(out_dir)
    json_path = atomic_write_json(out / "compare.json", result.to_json())
    html_path = atomic_write_text(out / "report.html", render_compare(result))
    return json_path, html_path
