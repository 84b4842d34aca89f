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
last.pt         the latest weights, optimizer and scheduler state, and what a resumed
                run needs: the guard, the RNG streams, the loader's shuffle and
                augmentation generators, the metrics so far and the run's settings
best.pt         the same for the epoch with the best validation accuracy
tb/             TensorBoard events (``tensorboard=True``)
==============  ===================================================================

``resume=True`` continues an interrupted run from its ``last.pt``: the next epoch starts
with the weights, optimizer, scheduler, guard, random streams and batch order the run had
at the end of its last complete epoch, so the result is bitwise the one of an
uninterrupted run on the same machine (:func:`resume_train` does the same from the folder
alone). A folder that holds another run is refused unless ``force=True``, which removes
the old run's files first (no ``train.png`` of an older run stands beside a new one). The
folder is claimed under a lock while the run works in it.

Example::

    result = lrscout.train(lrscout.Task("digits", "simplecnn", "sgd"), lr="find",
                           schedule="onecycle", epochs=5, out_dir="runs/digits")
    print(result.lr, result.best_val_acc, result.events)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from .._io import DirLock, atomic_write, atomic_write_json, atomic_write_text
from ..engine import find_task
from ..checks import check_arguments
from ..errors import ConfigError, DataError, require
from ..report.plots import save_figure
from ..report.training import plot_train
from ..protocol import TrainingTask, check_task, loop_hooks
from ..protocol import steps_per_epoch as task_steps
from ..results import FindResult
from ..schedules import ScheduleSpec, get_schedule, schedule_for
from ..state import RngState, data_generators
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
RUN_FILES = ("metrics.csv", "epochs.csv", "train.json", "train.png", "last.pt", "best.pt", "tb")
"""What a run writes in its folder: a folder with any of them holds a run."""
FIND_NUM_ITER = 100  # range-test steps for lr="find" (find's default)
PLOT_OVERHEAD = 10.0  # train.png between epochs costs at most ~1/10 of the training time


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
        atomic_write_json(self.dir / "train.json", result.to_json())
        now = time.perf_counter()
        if final or now - self._plot_done >= PLOT_OVERHEAD * self._plot_seconds:
            save_figure(cast("Figure", plot_train(result).figure), self.dir / "train.png")
            self._plot_done = time.perf_counter()
            self._plot_seconds = self._plot_done - now


class _TensorBoard:
    """Scalars per step and per epoch, guard events as text (torch's SummaryWriter)."""

    def __init__(self, log_dir: Path, purge_step: int | None = None) -> None:
        require("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        # a resumed run hides what the interrupted one logged after its last checkpoint
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

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
    task: TrainingTask,
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
    resume: bool = False,
    force: bool = False,
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
    docstring, rewritten after every epoch. ``resume=True`` continues the interrupted run
    in ``out_dir`` (the same task and settings; ``lr="find"`` takes the LR it found);
    ``force=True`` replaces a run already there. Without either, a folder holding a run
    is refused before any work.
    """
    check_task(task, "train")
    base_lr = parse_lr(lr)
    check_arguments(epochs=epochs, out_dir=out_dir)
    if tensorboard and out_dir is None:
        raise ConfigError("tensorboard logging needs an output directory (out_dir)")
    if resume and force:
        raise ConfigError("resume and force exclude each other: resume continues the run in out_dir, force "
                          "replaces it")
    if resume and out_dir is None:
        raise ConfigError("resume needs out_dir, the folder of the run to continue")
    settings = {"task": task.to_json(), "schedule": schedule, "schedule_params": dict(schedule_params),
                "epochs": epochs, "guard": guard, "guard_factor": guard_factor, "max_recoveries": max_recoveries,
                "tensorboard": tensorboard}
    state: dict[str, Any] | None = None
    if resume:
        state = _resume_state(Path(out_dir), settings, base_lr)  # type: ignore[arg-type]
        base_lr = float(state["resume"]["run"]["lr"])
    elif out_dir is not None and not force:
        _refuse_held_run(Path(out_dir))
    steps_per_epoch = task_steps(task)
    train_loader = task.train_loader()
    val_loader = task.val_loader()
    # fail on an unknown schedule or parameter now, not after a range test
    get_schedule(schedule).resolve(schedule_params, epochs=epochs, steps_per_epoch=steps_per_epoch)

    # the folder is claimed before any work; a failure before training releases it
    claim = DirLock(out_dir, "training run").acquire() if out_dir is not None else None
    try:
        if out_dir is not None and state is None:
            if force:
                _remove_run(Path(out_dir))
            else:
                _refuse_held_run(Path(out_dir))  # again, under the lock
        find_result: FindResult | None = None
        if state is not None and state["resume"]["run"]["find"] is not None:
            find_result = FindResult.from_json(state["resume"]["run"]["find"])
        if base_lr is None:
            find_progress = _find_progress(progress) if progress is not None else None
            find_result = find_task(task, num_iter=FIND_NUM_ITER, progress=find_progress)
            base_lr = find_result.lr
            if progress is not None:  # the test may stop early (divergence): close its bar
                progress("find", FIND_NUM_ITER, FIND_NUM_ITER, f"recommends lr {base_lr:.3g}")
            log.info("range test recommends lr %.3g", base_lr)

        model = task.build_model()
        optimizer = task.build_optimizer(model.parameters(), base_lr)
        spec: ScheduleSpec = schedule_for(base_lr, schedule, epochs, steps_per_epoch, **schedule_params)
        scheduler = spec.build(optimizer)
        guard_obj = Guard(model, optimizer, scheduler=scheduler, factor=guard_factor,
                          max_recoveries=max_recoveries) if guard else None
        files = _RunFiles(Path(out_dir)) if out_dir is not None else None
        tb: _TensorBoard | None = None

        total = epochs * steps_per_epoch
        rows: list[tuple[int, int, float, float, str]] = []  # step, epoch, lr, loss, guard event
        history: list[EpochStats] = []
        metric = task.metric
        best: dict[str, Any] = {"epoch": None, "acc": metric.worst()}
        n_events = 0
        first_epoch, first_step, seconds_before = 0, 0, 0.0
        if state is not None:  # put back everything the run had at the end of its last epoch
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            extra = state["resume"]
            if guard_obj is not None:
                guard_obj.load_state_dict(extra["guard"])
            rows = [(int(a), int(b), float(c), float(d), str(e)) for a, b, c, d, e in extra["rows"]]
            history = [EpochStats(**e) for e in extra["history"]]
            best.update(epoch=extra["best_epoch"], acc=float(extra["best_acc"]))
            n_events = int(extra["n_events"])
            first_epoch, first_step, seconds_before = int(state["epoch"]), len(rows), float(extra["seconds"])
            gens = data_generators(train_loader)
            if len(gens) != len(extra["generators"]):
                raise DataError(f"{out_dir}/last.pt: the checkpoint's data order does not fit this task's loader")
            for gen, gen_state in zip(gens, extra["generators"]):
                gen.set_state(gen_state)
            RngState.from_state_dict(extra["rng"]).restore()
    except BaseException:
        if claim is not None:
            claim.release(remove_if_empty=True)
        raise

    def make_result(fit_result: FitResult, finished: bool) -> TrainResult:
        return TrainResult(lr=base_lr, lr_source="find" if find_result is not None else "given",
                           schedule=spec.to_json(), fit=fit_result, steps_per_epoch=steps_per_epoch,
                           best_epoch=best["epoch"], find=find_result, task=task.to_json(), finished=finished)

    def on_step(step: int, lr_now: float, loss: float) -> None:
        step += first_step  # fit counts from 0 in every call; a resumed run goes on from its rows
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

    def resume_part() -> dict[str, Any]:
        """What last.pt carries for resume_train (weights_only-loadable: tensors, numbers, lists)."""
        return {"run": {**settings, "lr": base_lr, "find": find_result.to_json() if find_result else None,
                        "schedule_spec": spec.to_json()},
                "guard": guard_obj.state_dict() if guard_obj is not None else None,
                "rng": RngState.capture().state_dict(),
                "generators": [g.get_state() for g in data_generators(train_loader)],
                "rows": [list(r) for r in rows], "history": [dataclasses.asdict(e) for e in history],
                "best_epoch": best["epoch"], "best_acc": best["acc"], "n_events": n_events,
                "seconds": seconds_before + time.perf_counter() - t_fit}

    def on_epoch(stats: EpochStats) -> None:
        history.append(stats)
        note_events()
        improved = best["epoch"] is None or metric.better(stats.val_acc, best["acc"])
        if improved:
            best.update(epoch=stats.epoch, acc=stats.val_acc)
        if tb is not None:
            tb.epoch(stats, len(rows))
        if files is not None:
            ckpt = checkpoint(stats)
            files.save_checkpoint("last.pt", {**ckpt, "resume": resume_part()})
            if improved:
                files.save_checkpoint("best.pt", ckpt)
            partial = FitResult(tuple(history), tuple(r[3] if math.isfinite(r[3]) else math.nan for r in rows),
                                tuple(r[2] for r in rows), tuple(guard_obj.events if guard_obj else ()),
                                seconds=seconds_before + time.perf_counter() - t_fit)
            files.save_metrics(rows, history)
            files.save_result(make_result(partial, finished=False), final=False)
        if progress is not None:
            progress("epoch", stats.epoch, epochs,
                     f"epoch {stats.epoch}/{epochs}: train loss {stats.train_loss:.4f}"
                     + (f" acc {stats.train_acc:.1%}" if math.isfinite(stats.train_acc) else "")
                     + f"  val loss {stats.val_loss:.4f} {'acc' if metric.name == 'accuracy' else metric.name} "
                     f"{metric.format(stats.val_acc) if metric.name != 'accuracy' else f'{stats.val_acc:.1%}'}  "
                     f"lr {stats.lr:.3g}")

    t_fit = time.perf_counter()
    try:
        if tensorboard and out_dir is not None:
            tb = _TensorBoard(Path(out_dir) / "tb", purge_step=first_step if state is not None else None)
        if first_epoch < epochs:
            fit_result = fit(model, optimizer, train_loader, val_loader, epochs=epochs, scheduler=scheduler,
                             guard=guard_obj, start_epoch=first_epoch, on_step=on_step, on_epoch=on_epoch,
                             **loop_hooks(task))
        else:  # the run had ended in its last epoch (written, but not marked finished)
            fit_result = FitResult((), (), (), tuple(guard_obj.events if guard_obj else ()))
        if first_step or first_epoch:  # a resumed run: its result covers the whole run
            fit_result = FitResult(tuple(history), tuple(r[3] if math.isfinite(r[3]) else math.nan for r in rows),
                                   tuple(r[2] for r in rows), fit_result.events, fit_result.stopped,
                                   seconds_before + fit_result.seconds)
        result = make_result(fit_result, finished=True)
        if files is not None:
            files.save_metrics(rows, history)
            files.save_result(result, final=True)
    finally:
        if tb is not None:
            tb.close()
        if claim is not None:
            claim.release()
    if result.stopped:
        log.warning("training stopped early: %s", result.stopped)
    return result


def _held_run(out: Path) -> list[str]:
    return [name for name in RUN_FILES if (out / name).exists()]


def _refuse_held_run(out: Path) -> None:
    held = _held_run(out)
    if held:
        raise ConfigError(f"{out} holds another training run ({', '.join(held)}); continue it with resume, "
                          "replace it with force, or choose another output directory", argument="out_dir")


def _remove_run(out: Path) -> None:
    """The files of the run in ``out`` (and only those: a user's own files stay)."""
    for name in RUN_FILES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for tmp in out.glob(".*.tmp"):  # what a killed atomic write left
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``last.pt`` / ``best.pt`` (tensors and plain values only: ``weights_only``
    loading, so a checkpoint cannot run code); :class:`DataError` when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such checkpoint")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a checkpoint, or holding arbitrary objects
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: not a readable lrscout checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise DataError(f"{p}: not an lrscout training checkpoint (version {CHECKPOINT_VERSION})")
    return ckpt


def _resume_state(out: Path, settings: dict[str, Any], lr: float | None) -> dict[str, Any]:
    """The interrupted run's last.pt, checked against the settings of this call."""
    path = out / "last.pt"
    if not path.exists():
        what = "an interrupted run's" if _held_run(out) else "a run's"
        raise ConfigError(f"{out} holds no last.pt to resume (not {what} folder, or it stopped before its first "
                          "epoch ended); start it again with force")
    state = load_checkpoint(path)
    if not isinstance(state.get("resume"), dict):
        raise DataError(f"{path}: written without resume information (an older lrscout); start again with force")
    run = state["resume"]["run"]
    diff = sorted(k for k in settings if _normal(run.get(k)) != _normal(settings[k]))
    if lr is not None and lr != run["lr"]:
        diff.append("lr")
    if diff:
        raise ConfigError(f"{out} holds a run with other settings ({', '.join(diff)}); resume it with its own "
                          "settings (resume_train(out_dir)) or replace it with force", argument="out_dir")
    info = out / "train.json"
    if info.exists():
        try:
            finished = json.loads(info.read_text(encoding="utf-8")).get("finished")
        except (OSError, json.JSONDecodeError, AttributeError):
            finished = False
        if finished:
            raise ConfigError(f"{out} holds a finished run; there is nothing to resume")
    return {**state, "resume": {**state["resume"], "run": run}}


def _normal(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def resume_train(out_dir: str | os.PathLike[str], *, progress: TrainProgress | None = None) -> TrainResult:
    """Continue the interrupted run in ``out_dir`` with the settings it was started with
    (read from its ``last.pt``). Example::

        result = lrscout.training.resume_train("runs/digits")
    """
    ckpt = load_checkpoint(Path(out_dir) / "last.pt")
    extra = ckpt.get("resume")
    if not isinstance(extra, dict):
        raise DataError(f"{out_dir}/last.pt: written without resume information; start again with force")
    run = extra["run"]
    try:
        task = Task(**run["task"])
    except TypeError as exc:
        raise DataError(f"{out_dir}/last.pt: its task cannot be rebuilt ({exc})") from None
    return train(task, run["lr"], run["schedule"], run["epochs"], out_dir=out_dir, guard=run["guard"],
                 guard_factor=run["guard_factor"], max_recoveries=run["max_recoveries"],
                 tensorboard=run["tensorboard"], progress=progress, resume=True, **run["schedule_params"])


def _find_progress(progress: TrainProgress) -> Callable[[int, float, float], None]:
    def report(i: int, lr: float, loss: float) -> None:
        progress("find", i + 1, FIND_NUM_ITER, f"lr {lr:.2e}  loss {loss:.3f}")

    return report
