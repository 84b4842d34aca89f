"""``lrscout diagnose LOG``: what a loss curve says about the learning rate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, cast

import typer
from rich.table import Table

from ..checks import check_writable_file
from ..report.plots import save_figure
from ..training.diagnosis import Diagnosis, diagnose
from ..training.logs import read_loss_log
from .common import JsonOpt, command, out, print_json

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_COLOURS = {"diverged": "red", "unstable": "yellow", "stalled": "blue", "plateaued": "magenta", "healthy": "green"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


def diagnosis_table(diagnosis: Diagnosis, source: str) -> Table:
    colour = _COLOURS.get(diagnosis.verdict, "white")
    table = Table(title=f"diagnosis of {source}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("verdict", f"[bold {colour}]{diagnosis.verdict}[/]")
    table.add_row("LR factor", f"[bold]x{diagnosis.lr_factor:g}[/]")
    for key, value in diagnosis.evidence.items():
        table.add_row(key, _fmt(value))
    return table


@command
def diagnose_cmd(
    log: Annotated[Path, typer.Argument(help="loss log: CSV, JSON, or a TensorBoard event file / directory")],
    loss_col: Annotated[Optional[str], typer.Option("--loss-col", help="loss column / tag (default: "
                                                    "detected: loss, train_loss, train/loss, ...)")] = None,
    step_col: Annotated[Optional[str], typer.Option("--step-col", help="step column (default: detected, "
                                                    "else the row number)")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="also write the curve and verdict as a "
                                                 "PNG")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Classify a training-loss log as diverged, unstable, stalled, plateaued or healthy."""
    if plot is not None:
        check_writable_file(plot, "plot")
    curve = read_loss_log(log, loss_col=loss_col, step_col=step_col)
    result = diagnose(curve.steps, curve.losses)
    if plot is not None:
        save_figure(cast("Figure", result.plot().figure), plot)
    if as_json:
        data = result.to_json()
        data["source"] = {"path": curve.path, "loss": curve.loss_name, "step": curve.step_name}
        print_json(data)
        return
    out.print(diagnosis_table(result, f"{curve.path} ({curve.loss_name}, {curve.losses.size} points)"))
    out.print(result.message)
