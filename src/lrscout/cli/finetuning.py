"""``lrscout finetune``: a pretrained model fine-tuned with per-group LRs found and proved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import ConfigError
from ..finetuning import FinetuneResult, finetune
from .common import (BackendOptions, DataOptions, JsonOpt, NumIterOpt, OptimizerOpt, ResumableOutOpt, command, out,
                     phase_bars, print_json)


def finetune_table(result: FinetuneResult) -> Table:
    """Every candidate's first-rung accuracy, the finalists' full-length accuracy."""
    table = Table(title="fine-tuning: head LR x backbone ratio (validation accuracy)")
    table.add_column("head LR", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("backbone LR", justify="right")
    for rung in result.plan.rungs:
        table.add_column(f"{rung.length} epoch(s)", justify="right")
    by_candidate: dict[int, dict[int, str]] = {}
    for t in result.trials:
        by_candidate.setdefault(t.candidate, {})[t.rung] = "collapsed" if t.collapsed else f"{t.val_acc:.1%}"
    for i, c in enumerate(result.candidates):
        cells = [by_candidate.get(i, {}).get(r, "") for r in range(len(result.plan.rungs))]
        row = [f"{c.head_lr:.3g}", f"{c.ratio:g}", f"{c.head_lr * c.ratio:.3g}", *cells]
        if i == result.best:
            row = [f"[bold green]{v}[/]" for v in row]
        table.add_row(*row)
    return table


@command
def finetune_cmd(
    data: DataOptions = DataOptions(model="resnet18"),
    pretrained: Annotated[bool, typer.Option("--pretrained", help="published torchvision / timm weights (downloads once)")] = False,
    weights: Annotated[Optional[Path], typer.Option("--weights", help="a local checkpoint (state dict, or lrscout's best.pt / last.pt)")] = None,
    optimizer: OptimizerOpt = "adam",
    epochs: Annotated[int, typer.Option("--epochs", "-e", help="epochs of the fine-tuning protocol")] = 3,
    schedule: Annotated[str, typer.Option("--schedule", help="onecycle, cosine, step, constant, ...")] = "onecycle",
    head_lr: Annotated[str, typer.Option("--head-lr", help="head LR, or 'find' to choose it")] = "find",
    backbone_ratio: Annotated[str, typer.Option("--backbone-ratio", help="backbone LR / head LR, or 'select' to choose it")] = "select",
    ratio_sweep: Annotated[bool, typer.Option("--ratio-sweep", help="a second range test sweeps the backbone ratio to set its candidates")] = False,
    layer_decay: Annotated[float, typer.Option("--layer-decay", help="each earlier backbone block's LR x this (1: off)")] = 1.0,
    freeze_epochs: Annotated[int, typer.Option("--freeze-epochs", help="train the head alone for this many epochs first")] = 0,
    budget: Annotated[Optional[float], typer.Option("--budget", help="cost cap in full training runs (default: the whole grid)")] = None,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="weight decay (never on biases and norms)")] = 0.0,
    num_iter: NumIterOpt = 100,
    backend: BackendOptions = BackendOptions(),
    out_dir: ResumableOutOpt = Path("runs/finetune"),
    as_json: JsonOpt = False,
) -> None:
    if data.task_spec is None and not (pretrained or weights):  # a --task's model_fn loads its own weights
        raise ConfigError("fine-tuning needs pretrained weights: give --pretrained or --weights PATH")
    task = data.task(optimizer, weight_decay=weight_decay, pretrained=pretrained,
                     weights=str(weights) if weights else None)
    labels = {"find": "head-LR range test", "ratio": "ratio range test", "select": "trials"}
    with phase_bars(labels, enabled=not as_json) as report:
        result = finetune(task, epochs, schedule=schedule, head_lr=head_lr, backbone_ratio=backbone_ratio,
                          ratio_sweep=ratio_sweep, layer_decay=layer_decay, freeze_epochs=freeze_epochs,
                          budget=budget, num_iter=num_iter, out_dir=out_dir, progress=report, **backend.kwargs())
    if as_json:
        print_json(result.to_json())
        return
    out.print(finetune_table(result))
    groups = ", ".join(f"{g['name']} {g['lr']:.3g}" for g in result.groups)
    out.print(f"chosen: head LR [bold]{result.head_lr:.3g}[/], backbone ratio [bold]{result.backbone_ratio:g}[/] "
              f"({groups})")
    test = f", test accuracy {result.test_acc:.2%}" if result.test_acc is not None else ""
    out.print(f"validation accuracy {result.val_acc:.2%}{test}")
    out.print(f"wrote report.html, finetune.json/.png, find.json/.png, train.json/.png and last.pt under {out_dir}")
