"""``lrscout find``: the LR range test on a named dataset / model / optimizer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..checks import check_writable_dir
from ..engine import find_task
from ..report.files import save_find
from ..results import FindResult
from .common import DataOptions, JsonOpt, NumIterOpt, OptimizerOpt, OutOpt, command, err, out, print_json, progress_bar


def find_table(result: FindResult) -> Table:
    table = Table(title="LR range test", show_lines=False)
    table.add_column("method")
    table.add_column("learning rate", justify="right")
    table.add_column("note")
    lo, hi = result.interval
    table.add_row("[bold green]lrscout[/]", f"[bold green]{result.lr:.3g}[/]", f"interval [{lo:.3g}, {hi:.3g}] ({result.rule})")
    notes = {"steep": "steepest descent", "valley": "longest valley", "minimum": "min-loss LR / 10", "slide": "slide"}
    for name, lr in result.suggestions.items():
        table.add_row(name, f"{lr:.3g}", notes.get(name, ""))
    if result.onset is not None:
        table.add_row("[red]onset[/]", f"[red]{result.onset:.3g}[/]", "loss turns up: do not train above this")
    return table


@command
def find_cmd(
    data: DataOptions = DataOptions(),
    optimizer: OptimizerOpt = "sgd",
    start_lr: Annotated[float, typer.Option("--start-lr", help="first LR of the sweep")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="last LR of the sweep")] = 10.0,
    num_iter: NumIterOpt = 100,
    mode: Annotated[str, typer.Option("--mode", help="exp or linear LR ramp")] = "exp",
    diverge_factor: Annotated[float, typer.Option("--diverge", help="stop when the running loss exceeds this x its best")] = 4.0,
    amp: Annotated[Optional[str], typer.Option("--amp", help="fp16 (CUDA) or bf16 autocast")] = None,
    accumulation_steps: Annotated[int, typer.Option("--accumulate", help="gradient accumulation steps per optimizer step")] = 1,
    out_dir: OutOpt = Path("runs/find"),
    as_json: JsonOpt = False,
) -> None:
    check_writable_dir(out_dir)  # before the range test, not after it
    task = data.task(optimizer)
    with progress_bar("range test", num_iter, enabled=not as_json) as advance:
        result = find_task(
            task, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, mode=mode, diverge_factor=diverge_factor,
            amp=amp, accumulation_steps=accumulation_steps,
            progress=lambda i, lr, loss: advance(info=f"lr {lr:.2e}  loss {loss:.3f}"),
        )
    json_path, png_path = save_find(result, out_dir)
    if as_json:
        print_json(result.to_json())
        return
    out.print(find_table(result))
    if result.stopped_early:
        err.print(f"stopped early: {result.stop_reason}")
    out.print(f"recommended LR: [bold]{result.lr:.3g}[/]  (interval {result.interval[0]:.3g} .. {result.interval[1]:.3g})")
    out.print(f"wrote {json_path} and {png_path}")
