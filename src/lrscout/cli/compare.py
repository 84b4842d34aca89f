"""``lrscout compare``: optimizers x schedules, each at its own verified LR, ranked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..selection import CompareResult, compare
from ..selection.selection import DEFAULT_BUDGET
from .common import (AugmentOpt, BatchOpt, DataDirOpt, DatasetOpt, DeviceOpt, DownloadOpt, JsonOpt, LimitOpt, ModelOpt,
                     SeedOpt, make_task, out, print_json)
from .selection import BackendOpt, BudgetOpt, EpochsOpt, NumIterOpt, RayAddressOpt, ThreadsOpt, WorkersOpt, report_trial


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


def compare_cmd(
    optimizers: Annotated[str, typer.Option("--optimizers", help="comma-separated, e.g. sgd,adam,rmsprop")] = "sgd,adam",
    schedules: Annotated[str, typer.Option("--schedules", help="comma-separated, e.g. constant,step,cosine")] = "constant",
    lr_free: Annotated[bool, typer.Option("--lr-free", help="add the installed LR-free optimizers "
                                                            "(prodigy, schedulefree) as entries")] = False,
    dataset: DatasetOpt = "digits",
    model: ModelOpt = "simplecnn",
    epochs: EpochsOpt = 10,
    budget: BudgetOpt = DEFAULT_BUDGET,
    backend: BackendOpt = "local",
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    batch_size: BatchOpt = 64,
    num_iter: NumIterOpt = 100,
    threads: ThreadsOpt = 1,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    limit: LimitOpt = None,
    augment: AugmentOpt = False,
    out_dir: Annotated[Path, typer.Option("--out", help="output directory (rerun into it to resume)")] = Path("runs/compare"),
    as_json: JsonOpt = False,
) -> None:
    first = optimizers.split(",")[0].strip() or "sgd"
    task = make_task(dataset, model, first, batch_size, seed, device, data_dir, download, limit, augment)
    result = compare(task, optimizers=optimizers, schedules=schedules, lr_free=lr_free, epochs=epochs, budget=budget,
                     backend=backend, workers=workers, ray_address=ray_address, out_dir=out_dir,
                     find_kwargs={"num_iter": num_iter}, threads=threads,
                     on_trial=None if as_json else report_trial)
    if as_json:
        print_json(result.to_json())
        return
    out.print(compare_table(result))
    best = result.best
    out.print(f"best: [bold]{best.label}[/] at LR {best.lr:.4g}, validation accuracy {100 * best.score:.2f}%")
    out.print(f"cost: {result.cost_runs:.2f} training runs ({result.seconds:.0f} s)")
    out.print(f"wrote {out_dir / 'compare.json'} and {out_dir / 'report.html'}")
