"""Files, figures and the HTML page of a fine-tuning run (matplotlib Agg; atomic writes).

The page uses the same self-contained layout as ``lrscout select``'s report (the building
blocks of :mod:`lrscout.report.page`): embedded PNGs, inline CSS, no script.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from .._io import atomic_write, atomic_write_json, atomic_write_text
from .files import CHECKPOINT_VERSION, save_find
from .page import escape as _e
from .page import figure as _figure
from .page import loss as _loss
from .page import page as _page
from .page import pct as _pct
from .page import table as _table
from .plots import new_axes, plot_find, save_figure
from .training import plot_train

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..finetuning.result import FinetuneResult


def plot_grid(result: FinetuneResult, ax: Axes | None = None) -> Axes:
    """Heat map of rung-0 validation accuracy: head LR across, backbone ratio up; collapsed
    trials grey, the chosen pair framed in green."""
    ax = ax if ax is not None else new_axes((7.0, 4.0))
    heads = sorted({c.head_lr for c in result.candidates})
    ratios = sorted({c.ratio for c in result.candidates})
    grid = np.full((len(ratios), len(heads)), np.nan)
    for t in result.rung_trials(0):
        if not t.collapsed:
            grid[ratios.index(t.ratio), heads.index(t.head_lr)] = t.val_acc
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="0.85")  # collapsed trials in grey
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap=cmap, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        dark = not math.isnan(value) and float(np.asarray(image.norm(value))) < 0.6  # viridis: dark below ~0.6
        ax.text(j, i, "collapsed" if math.isnan(value) else f"{value:.1%}", ha="center", va="center",
                fontsize=8, color="white" if dark else "black")
    best = result.candidates[result.best]
    bi, bj = ratios.index(best.ratio), heads.index(best.head_lr)
    ax.add_patch(_frame(bj, bi))
    ax.set_xticks(range(len(heads)), [f"{h:.2g}" for h in heads])
    ax.set_yticks(range(len(ratios)), [f"{r:g}" for r in ratios])
    ax.set_xlabel("head learning rate")
    ax.set_ylabel("backbone LR / head LR")
    epochs = result.plan.rungs[0].length
    ax.set_title(f"validation accuracy after {epochs} epoch(s), first rung; chosen: head {best.head_lr:.3g}, "
                 f"ratio {best.ratio:g}", fontsize=9)
    ax.figure.colorbar(image, ax=ax, label="validation accuracy")
    return ax


def _frame(x: int, y: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="C2", lw=3)


def render_finetune(result: FinetuneResult) -> str:
    """The HTML page of a fine-tuning run (a complete document)."""
    task = result.task
    best = result.candidates[result.best]
    test = f", test accuracy <b>{_pct(result.test_acc)}</b>" if result.test_acc is not None else ""
    rec = (
        '<section class="rec">'
        f'<div>head LR <span class="lr">{best.head_lr:.4g}</span>, backbone ratio '
        f'<span class="lr">{best.ratio:g}</span> (backbone LR {best.head_lr * best.ratio:.3g})</div>'
        f"<div>validation accuracy after the full protocol: <b>{_pct(result.val_acc)}</b>{test}</div>"
        f"<div>layer decay {result.layer_decay:g}, head alone for {result.freeze_epochs} epoch(s); cost "
        f"<b>{result.cost_runs:.2f}</b> training runs, {result.seconds:.0f} s</div></section>"
    )
    groups = _table(["group", "learning rate", "weight decay", "parameters"],
                    [([g["name"], f"{g['lr']:.4g}", f"{g['weight_decay']:g}", str(g["params"])], "")
                     for g in result.groups], left=1)
    rungs = result.plan.rungs
    rows = []
    for i, c in enumerate(result.candidates):
        trials = {t.rung: t for t in result.trials if t.candidate == i}
        cells = [("collapsed" if trials[r].collapsed else _pct(trials[r].val_acc)) if r in trials else "-"
                 for r in range(len(rungs))]
        last = trials[max(trials)] if trials else None
        cls = "chosen" if i == result.best else ("bad" if last is not None and last.collapsed else "")
        rows.append(([f"{c.head_lr:.4g}", f"{c.ratio:g}", *cells, _loss(last.val_loss if last else None)], cls))
    grid_table = _table(["head LR", "ratio", *[f"rung {i} ({r.length} ep.)" for i, r in enumerate(rungs)],
                     "val loss (last)"], rows)
    parts: list[str] = [
        "<h1>lrscout finetune</h1>",
        f'<p class="sub">{_e(task.get("dataset"))} · {_e(task.get("model"))} from '
        f'{_e(task.get("weights") or ("published weights" if task.get("pretrained") else "scratch"))} · '
        f'{_e(task.get("optimizer"))} · {len(result.train.epochs)} epochs · seed {_e(task.get("seed"))}</p>',
        rec,
        "<h2>Parameter groups</h2>", groups,
        "<h2>Head LR x backbone ratio</h2>",
        _figure(plot_grid(result), "validation accuracy over the candidate grid",
                "First-rung validation accuracy of every (head LR, backbone ratio) pair; ratio 1 is one LR for "
                "every group. Framed: the choice, made on the last rung."),
        grid_table,
        "<p>Successive halving: short runs train the schedule compressed into their epochs; a third of each "
        "rung goes on. Ranking: healthy runs first, then the sum of each run's validation-accuracy rank and "
        "validation-loss rank (ties: lower loss, then lower head LR). "
        "The test split chose nothing.</p>",
    ]
    if result.find is not None:
        parts += ["<h2>Range test: head LR (group ratios fixed)</h2>",
                  _figure(plot_find(result.find), "range test of the common multiplier",
                          "Loss against the head LR while every group keeps its ratio to the head.")]
    if result.ratio_find is not None:
        parts += ["<h2>Range test: backbone LR (head LR fixed)</h2>",
                  _figure(plot_find(result.ratio_find), "range test of the backbone ratio",
                          f"Loss against the backbone LR with the head at {result.ratio_find.config['head_lr']:.3g}.")]
    parts += ["<h2>The chosen run</h2>",
              _figure(plot_train(result.train), "training curve", "Training loss and LR per step, validation loss per epoch."),
              f"<details><summary>result JSON</summary><pre>{_e(json.dumps(_summary(result), indent=2))}</pre>"
              "</details>"]
    return _page(f"lrscout finetune: {task.get('dataset')} head {best.head_lr:.3g} ratio {best.ratio:g}", "".join(parts))


def _summary(result: FinetuneResult) -> dict[str, Any]:
    data = result.to_json()
    for key in ("find", "ratio_find", "train", "trials"):
        data.pop(key, None)
    return data


def save_finetune(result: FinetuneResult, out_dir: str | Path, model: torch.nn.Module | None = None) -> list[Path]:
    """Write the run directory; returns the paths written.

    ``finetune.json`` / ``finetune.png`` (the selection), ``report.html`` (one page with
    everything), ``find.json`` / ``find.png`` (head-LR range test), ``find_ratio.json`` /
    ``find_ratio.png`` (backbone-ratio sweep), ``train.json`` / ``train.png`` (the chosen
    run) and ``last.pt`` (its final weights under ``"model"``, loadable with ``--weights``).
    """
    out = Path(out_dir)
    paths = [atomic_write_json(out / "finetune.json", result.to_json())]
    save_figure(cast("Figure", plot_grid(result).figure), out / "finetune.png")
    paths.append(out / "finetune.png")
    if result.find is not None:
        paths.extend(save_find(result.find, out))
    if result.ratio_find is not None:
        paths.append(atomic_write_json(out / "find_ratio.json", result.ratio_find.to_json()))
        ax = plot_find(result.ratio_find)
        ax.set_title("backbone LR sweep (head LR fixed)")
        save_figure(cast("Figure", ax.figure), out / "find_ratio.png")
        paths.append(out / "find_ratio.png")
    paths.append(atomic_write_json(out / "train.json", result.train.to_json()))
    save_figure(cast("Figure", plot_train(result.train).figure), out / "train.png")
    paths.append(out / "train.png")
    paths.append(atomic_write_text(out / "report.html", render_finetune(result)))
    if model is not None:
        state = {"version": CHECKPOINT_VERSION, "epoch": len(result.train.epochs), "model": model.state_dict(),
                 "task": result.task, "groups": list(result.groups)}
        paths.append(atomic_write(out / "last.pt", lambda p: torch.save(state, p)))
    return paths
