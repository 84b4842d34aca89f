"""One trial of a selection: train a fresh model at one LR on the user's protocol.

Two kinds of trial (``TrialSpec.kind``), one worker: ``"lr"`` trains the task's model with
one LR for every parameter (``select``); ``"groups"`` trains it with discriminative LRs,
``lr`` for the head and ``lr * ratio`` for the backbone (:func:`lrscout.models.param_groups`,
with ``layer_decay``), the backbone frozen for the first ``freeze_epochs`` of the protocol
(compressed with the schedule), for ``finetune``. The successive-halving driver
(:mod:`lrscout.selection.driver`) runs both the same way.

A trial is described by plain JSON (:class:`TrialSpec`, plus the task), so any backend can
ship it to a worker process or a Ray node, and its outcome comes back as plain JSON
(:class:`TrialResult`). Every trial of a task starts from the same weights (the task's
seed) and sees the same batches; only the LR differs.

Trial lengths are optimizer steps of the protocol, not epochs: a short trial may end
inside an epoch (it is validated there), so a one-epoch protocol has short trials too.

* A short trial of a *restarted* plan trains the full protocol's schedule compressed into
  its ``S`` steps: planned LR at step ``t`` of ``S`` = full plan at step ``floor(t T / S)``
  of ``T``, so a decay at 30% of the run still happens at 30% of the short run.
* A short trial of a *continued* plan trains the first ``S`` steps of the full protocol
  and saves a checkpoint (model, optimizer, scheduler, torch CPU and CUDA RNG); the
  promoted trial loads it and goes on. The data order is fast-forwarded by drawing the
  skipped batches from the same loader (batch order and augmentation alike) without
  training on them, so the continuation equals an uninterrupted run bit for bit. When the
  checkpoint is missing (deleted, or on another node of a cluster) the trial retrains
  the prefix instead: the same numbers, more cost, and ``steps_trained`` says so.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from .._io import atomic_write
from ..errors import ConfigError, DataError
from ..protocol import Evaluation, TrainingTask, loop_hooks, steps_per_epoch
from ..schedules import ScheduleSpec
from ..schedules.torch_adapter import set_base_lr
from ..models import freeze_backbone, param_groups, unfreeze
from ..task import Task
from ..training import fit
from ..training.loop import FitResult
from ..training.result import TrainResult

log = logging.getLogger(__name__)

#: Batch size for validation passes (only speed depends on it).
EVAL_BATCH = 512

#: The kinds of trial :func:`run_trial` knows, and the extra hyper-parameters each takes
#: in ``TrialSpec.params`` (with their defaults).
TRIAL_KINDS: dict[str, dict[str, Any]] = {
    "lr": {},
    "groups": {"ratio": 1.0, "layer_decay": 1.0, "freeze_epochs": 0},
}


@dataclass(frozen=True)
class TrialSpec:
    """What to train: candidate ``candidate`` at ``lr``, in ``rung``, until step ``steps``.

    ``schedule`` is the full protocol's :class:`ScheduleSpec` JSON at this LR; ``compress``
    squeezes it into ``steps`` optimizer steps; ``parent`` names the trial whose
    checkpoint at step ``start_step`` this one continues; ``checkpoint`` asks for one at
    the end (with the run's record, so a driver can take the trained model from it). Steps
    count from 0 at the start of the protocol. ``kind`` is one of :data:`TRIAL_KINDS`,
    ``params`` its extra hyper-parameters (``"groups"``: ``ratio``, ``layer_decay``,
    ``freeze_epochs``); ``lr`` is the head's LR there.
    """

    trial_id: str
    candidate: int
    lr: float
    rung: int
    steps: int
    schedule: dict[str, Any]
    compress: bool = False
    start_step: int = 0
    parent: str | None = None
    checkpoint: bool = False
    kind: str = "lr"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.start_step < self.steps:
            raise ConfigError(f"trial {self.trial_id}: need 0 <= start step < steps, got {self.start_step}, "
                              f"{self.steps}")
        if self.kind not in TRIAL_KINDS:
            raise ConfigError(f"unknown trial kind {self.kind!r}; known: {', '.join(TRIAL_KINDS)}")
        unknown = set(self.params) - set(TRIAL_KINDS[self.kind])
        if unknown:
            raise ConfigError(f"trial kind {self.kind!r} takes no {', '.join(sorted(unknown))}")

    def param(self, name: str) -> Any:
        """The extra hyper-parameter ``name`` of this kind (its default when not given)."""
        return self.params.get(name, TRIAL_KINDS[self.kind][name])

    @property
    def epochs(self) -> float:
        """Length in epochs of the protocol (a fraction when it ends inside an epoch)."""
        return self.steps / int(self.schedule["steps_per_epoch"])

    @property
    def full(self) -> bool:
        """True when the trial trains to the end of the protocol."""
        return self.steps == int(self.schedule["epochs"]) * int(self.schedule["steps_per_epoch"])

    def to_json(self) -> dict[str, Any]:
        data = {
            "trial_id": self.trial_id, "candidate": self.candidate, "lr": self.lr, "rung": self.rung,
            "steps": self.steps, "schedule": self.schedule, "compress": self.compress,
            "start_step": self.start_step, "parent": self.parent, "checkpoint": self.checkpoint,
        }
        if self.kind != "lr":  # select's trials keep the JSON they always had
            data.update(kind=self.kind, params=dict(self.params))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(
            trial_id=str(data["trial_id"]), candidate=int(data["candidate"]), lr=float(data["lr"]),
            rung=int(data["rung"]), steps=int(data["steps"]), schedule=dict(data["schedule"]),
            compress=bool(data.get("compress", False)), start_step=int(data.get("start_step", 0)),
            parent=data.get("parent"), checkpoint=bool(data.get("checkpoint", False)),
            kind=str(data.get("kind", "lr")), params=dict(data.get("params", {})),
        )


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def json_score(x: float) -> float | str:
    """A score as strict JSON: a number, or the text ``"nan"`` / ``"inf"`` / ``"-inf"`` (a
    collapsed run's score), which ``float()`` reads back."""
    return float(x) if math.isfinite(x) else str(float(x))


@dataclass(frozen=True)
class EpochRecord:
    """Validation after one epoch, or after the part of it a trial trained (``epoch``
    counts from 1 within the protocol; ``step`` is the protocol step it was taken at)."""

    epoch: int
    val_acc: float
    val_loss: float | None
    train_loss: float | None
    lr: float
    step: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "val_acc": json_score(self.val_acc), "val_loss": self.val_loss,
                "train_loss": self.train_loss, "lr": self.lr}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EpochRecord:
        return cls(int(d["epoch"]), float(d["val_acc"]), d.get("val_loss"), d.get("train_loss"), float(d["lr"]),
                   int(d.get("step", 0)))


@dataclass(frozen=True)
class TrialResult:
    """How a trial ended: final validation accuracy (0..1) and loss, health, its curve.

    ``collapsed`` is true when the loss became NaN/inf, or when the accuracy is no better
    than always answering the most frequent class *and* the validation loss is no better
    than a uniform guess (``ln K``): diverged, or learned nothing (a slow start that has
    begun to learn is not collapsed); ``steps_trained`` is what it cost in optimizer
    steps (``steps - start_step``, or ``steps`` when a missing checkpoint forced a
    retrain; fewer when the loss became NaN and the run stopped).
    """

    spec: TrialSpec
    val_acc: float
    val_loss: float | None
    collapsed: bool
    history: tuple[EpochRecord, ...] = ()
    note: str | None = None
    steps_trained: int = 0
    seconds: float = 0.0
    task: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(), "val_acc": json_score(self.val_acc), "val_loss": self.val_loss,
            "collapsed": self.collapsed, "history": [e.to_json() for e in self.history], "note": self.note,
            "steps_trained": self.steps_trained, "seconds": self.seconds, "task": self.task,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrialResult:
        try:
            return cls(
                spec=TrialSpec.from_json(d["spec"]), val_acc=float(d["val_acc"]), val_loss=d.get("val_loss"),
                collapsed=bool(d["collapsed"]), history=tuple(EpochRecord.from_json(e) for e in d.get("history", [])),
                note=d.get("note"), steps_trained=int(d.get("steps_trained", 0)),
                seconds=float(d.get("seconds", 0.0)), task=dict(d.get("task", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed trial result: {exc}") from exc


def compressed_scheduler(optimizer: torch.optim.Optimizer, full: ScheduleSpec, steps: int) -> LambdaLR:
    """The full plan squeezed into ``steps`` optimizer steps: step ``t`` of ``S`` follows
    step ``floor(t * T / S)`` of the full plan's ``T`` steps (same base LRs, same group
    ratios)."""
    short_total = steps
    total = full.total_steps
    set_base_lr(optimizer, full.lr)

    def multiplier(t: int) -> float:
        return full.lr_at(min(total - 1, (t * total) // short_total)) / full.lr

    return LambdaLR(optimizer, lr_lambda=multiplier)


class StepWindow:
    """Steps ``start .. end - 1`` of a loader's epochs, for a training loop that iterates
    once per epoch from epoch ``start // steps_per_epoch``.

    The first pass draws (without training on them) every batch before ``start`` from
    the loader itself, so batch order and augmentation go on exactly as in an
    uninterrupted run, then sets the torch RNG to ``rng_state`` (the state the
    interrupted run saved) before its first batch; every pass stops at step ``end``, so
    the last one may end inside an epoch.
    """

    def __init__(self, loader: Any, start: int, end: int, steps_per_epoch: int,
                 rng_state: torch.Tensor | None = None) -> None:
        self.loader, self.start, self.end, self.spe = loader, start, end, steps_per_epoch
        self.rng_state = rng_state
        self.epoch = start // steps_per_epoch

    @property
    def start_epoch(self) -> int:
        return self.start // self.spe

    @property
    def end_epoch(self) -> int:
        return -(-self.end // self.spe)

    def __iter__(self) -> Iterator[Any]:
        e = self.epoch
        self.epoch += 1
        first, last = max(self.start - e * self.spe, 0), min(self.end - e * self.spe, self.spe)
        if e == self.start // self.spe:
            for _ in range(e):  # whole epochs before the start, drawn and dropped
                for _ in self.loader:
                    pass
            if first == 0:  # the interrupted run stopped at an epoch's end: before this epoch's draws
                self._restore()
        batches = iter(self.loader)
        for _ in range(first):  # the interrupted run stopped inside this epoch: after these draws
            next(batches)
        self._restore()
        for _, batch in zip(range(last - first), batches):
            yield batch

    def _restore(self) -> None:
        if self.rng_state is not None:
            torch.set_rng_state(self.rng_state)
            self.rng_state = None


def checkpoint_path(checkpoint_dir: str | Path, trial_id: str) -> Path:
    return Path(checkpoint_dir) / f"{trial_id}.pt"


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> Any:
    """A trial checkpoint; :class:`DataError` when the file is truncated or corrupt."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises zip / pickle / EOF / runtime errors alike
        raise DataError(f"trial checkpoint {path} is truncated or corrupt ({type(exc).__name__}); delete it "
                        "to retrain that trial, or use another out_dir", argument="out_dir") from exc


def default_weight_decay(task: TrainingTask) -> float:
    """The weight decay ``task``'s optimizer applies by default (AdamW: 0.01)."""
    probe = task.build_optimizer([torch.zeros(1, requires_grad=True)])
    return float(probe.defaults.get("weight_decay", 0.0))


@dataclass
class TrialRun:
    """A trial trained in this process: the model, the loop's record, the outcome, and the
    planned parameter groups (``name``, base ``lr``, ``weight_decay``, ``params`` count;
    one group for a ``"lr"`` trial)."""

    model: nn.Module
    fit: FitResult
    result: TrialResult
    groups: tuple[dict[str, Any], ...]

    def train_result(self, steps_per_epoch: int) -> TrainResult:
        """The run as a :class:`TrainResult` (LR from the trial, schedule its full plan)."""
        best = max(self.fit.epochs, key=lambda e: e.val_acc).epoch if self.fit.epochs else None
        return TrainResult(lr=self.result.spec.lr, lr_source="select", schedule=self.result.spec.schedule,
                           fit=self.fit, steps_per_epoch=steps_per_epoch, best_epoch=best, task=dict(self.result.task))


def _optimizer(task: TrainingTask, model: nn.Module, spec: TrialSpec) -> tuple[torch.optim.Optimizer, tuple[dict[str, Any], ...]]:
    if spec.kind == "groups":
        groups = param_groups(model, spec.lr, spec.param("ratio"), layer_decay=spec.param("layer_decay"),
                              weight_decay=default_weight_decay(task))
        planned = tuple({"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"],
                         "params": len(g["params"])} for g in groups)
        return task.build_optimizer(groups, spec.lr), planned
    params = list(model.parameters())
    optimizer = task.build_optimizer(params, lr=spec.lr)
    return optimizer, ({"name": "all", "lr": spec.lr, "weight_decay": getattr(task, "weight_decay", 0.0),
                        "params": len(params)},)


def train_trial(task: TrainingTask, spec: TrialSpec, checkpoint_dir: str | Path | None = None,
                on_step: Callable[[int, float, float], None] | None = None) -> TrialRun:
    """Train one trial in this process and measure it on the validation split (never the
    test split); ``on_step(step, lr, loss)`` after every optimizer step."""
    t0 = time.perf_counter()
    train = task.train_loader()
    val = task.val_loader()
    full = ScheduleSpec.from_json(spec.schedule)
    steps = steps_per_epoch(task)
    if full.steps_per_epoch != steps:
        raise DataError(f"trial {spec.trial_id} was planned for {full.steps_per_epoch} steps per epoch, "
                        f"the data gives {steps}")
    freeze_epochs = int(spec.param("freeze_epochs")) if spec.kind == "groups" else 0
    if not 0 <= freeze_epochs < full.epochs:
        raise ConfigError(f"freeze_epochs must be in [0, {full.epochs - 1}] for {full.epochs} epochs, "
                          f"got {freeze_epochs}")
    model = task.build_model()  # seeded: every candidate starts from the same weights
    optimizer, planned = _optimizer(task, model, spec)
    scheduler: Any = compressed_scheduler(optimizer, full, spec.steps) if spec.compress else full.build(optimizer)
    spe = full.steps_per_epoch
    start, rng = 0, None
    if spec.parent is not None:
        path = checkpoint_path(checkpoint_dir, spec.parent) if checkpoint_dir is not None else None
        if path is not None and path.exists():
            state = load_checkpoint(path, task.torch_device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            rng = state["rng"].cpu()  # set once the skipped batches are drawn (StepWindow)
            if state.get("cuda_rng") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda_rng"]])
            start = spec.start_step
        else:
            log.info("trial %s: no checkpoint of %s, retraining its %d steps", spec.trial_id, spec.parent,
                     spec.start_step)
    # gradual unfreezing: the head alone for the same fraction of the (compressed) steps
    freeze_steps = (freeze_epochs * spec.steps) // full.epochs
    if start > 0 and freeze_steps > 0:
        raise ConfigError("a continued trial cannot freeze its backbone (plans with freezing restart)")
    frozen = freeze_backbone(model) if freeze_steps > 0 else []

    def step_hook(step: int, lr: float, loss: float) -> None:
        if frozen and step + 1 == freeze_steps:
            unfreeze(frozen)
            log.info("trial %s: unfroze the backbone after %d steps", spec.trial_id, freeze_steps)
        if on_step is not None:
            on_step(step, lr, loss)

    window = StepWindow(train, start, spec.steps, spe, rng)
    try:
        result = fit(model, optimizer, window, val, epochs=window.end_epoch, scheduler=scheduler,
                     start_epoch=window.start_epoch, on_step=step_hook if (frozen or on_step is not None) else None,
                     **loop_hooks(task))
    finally:
        unfreeze(frozen)  # a run that stopped while frozen leaves a trainable model
    history = tuple(
        EpochRecord(e.epoch, e.val_acc, _finite_or_none(e.val_loss), _finite_or_none(e.train_loss), e.lr,
                    min(e.epoch * spe, spec.steps))
        for e in result.epochs if min(e.epoch * spe, spec.steps) > spec.start_step
    )
    val_loss = _finite_or_none(result.final_val_loss)
    acc = result.final_val_acc
    # halving.collapse_note's rule, with the task's own learned_nothing (a named Task's is the chance rule)
    note = result.stopped if result.stopped is not None else (
        "validation loss not finite" if val_loss is None else task.learned_nothing(Evaluation(acc, val_loss)))
    outcome = TrialResult(
        spec=spec, val_acc=acc, val_loss=val_loss, collapsed=note is not None, history=history, note=note,
        steps_trained=len(result.step_loss), seconds=time.perf_counter() - t0, task=task.to_json(),
    )
    run = TrialRun(model, result, outcome, planned)
    if spec.checkpoint and checkpoint_dir is not None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                 "cuda_rng": list(torch.cuda.get_rng_state_all()) if task.torch_device.type == "cuda" else [],
                 "train": run.train_result(spe).to_json(), "groups": [dict(g) for g in planned]}
        atomic_write(checkpoint_path(checkpoint_dir, spec.trial_id), lambda p: torch.save(state, p))
    return run


def run_trial(task: TrainingTask, spec: TrialSpec, checkpoint_dir: str | Path | None = None) -> TrialResult:
    """Train one trial and measure it on the validation split (never the test split)."""
    return train_trial(task, spec, checkpoint_dir).result


def load_trained(task: TrainingTask, result: TrialResult, checkpoint_dir: str | Path | None) -> TrialRun | None:
    """The model and record that ``result``'s trial, run with ``checkpoint=True``, left in
    ``checkpoint_dir``, rebuilt in this process; ``None`` when the checkpoint is gone."""
    path = checkpoint_path(checkpoint_dir, result.spec.trial_id) if checkpoint_dir is not None else None
    if path is None or not path.exists():
        return None
    state = load_checkpoint(path, task.torch_device)
    if "train" not in state:
        return None
    model = task.build_model()
    model.load_state_dict(state["model"])
    return TrialRun(model, TrainResult.from_json(state["train"]).fit, result,
                    tuple(dict(g) for g in state["groups"]))


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op CPU threads (``None``: leave as is), then restore.

    CPU results depend on the thread count (reductions are split differently), so every
    trial and the range test of a selection run with the same count, on any backend.
    """
    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def working_dir(path: str | None) -> Iterator[None]:
    """Run the block in ``path`` when it exists here (a Ray worker starts in its trial
    folder; relative data and output paths are the driver's), then go back."""
    if not path or not Path(path).is_dir() or Path(path).resolve() == Path.cwd().resolve():
        yield
        return
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON in, JSON out: the entry point backends run in their workers.

    ``payload = {"task": Task JSON or a TrainingTask object, "trial": TrialSpec JSON, "checkpoint_dir": str | None,
    "threads": int | None, "workdir": str | None}``: ``threads`` fixes torch's CPU threads
    for the trial; relative paths (data, checkpoints) are read from ``workdir``, the
    driver's working directory.
    """
    task = Task(**payload["task"]) if isinstance(payload["task"], dict) else payload["task"]
    spec = TrialSpec.from_json(payload["trial"])
    with working_dir(payload.get("workdir")), torch_threads(payload.get("threads")):
        return run_trial(task, spec, payload.get("checkpoint_dir")).to_json()
