"""``lrscout compare``: optimizers x schedules, each at its own verified LR, ranked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..selection import CompareResult, compare
from .common import BackendOptions, DataOptions, JsonOpt, ResumableOutOpt, SelectionOptions, command, out, print_json
from .selection import report_trial


def compare_table(result: CompareResult) -> Table:
    table = Table(title="Optimizer x schedule at the verified LR (validation accuracy)")
    for name, justify in (("#", "right"), ("optimizer", "left"), ("schedule", "left"), ("learning rate", "right"),
                          ("val acc", "right"), ("cost (runs)", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, e in enumerate(result.entries, 1):
        table.add_row(str(i), e.optimizer, e.schedule + (" (LR-free)" if e.lr_free else ""), f"{e.lr:.4g}",
                      f"{100 * e.score:.2f}%", f"{e.cost_runs:.2f}",
                      style="bold green" if i == 1 else ("red" if e.collapsed else ""))
    return table


@command
def compare_cmd(
    data: DataOptions = DataOptions(),
    optimizers: Annotated[str, typer.Option("--optimizers", help="comma-separated, e.g. sgd,adam,rmsprop")] = "sgd,adam",
    schedules: Annotated[str, typer.Option("--schedules", help="comma-separated, e.g. constant,step,cosine")] = "constant",
    lr_free: Annotated[bool, typer.Option("--lr-free", help="add the installed LR-free optimizers "
                                                            "(prodigy, schedulefree) as entries")] = False,
    selection: SelectionOptions = SelectionOptions(),
    backend: BackendOptions = BackendOptions(),
    out_dir: ResumableOutOpt = Path("runs/compare"),
    as_json: JsonOpt = False,
) -> None:
    first = optimizers.split(",")[0].strip() or "sgd"
    result = compare(data.task(first), optimizers=optimizers, schedules=schedules, lr_free=lr_free, out_dir=out_dir,
                     on_trial=None if as_json else report_trial, **selection.kwargs(), **backend.kwargs())
    if as_json:
        print_json(result.to_json())
        return
    out.print(compare_table(result))
    best = result.best
    out.print(f"best: [bold]{best.label}[/] at LR {best.lr:.4g}, validation accuracy {100 * best.score:.2f}%")
    out.print(f"cost: {result.cost_runs:.2f} training runs ({result.seconds:.0f} s)")
    out.print(f"wrote {out_dir / 'compare.json'} and {out_dir / 'report.html'}")
