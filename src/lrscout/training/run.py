"""``lrscout.train``: a named task trained with a chosen (or found) LR and a schedule.

One function over the pieces: the range test when ``lr="find"``, a
:class:`~lrscout.schedules.ScheduleSpec`, the :class:`Guard`, the loop :func:`fit`, and
the run directory. Every file in the run directory is rewritten atomically after each
epoch, so an interrupted run (Ctrl-C, a crash, a killed job) leaves the files of its last
complete epoch, never a half-written one:

==============  ===================================================================
metrics.csv     one row per optimizer step: step, epoch, lr, loss, event (guard)
epochs.csv      one row per epoch: train and validation loss / accuracy, lr, seconds
train.json      :class:`TrainResult` (``finished`` false until the run ends)
train.png       loss and LR over steps, guard events marked (between epochs only when
                drawing it costs under a tenth of the training time since the last one)
last.pt         the latest weights, optimizer and scheduler state
best.pt         the same for the epoch with the best validation accuracy
tb/             TensorBoard events (``tensorboard=True``)
==============  ===================================================================

Example::

    result = lrscout.train(lrscout.Task("digits", "simplecnn", "sgd"), lr="find",
                           schedule="onecycle", epochs=5, out_dir="runs/digits")
    print(result.lr, result.best_val_acc, result.events)
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from .._io import atomic_write, atomic_write_json, atomic_write_text
from ..engine import find_task
from ..checks import check_arguments
from ..errors import ConfigError, require
from ..results import FindResult
from ..schedules import ScheduleSpec, get_schedule, schedule_for
from ..task import Task
from .guard import Guard
from .loop import EpochStats, FitResult, fit
from .result import TrainResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: ``progress(phase, done, total, info)``: phase "find" (range-test steps), "train"
#: (optimizer steps) or "epoch" (epochs, with a one-line summary as ``info``).
TrainProgress = Callable[[str, int, int, str], None]

CHECKPOINT_VERSION = 1
FIND_NUM_ITER = 100  # range-test steps for lr="find" (find's default)
PLOT_OVERHEAD = 10.0  # train.png between epochs costs at most ~1/10 of the training time
VAL_BATCH_SIZE = 256  # evaluation has no gradients: bigger batches are just faster


def parse_lr(lr: float | str, name: str = "lr") -> float | None:
    """``"find"`` -> None (run the range test); a number or numeric string -> float > 0
    (``name``: the argument's name, for the error)."""
    if isinstance(lr, str):
        if lr.strip().lower() == "find":
            return None
        try:
            lr = float(lr)
        except ValueError:
            raise ConfigError(f"{name} must be a positive number or 'find', got {lr!r}", argument=name) from None
    value = float(lr)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a positive finite number, got {lr!r}", argument=name)
    return value


class _RunFiles:
    """Writes the run directory; every write is atomic (temp file + rename)."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._plot_seconds = 0.0  # how long the last train.png took to draw
        self._plot_done = -math.inf  # when it was written (perf_counter)

    def save_checkpoint(self, name: str, obj: dict[str, Any]) -> Path:
        return atomic_write(self.dir / name, lambda p: torch.save(obj, p))

    def save_metrics(self, rows: list[tuple[int, int, float, float, str]], epochs: list[EpochStats]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "epoch", "lr", "loss", "event"])
        w.writerows((s, e, repr(lr), repr(loss), ev) for s, e, lr, loss, ev in rows)
        atomic_write_text(self.dir / "metrics.csv", buf.getvalue())
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"])
        w.writerows((e.epoch, repr(e.train_loss), repr(e.train_acc), repr(e.val_loss), repr(e.val_acc),
                     repr(e.lr), f"{e.seconds:.3f}") for e in epochs)
        atomic_write_text(self.dir / "epochs.csv", buf.getvalue())

    def save_result(self, result: TrainResult, *, final: bool) -> None:
        """train.json every time; train.png at the end, and between epochs only when the
        training since the last one took PLOT_OVERHEAD times as long as drawing it (a
        figure costs ~0.5 s, more than a whole epoch of a small task)."""
        from ..report.plots import save_figure

        atomic_write_json(self.dir / "train.json", result.to_json())
        now = time.perf_counter()
        if final or now - self._plot_done >= PLOT_OVERHEAD * self._plot_seconds:
            save_figure(cast("Figure", result.plot().figure), self.dir / "train.png")
            self._plot_done = time.perf_counter()
            self._plot_seconds = self._plot_done - now


class _TensorBoard:
    """Scalars per step and per epoch, guard events as text (torch's SummaryWriter)."""

    def __init__(self, log_dir: Path) -> None:
        require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def step(self, step: int, lr: float, loss: float) -> None:
        self.writer.add_scalar("train/loss", loss, step)
        self.writer.add_scalar("train/lr", lr, step)

    def epoch(self, stats: EpochStats, step: int) -> None:
        for name, value in (("train/epoch_loss", stats.train_loss), ("train/acc", stats.train_acc),
                            ("val/loss", stats.val_loss), ("val/acc", stats.val_acc)):
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def event(self, event: dict[str, Any]) -> None:
        self.writer.add_text("guard", ", ".join(f"{k}={v}" for k, v in event.items()), event["step"])

    def close(self) -> None:
        self.writer.close()


def train(
    task: Task,
    lr: float | str = "find",
    schedule: str = "onecycle",
    epochs: int = 5,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    guard: bool = True,
    guard_factor: float = 10.0,
    max_recoveries: int = 3,
    tensorboard: bool = False,
    progress: TrainProgress | None = None,
    **schedule_params: Any,
) -> TrainResult:
    """Train ``task``'s model from scratch and return what happened.

    ``lr`` is the LR of parameter group 0 (the peak for ``onecycle`` / ``cosine``), or
    ``"find"``: run :func:`lrscout.engine.find_task` on the same task first and use its
    recommendation. ``schedule`` names a kind in :data:`lrscout.schedules.SCHEDULES`,
    with ``schedule_params`` for it. With ``guard`` (the default) a :class:`Guard` rolls
    back NaN / spiking / growing losses and divides the LR by ``guard_factor``; after
    ``max_recoveries`` the run stops early with ``result.stopped`` set and the last good
    weights in place (no exception). ``out_dir`` gets the files listed in the module
    docstring, rewritten after every epoch.
    """
    base_lr = parse_lr(lr)
    check_arguments(epochs=epochs, out_dir=out_dir)
    if tensorboard and out_dir is None:
        raise ConfigError("tensorboard logging needs an output directory (out_dir)")
    splits = task.splits()
    train_loader = task.train_loader()
    val_loader = splits.loader("val", VAL_BATCH_SIZE)
    steps_per_epoch = len(train_loader)
    # fail on an unknown schedule or parameter now, not after a range test
    get_schedule(schedule).resolve(schedule_params, epochs=epochs, steps_per_epoch=steps_per_epoch)

    find_result: FindResult | None = None
    if base_lr is None:
        find_progress = _find_progress(progress) if progress is not None else None
        find_result = find_task(task, num_iter=FIND_NUM_ITER, progress=find_progress)
        base_lr = find_result.lr
        if progress is not None:  # the test may stop early (divergence): close its bar
            progress("find", FIND_NUM_ITER, FIND_NUM_ITER, f"recommends lr {base_lr:.3g}")
        log.info("range test recommends lr %.3g", base_lr)

    model = task.build_model(splits.info)
    optimizer = task.build_optimizer(model.parameters(), base_lr)
    spec: ScheduleSpec = schedule_for(base_lr, schedule, epochs, steps_per_epoch, **schedule_params)
    scheduler = spec.build(optimizer)
    guard_obj = Guard(model, optimizer, scheduler=scheduler, factor=guard_factor,
                      max_recoveries=max_recoveries) if guard else None
    files = _RunFiles(Path(out_dir)) if out_dir is not None else None
    tb = _TensorBoard(Path(out_dir) / "tb") if tensorboard and out_dir is not None else None

    total = epochs * steps_per_epoch
    rows: list[tuple[int, int, float, float, str]] = []  # step, epoch, lr, loss, guard event
    history: list[EpochStats] = []
    best: dict[str, Any] = {"epoch": None, "acc": -1.0}
    n_events = 0

    def make_result(fit_result: FitResult, finished: bool) -> TrainResult:
        return TrainResult(lr=base_lr, lr_source="find" if find_result is not None else "given",
                           schedule=spec.to_json(), fit=fit_result, steps_per_epoch=steps_per_epoch,
                           best_epoch=best["epoch"], find=find_result, task=task.to_json(), finished=finished)

    def on_step(step: int, lr_now: float, loss: float) -> None:
        rows.append((step, step // steps_per_epoch + 1, lr_now, loss, ""))
        if tb is not None:
            tb.step(step, lr_now, loss)
        if progress is not None:
            progress("train", step + 1, total, f"epoch {step // steps_per_epoch + 1}/{epochs}  lr {lr_now:.2e}  "
                                               f"loss {loss:.3f}")

    def note_events() -> None:
        nonlocal n_events
        events = guard_obj.events if guard_obj is not None else []
        for event in events[n_events:]:
            step, *rest, _ = rows[event["step"]]
            rows[event["step"]] = (step, *rest, event["kind"])
            if tb is not None:
                tb.event(event)
        n_events = len(events)

    def checkpoint(stats: EpochStats) -> dict[str, Any]:
        return {"version": CHECKPOINT_VERSION, "epoch": stats.epoch, "val_acc": stats.val_acc,
                "val_loss": stats.val_loss, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "task": task.to_json(), "schedule": spec.to_json()}

    def on_epoch(stats: EpochStats) -> None:
        history.append(stats)
        note_events()
        improved = stats.val_acc > best["acc"]
        if improved:
            best.update(epoch=stats.epoch, acc=stats.val_acc)
        if tb is not None:
            tb.epoch(stats, len(rows))
        if files is not None:
            ckpt = checkpoint(stats)
            files.save_checkpoint("last.pt", ckpt)
            if improved:
                files.save_checkpoint("best.pt", ckpt)
            partial = FitResult(tuple(history), tuple(r[3] if math.isfinite(r[3]) else math.nan for r in rows),
                                tuple(r[2] for r in rows), tuple(guard_obj.events if guard_obj else ()))
            files.save_metrics(rows, history)
            files.save_result(make_result(partial, finished=False), final=False)
        if progress is not None:
            progress("epoch", stats.epoch, epochs,
                     f"epoch {stats.epoch}/{epochs}: train loss {stats.train_loss:.4f} acc {stats.train_acc:.1%}  "
                     f"val loss {stats.val_loss:.4f} acc {stats.val_acc:.1%}  lr {stats.lr:.3g}")

    try:
        fit_result = fit(model, optimizer, train_loader, val_loader, epochs=epochs, scheduler=scheduler,
                         guard=guard_obj, on_step=on_step, on_epoch=on_epoch)
    finally:
        if tb is not None:
            tb.close()
    result = make_result(fit_result, finished=True)
    if files is not None:
        files.save_metrics(rows, history)
        files.save_result(result, final=True)
    if result.stopped:
        log.warning("training stopped early: %s", result.stopped)
    return result


def _find_progress(progress: TrainProgress) -> Callable[[int, float, float], None]:
    def report(i: int, lr: float, loss: float) -> None:
        progress("find", i + 1, FIND_NUM_ITER, f"lr {lr:.2e}  loss {loss:.3f}")

    return report
