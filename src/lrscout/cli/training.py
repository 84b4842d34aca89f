"""``lrscout train``: train a named task with a given or found LR, a schedule and the guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import ConfigError, DivergenceError
from ..training import TrainResult, train
from ..training.run import TrainProgress, resume_train
from .common import DataOptions, JsonOpt, OptimizerOpt, ParamOpt, command, err, out, parse_params, print_json


@contextmanager
def train_progress(enabled: bool) -> Iterator[TrainProgress]:
    """Two rich bars on stderr (range test, training) and one line per epoch."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err)
    ids: dict[str, TaskID] = {}

    def report(phase: str, done: int, total: int, info: str) -> None:
        if not enabled:
            return
        if not ids:
            bar.start()
        if phase == "epoch":
            bar.console.print(info)
            return
        if phase not in ids:
            ids[phase] = bar.add_task("range test" if phase == "find" else "training", total=total, info="")
        bar.update(ids[phase], completed=done, info=info)

    try:
        yield report
    finally:
        if ids:
            bar.stop()


def summary_table(result: TrainResult) -> Table:
    table = Table(title="training")
    for col in ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "s"):
        table.add_column(col, justify="right")
    for e in result.epochs:
        mark = " *" if e.epoch == result.best_epoch else ""
        table.add_row(f"{e.epoch}{mark}", f"{e.train_loss:.4f}", f"{e.train_acc:.1%}", f"{e.val_loss:.4f}",
                      f"{e.val_acc:.1%}", f"{e.lr:.3g}", f"{e.seconds:.1f}")
    return table


def events_table(result: TrainResult) -> Table:
    table = Table(title="guard events")
    for col in ("step", "kind", "loss", "lr before", "lr after", "restored step", "action"):
        table.add_column(col, justify="right")
    for e in result.events:
        table.add_row(str(e["step"]), e["kind"], f"{e['loss']:.3g}", f"{e['lr_before']:.3g}",
                      f"{e['lr_after']:.3g}", str(e["restored_step"]), e["action"])
    return table


@command
def train_cmd(
    data: DataOptions = DataOptions(batch_size=32),
    optimizer: OptimizerOpt = "sgd",
    lr: Annotated[str, typer.Option("--lr", help="learning rate (the peak for onecycle / cosine), or 'find' to "
                                    "run the range test first and use its recommendation")] = "find",
    schedule: Annotated[str, typer.Option("--schedule", "-s", help="constant, step, multistep, cosine, onecycle, "
                                          "plateau")] = "onecycle",
    schedule_params: ParamOpt = None,
    epochs: Annotated[int, typer.Option("--epochs", "-e", help="epochs to train")] = 5,
    no_guard: Annotated[bool, typer.Option("--no-guard", help="turn the divergence guard off")] = False,
    guard_factor: Annotated[float, typer.Option("--guard-factor", help="divide the LR by this on each "
                                                "recovery")] = 10.0,
    max_recoveries: Annotated[int, typer.Option("--max-recoveries", help="rollbacks before the run "
                                                "stops")] = 3,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="also log to OUT/tb for "
                                              "TensorBoard")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="run directory (metrics, checkpoints, plot)")] = Path(
        "runs/train"),
    resume: Annotated[Optional[Path], typer.Option("--resume", help="continue the interrupted run in this "
                                                   "directory from its last.pt, with the settings it was "
                                                   "started with (other options are not used)")] = None,
    force: Annotated[bool, typer.Option("--force", help="replace the run already in --out (its files are "
                                        "removed first)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train from scratch; write metrics.csv, epochs.csv, train.json, train.png, last.pt, best.pt."""
    if resume is not None:
        if force:
            raise ConfigError("--resume and --force exclude each other")
        with train_progress(enabled=not as_json) as progress:
            result = resume_train(resume, progress=progress)
        out_dir = resume
    else:
        task = data.task(optimizer)
        params = parse_params(schedule_params)
        with train_progress(enabled=not as_json) as progress:
            result = train(task, lr, schedule, epochs, out_dir=out_dir, guard=not no_guard,
                           guard_factor=guard_factor, max_recoveries=max_recoveries, tensorboard=tensorboard,
                           progress=progress, force=force, **params)
    if as_json:
        print_json(result.to_json())
    else:
        if result.find is not None:
            lo, hi = result.find.interval
            out.print(f"range test: lr {result.find.lr:.3g} (interval {lo:.3g} .. {hi:.3g})")
        out.print(summary_table(result))
        if result.events:
            out.print(events_table(result))
        out.print(f"lr {result.lr:.3g} ({result.lr_source}), {result.schedule['kind']}; best val acc "
                  f"{result.best_val_acc:.2%} (epoch {result.best_epoch}), final {result.final_val_acc:.2%}, "
                  f"{result.fit.seconds:.1f}s")
        out.print(f"wrote {out_dir}/metrics.csv, epochs.csv, train.json, train.png, last.pt, best.pt")
    if result.stopped:  # the files are written; main() prints this as one line and exits 2
        raise DivergenceError(f"training stopped: {result.stopped}")
