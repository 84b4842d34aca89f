"""``lrscout select``: a learning rate verified by real training runs on your protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..selection import SelectResult, TrialResult, select
from ..selection.selection import DEFAULT_BUDGET
from .common import (AugmentOpt, BatchOpt, DataDirOpt, DatasetOpt, DeviceOpt, DownloadOpt, JsonOpt, LimitOpt, ModelOpt,
                     OptimizerOpt, SeedOpt, err, make_task, out, parse_params, print_json)

ScheduleOpt = Annotated[str, typer.Option("--schedule", "-s", help="constant, step, multistep, cosine, onecycle, plateau")]
EpochsOpt = Annotated[int, typer.Option("--epochs", "-e", help="epochs of your training run (the protocol)")]
BudgetOpt = Annotated[float, typer.Option("--budget", help="most the selection may cost, in full training runs "
                                                           "(range test included)")]
BackendOpt = Annotated[str, typer.Option("--backend", help="local (this machine) or ray (Ray Tune)")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="local backend: parallel worker processes")]
RayAddressOpt = Annotated[Optional[str], typer.Option("--ray-address", help="ray backend: cluster address "
                                                                            "(default: start Ray here)")]
ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="schedule parameter KEY=VALUE "
                                                                             "(repeatable), e.g. step_size=3")]
NumIterOpt = Annotated[int, typer.Option("--num-iter", help="range test: optimizer steps in the sweep")]
ThreadsOpt = Annotated[int, typer.Option("--threads", help="torch CPU threads per trial (fixed: CPU results depend "
                                                           "on it); parallelism comes from --workers")]
KeepOpt = Annotated[bool, typer.Option("--keep-checkpoints", help="keep the trials' checkpoints in DIR/trials")]


def report_trial(result: TrialResult) -> None:
    state = " collapsed" if result.collapsed else ""
    err.print(f"  trial {result.spec.trial_id:<7} lr {result.spec.lr:<10.3g} {result.spec.epochs:>5.3g} epochs  "
              f"val acc {100 * result.val_acc:6.2f}%{state}")


def select_table(result: SelectResult) -> Table:
    table = Table(title="Candidates (validation accuracy)")
    table.add_column("learning rate", justify="right")
    table.add_column("val acc", justify="right")
    table.add_column("val loss", justify="right")
    table.add_column("epochs run", justify="right")
    table.add_column("")
    for c in result.candidates:
        chosen = c.lr == result.lr
        style = "bold green" if chosen else ("red" if c.collapsed else "")
        table.add_row(f"{c.lr:.4g}", f"{100 * c.score:.2f}%", "-" if c.val_loss is None else f"{c.val_loss:.4f}",
                      f"{c.steps_run / result.schedule.steps_per_epoch:.3g}", "chosen" if chosen else ("collapsed" if c.collapsed else ""),
                      style=style)
    return table


def select_cmd(
    dataset: DatasetOpt = "digits",
    model: ModelOpt = "simplecnn",
    optimizer: OptimizerOpt = "sgd",
    schedule: ScheduleOpt = "constant",
    epochs: EpochsOpt = 10,
    budget: BudgetOpt = DEFAULT_BUDGET,
    backend: BackendOpt = "local",
    workers: WorkersOpt = 1,
    ray_address: RayAddressOpt = None,
    param: ParamOpt = None,
    batch_size: BatchOpt = 64,
    num_iter: NumIterOpt = 100,
    threads: ThreadsOpt = 1,
    seed: SeedOpt = 0,
    device: DeviceOpt = None,
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    limit: LimitOpt = None,
    augment: AugmentOpt = False,
    out_dir: Annotated[Path, typer.Option("--out", help="output directory (rerun into it to resume)")] = Path("runs/select"),
    keep_checkpoints: KeepOpt = False,
    as_json: JsonOpt = False,
) -> None:
    task = make_task(dataset, model, optimizer, batch_size, seed, device, data_dir, download, limit, augment)
    result = select(task, schedule=schedule, epochs=epochs, budget=budget, schedule_params=parse_params(param),
                    backend=backend, workers=workers, ray_address=ray_address, out_dir=out_dir,
                    find_kwargs={"num_iter": num_iter}, threads=threads, keep_checkpoints=keep_checkpoints,
                    on_trial=None if as_json else report_trial)
    if as_json:
        print_json(result.to_json())
        return
    out.print(select_table(result))
    for note in result.notes:
        err.print(f"[yellow]note:[/] {note}")
    spec = result.schedule
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
    out.print(f"chosen LR: [bold]{result.lr:.4g}[/]  validation accuracy {100 * result.score:.2f}% after "
              f"{epochs} epochs of {spec.kind}{f' ({params})' if params else ''}")
    out.print(f"cost: {result.cost_runs:.2f} training runs ({result.seconds:.0f} s)")
    out.print(f"wrote {out_dir / 'select.json'} and {out_dir / 'report.html'}")
