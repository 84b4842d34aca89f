"""``lrscout select``: a learning rate verified by real training runs on your protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..protocol import ACCURACY, Metric
from ..report.files import SELECT_MODEL
from ..selection import SelectResult, TrialResult, select
from .common import (BackendOptions, DataOptions, JsonOpt, OptimizerOpt, ParamOpt, ResumableOutOpt, ScheduleOpt,
                     SelectionOptions, command, err, out, parse_params, print_json)

KeepOpt = Annotated[bool, typer.Option("--keep-checkpoints", help="keep the trials' checkpoints in DIR/trials")]


def trial_reporter(metric: Metric) -> Callable[[TrialResult], None]:
    """One stderr line per finished trial, in the task's metric."""
    label = "val acc" if metric.name == "accuracy" else f"val {metric.name}"

    def report(result: TrialResult) -> None:
        state = " collapsed" if result.collapsed else ""
        err.print(f"  trial {result.spec.trial_id:<7} lr {result.spec.lr:<10.3g} {result.spec.epochs:>5.3g} epochs  "
                  f"{label} {metric.format(result.val_acc):>7}{state}")

    return report


report_trial = trial_reporter(ACCURACY)


def select_table(result: SelectResult) -> Table:
    metric = Metric.from_json(result.config.get("metric"))
    table = Table(title=f"Candidates (validation {metric.name})")
    table.add_column("learning rate", justify="right")
    table.add_column("val acc" if metric.name == "accuracy" else f"val {metric.name}", justify="right")
    table.add_column("val loss", justify="right")
    table.add_column("epochs run", justify="right")
    table.add_column("")
    for c in result.candidates:
        chosen = c.lr == result.lr
        style = "bold green" if chosen else ("red" if c.collapsed else "")
        table.add_row(f"{c.lr:.4g}", metric.format(c.score), "-" if c.val_loss is None else f"{c.val_loss:.4f}",
                      f"{c.steps_run / result.schedule.steps_per_epoch:.3g}", "chosen" if chosen else ("collapsed" if c.collapsed else ""),
                      style=style)
    return table


@command
def select_cmd(
    data: DataOptions = DataOptions(),
    optimizer: OptimizerOpt = "sgd",
    schedule: ScheduleOpt = "constant",
    schedule_params: ParamOpt = None,
    selection: SelectionOptions = SelectionOptions(),
    backend: BackendOptions = BackendOptions(),
    out_dir: ResumableOutOpt = Path("runs/select"),
    keep_checkpoints: KeepOpt = False,
    as_json: JsonOpt = False,
) -> None:
    task = data.target(optimizer)
    result = select(task, schedule=schedule, schedule_params=parse_params(schedule_params),
                    out_dir=out_dir, keep_checkpoints=keep_checkpoints, on_trial=None if as_json else trial_reporter(task.metric),
                    **selection.kwargs(), **backend.kwargs())
    if as_json:
        print_json(result.to_json())
        return
    out.print(select_table(result))
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    spec = result.schedule
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
    out.print(f"chosen LR: [bold]{result.lr:.4g}[/]  validation {task.metric.name} {task.metric.format(result.score)} after "
              f"{selection.epochs} epochs of {spec.kind}{f' ({params})' if params else ''}")
    out.print(f"cost: {result.cost_runs:.2f} training runs ({result.seconds:.0f} s)")
    written = [out_dir / "select.json", out_dir / "report.html"]
    if result.model is not None:
        written.append(out_dir / SELECT_MODEL)
    out.print(f"wrote {', '.join(str(p) for p in written[:-1])} and {written[-1]}"
              + (" (the chosen run's trained weights)" if result.model is not None else ""))
