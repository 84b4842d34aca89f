"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ConfigError
from ..task import Task

out = Console()  # results
err = Console(stderr=True)  # progress and messages

DatasetOpt = Annotated[str, typer.Option("--dataset", "-d", help="digits, digits-mnist (built in), mnist, "
                                          "fashion-mnist, kmnist, usps, cifar10, imagefolder")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="simplecnn, resnet18 or timm:NAME")]
OptimizerOpt = Annotated[str, typer.Option("--optimizer", "-o", help="sgd, sgdm, nesterov, adam, adamw, rmsprop")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", help="batch size")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed (weights, batches)")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="cpu, cuda, cuda:N (default: cuda if available)")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="folder holding the dataset (default $LRSCOUT_DATA_DIR or ./data)")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="allow torchvision to download the dataset")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="use a random subset of this many training images")]
OutOpt = Annotated[Path, typer.Option("--out", help="output directory")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the JSON result to stdout instead of a table")]


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``--param`` values: ``["step_size=3", "milestones=[5,8]"]`` -> ``{"step_size": 3,
    "milestones": [5, 8]}`` (a value is JSON when it parses as JSON, else text)."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"schedule parameter {item!r} is not KEY=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


AugmentOpt = Annotated[bool, typer.Option("--augment", help="random rotation / scale / shift of each "
                                          "training batch (digits-style data)")]


def make_task(dataset: str, model: str, optimizer: str, batch_size: int, seed: int, device: str | None,
              data_dir: Path | None, download: bool, limit: int | None, augment: bool = False) -> Task:
    return Task(dataset=dataset, model=model, optimizer=optimizer, batch_size=batch_size, seed=seed,
                device=device, data_dir=str(data_dir) if data_dir else None, download=download, limit=limit,
                augment=augment)


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A rich progress bar on stderr, yielding ``advance(n=1, info="")``.

    The bar appears at the first ``advance`` call, so a command that fails while it is
    still checking its inputs prints only its error line.
    """
    bar: Progress | None = None
    tid: Any = None

    def advance(n: int = 1, info: str = "") -> None:
        nonlocal bar, tid
        if not enabled:
            return
        if bar is None:
            bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err)
            bar.start()
            tid = bar.add_task(description, total=total, info="")
        bar.update(tid, advance=n, info=info)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.stop()


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2))
