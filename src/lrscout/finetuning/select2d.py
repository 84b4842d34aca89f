"""Choose the head LR and the backbone ratio together: successive halving over a 2-D grid.

Each candidate is a pair ``(head_lr, ratio)``; a trial trains a fresh copy of the
pretrained model (same seeded head, same batches) with :func:`param_groups` at that pair.
The bookkeeping is :mod:`lrscout.selection.halving`'s (:class:`Plan`, :func:`promote` by
:data:`RANKING`); the rungs are
:func:`plan_grid`'s, up to three with a third advancing each time, since the grid is
larger than select's 1-D ladder. Plans are *restarted*:
a short trial trains the full schedule compressed into its epochs
(:func:`lrscout.selection.trial.compressed_scheduler`), and freezing is compressed with it
(the head trains alone for the same fraction of the steps). The last rung trains the full
protocol, so the winner's run *is* the fine-tuned model: no retraining.

The grid (pure functions, numbers in and out):

* head LRs: :func:`lrscout.selection.candidates.candidate_lrs` read off the first range test
  (its full ladder, or fewer to fit a budget);
* ratios: :data:`DEFAULT_RATIOS`, or three log-spaced ratios across the second range
  test's ratio interval (capped at 1); ratio 1 (one LR for every group) is always in, so
  the choice of discriminative LRs is always measured against it.

Example::

    grid = candidate_grid((1e-3, 3e-3, 1e-2), (0.1, 1.0))
    selection = select_groups(task, grid, epochs=3)
    selection.best.head_lr, selection.best.ratio
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..schedules import ScheduleSpec, schedule_for
from ..selection.halving import Outcome, Plan, Rung, promote, rank, short_length
from ..selection.trial import compressed_scheduler
from ..task import Task
from ..training import FitResult, fit
from .groups import freeze_backbone, param_groups, unfreeze

log = logging.getLogger(__name__)

#: Backbone ratios tried when no second range test is run (ULMFiT-style steps of ~3x).
DEFAULT_RATIOS = (0.1, 0.3, 1.0)
#: Head LRs per ratio at most (the grid is head LRs x ratios): select's full ladder.
MAX_HEAD_LRS = 6
#: Of each rung, a third of the trials advance (select keeps half of a 1-D ladder; the
#: grid is three times larger).
GRID_ETA = 3
EVAL_BATCH = 512
#: How trials are ranked (:func:`lrscout.selection.halving.promote`): healthy first, then the
#: sum of the accuracy rank and the loss rank. Fine-tuning sets are small (150 validation
#: images: one image is 0.7 points) and the grid is 18 trials wide, so ranking by accuracy
#: alone lets one lucky image pick the winner. Measured (benchmarks/finetune.py, 8 seeds,
#: 1,000 MNIST images), test accuracy against accuracy-first ranking: discriminative
#: +0.1 (Adam) and +0.3 (SGD + momentum) points; one LR -0.1 and +2.1 (two seeds had
#: picked runs that ended at 84 %).
RANKING = "rank_sum"

#: ``progress(done, total, info)`` after every trial.
SelectProgress = Callable[[int, int, str], None]


def ratio_candidates(interval: tuple[float, float] | None = None, count: int = 3) -> tuple[float, ...]:
    """Backbone ratios to try, increasing, always ending with 1.0.

    Without an interval: :data:`DEFAULT_RATIOS`. With the second range test's ratio
    interval ``(lo, hi)``: ``count`` log-spaced ratios from ``lo`` to ``min(hi, 1)``
    (rounded to 3 significant digits), then 1.0.

    >>> ratio_candidates((0.01, 5.0))
    (0.01, 0.1, 1.0)
    """
    if interval is None:
        return DEFAULT_RATIOS
    lo, hi = float(interval[0]), min(float(interval[1]), 1.0)
    if not (math.isfinite(lo) and lo > 0) or count < 1:
        raise ConfigError(f"need a positive ratio interval and count >= 1, got {interval}, {count}")
    if lo >= hi:
        points = [min(lo, 1.0)]
    else:
        points = list(10 ** np.linspace(math.log10(lo), math.log10(hi), count))
    rounded = {float(f"{p:.3g}") for p in points} | {1.0}
    return tuple(sorted(rounded))


@dataclass(frozen=True)
class Candidate:
    """One point of the grid: the head LR and backbone LR / head LR."""

    head_lr: float
    ratio: float


def candidate_grid(head_lrs: Sequence[float], ratios: Sequence[float]) -> tuple[Candidate, ...]:
    """Every (head LR, ratio) pair, ratio-major, each axis increasing."""
    if not head_lrs or not ratios:
        raise ConfigError("the candidate grid needs at least one head LR and one ratio")
    for lr in head_lrs:
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"head LR candidates must be positive, got {lr!r}")
    for r in ratios:
        if not (math.isfinite(r) and r >= 0):
            raise ConfigError(f"ratio candidates must be >= 0, got {r!r}")
    return tuple(Candidate(float(h), float(r)) for r in sorted(set(ratios)) for h in sorted(set(head_lrs)))


def plan_grid(n: int, epochs: int) -> Plan:
    """The halving plan for ``n`` candidates over an ``epochs``-epoch protocol.

    Rungs end at ``e0 = short_length(epochs)`` (a third), at ``round(2 * epochs / 3)``
    when that lies strictly between and thins the field, and at ``epochs``; rung ``i + 1``
    keeps ``max(2, ceil(size_i / GRID_ETA))`` trials. At least two runs reach the full
    protocol: a lone finalist that collapses late (a one-cycle peak it only meets in the
    full run) would leave nothing to choose instead. A one-epoch protocol, two candidates
    or one are a single rung of full runs. Cost in full runs: ``plan.cost_runs``.

    >>> [(r.length, r.size) for r in plan_grid(18, 3).rungs], round(plan_grid(18, 3).cost_runs, 2)
    ([(1, 18), (2, 6), (3, 2)], 12.0)
    """
    if n < 1 or epochs < 1:
        raise ConfigError(f"need at least one candidate and one epoch, got {n}, {epochs}")

    def keep(size: int) -> int:
        return max(2, math.ceil(size / GRID_ETA))

    if n <= 2 or epochs == 1:
        return Plan((Rung(epochs, n),), epochs, continued=False, unit="epochs")
    rungs = [Rung(short_length(epochs), n)]
    size = keep(n)
    middle = int(math.floor(2 * epochs / 3 + 0.5))
    if rungs[0].length < middle < epochs and keep(size) < size:  # else the middle rung would thin nothing
        rungs.append(Rung(middle, size))
        size = keep(size)
    rungs.append(Rung(epochs, size))
    return Plan(tuple(rungs), epochs, continued=False, unit="epochs")


@dataclass(frozen=True)
class GroupTrial:
    """How one candidate did in one rung (validation split only)."""

    candidate: int
    head_lr: float
    ratio: float
    rung: int
    epochs: int
    val_acc: float
    val_loss: float | None
    collapsed: bool
    history: tuple[float, ...] = ()  # validation accuracy after each epoch
    note: str | None = None
    seconds: float = 0.0

    def outcome(self) -> Outcome:
        return Outcome(lr=self.head_lr, score=self.val_acc, loss=self.val_loss, collapsed=self.collapsed)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate, "head_lr": self.head_lr, "ratio": self.ratio, "rung": self.rung,
            "epochs": self.epochs, "val_acc": self.val_acc, "val_loss": self.val_loss,
            "collapsed": self.collapsed, "history": list(self.history), "note": self.note, "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GroupTrial:
        try:
            return cls(int(d["candidate"]), float(d["head_lr"]), float(d["ratio"]), int(d["rung"]),
                       int(d["epochs"]), float(d["val_acc"]), d.get("val_loss"), bool(d["collapsed"]),
                       tuple(float(a) for a in d.get("history", ())), d.get("note"), float(d.get("seconds", 0.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed trial in finetune.json: {exc}") from exc


@dataclass
class TrainedRun:
    """A finished run: the model, the loop's record, the schedule, and the planned groups
    (``name``, base ``lr``, ``weight_decay``, ``params`` count)."""

    model: nn.Module
    fit: FitResult
    schedule: ScheduleSpec
    groups: tuple[dict[str, Any], ...]


def default_weight_decay(task: Task) -> float:
    """The weight decay ``task``'s optimizer applies by default (AdamW: 0.01)."""
    probe = task.build_optimizer([torch.zeros(1, requires_grad=True)])
    return float(probe.defaults.get("weight_decay", 0.0))


def train_groups(
    task: Task,
    head_lr: float,
    ratio: float,
    epochs: int,
    *,
    schedule: str = "onecycle",
    protocol_epochs: int | None = None,
    layer_decay: float = 1.0,
    freeze_epochs: int = 0,
    on_step: Callable[[int, float, float], None] | None = None,
) -> TrainedRun:
    """Train a fresh ``task`` model with discriminative LRs for ``epochs`` epochs.

    The schedule is planned for ``protocol_epochs`` (default ``epochs``) and compressed
    into ``epochs`` when they differ; the backbone is frozen for the first
    ``freeze_epochs / protocol_epochs`` of the steps (gradual unfreezing: head first,
    then everything). Biases and norms get no weight decay; the rest gets the task's.
    ``on_step(step, lr, loss)`` is called after every optimizer step.
    """
    full_epochs = protocol_epochs or epochs
    if not 0 <= freeze_epochs < full_epochs:
        raise ConfigError(f"freeze_epochs must be in [0, {full_epochs - 1}] for {full_epochs} epochs, got {freeze_epochs}")
    splits = task.splits()
    train_loader = task.train_loader()
    val_loader = splits.loader("val", EVAL_BATCH)
    model = task.build_model(splits.info)  # seeded: every candidate starts from the same head
    groups = param_groups(model, head_lr, ratio, layer_decay=layer_decay, weight_decay=default_weight_decay(task))
    optimizer = task.build_optimizer(groups, head_lr)
    planned = tuple({"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"], "params": len(g["params"])}
                    for g in groups)
    spec = schedule_for(head_lr, schedule, full_epochs, len(train_loader))
    scheduler: Any = (spec.build(optimizer) if epochs == full_epochs else
                      compressed_scheduler(optimizer, spec, epochs * len(train_loader)))
    freeze_steps = (freeze_epochs * epochs * len(train_loader)) // full_epochs
    frozen = freeze_backbone(model) if freeze_steps > 0 else []

    def step_hook(step: int, lr: float, loss: float) -> None:
        if frozen and step + 1 == freeze_steps:
            unfreeze(frozen)
            log.info("unfroze the backbone after %d steps", freeze_steps)
        if on_step is not None:
            on_step(step, lr, loss)

    try:
        result = fit(model, optimizer, train_loader, val_loader, epochs=epochs, scheduler=scheduler,
                     on_step=step_hook)
    finally:
        unfreeze(frozen)  # a run that stopped while frozen leaves a trainable model
    return TrainedRun(model, result, spec, planned)


def _majority(task: Task) -> float:
    labels = task.splits().val.tensors[1]
    return float(torch.bincount(labels).max()) / len(labels)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class GroupSelection:
    """The halving run: its plan, every trial, and the winner's full-length run."""

    candidates: tuple[Candidate, ...]
    plan: Plan
    trials: tuple[GroupTrial, ...]
    best: GroupTrial
    run: TrainedRun
    seconds: float


def select_groups(
    task: Task,
    candidates: Sequence[Candidate],
    epochs: int,
    *,
    schedule: str = "onecycle",
    layer_decay: float = 1.0,
    freeze_epochs: int = 0,
    progress: SelectProgress | None = None,
) -> GroupSelection:
    """Successive halving over ``candidates`` (:func:`plan_grid`); returns every trial and
    the winner's run. A trial is *collapsed* when training stopped on a
    non-finite loss or its validation accuracy is no better than always answering the
    most frequent class; collapsed trials never advance.
    """
    if not candidates:
        raise ConfigError("no candidates to select from")
    t0 = time.perf_counter()
    plan = plan_grid(len(candidates), epochs)
    chance = _majority(task) + 0.5 / len(task.splits().val)
    total = sum(r.size for r in plan.rungs)
    alive = list(range(len(candidates)))
    trials: list[GroupTrial] = []
    last_runs: list[TrainedRun] = []
    done = 0
    for rung_index, rung in enumerate(plan.rungs):
        rung_trials: list[GroupTrial] = []
        last = rung_index == len(plan.rungs) - 1
        for c in alive:
            cand = candidates[c]
            t1 = time.perf_counter()
            run = train_groups(task, cand.head_lr, cand.ratio, rung.length, schedule=schedule, protocol_epochs=epochs,
                               layer_decay=layer_decay, freeze_epochs=freeze_epochs)
            res = run.fit
            acc, loss = res.final_val_acc, _finite(res.final_val_loss)
            collapsed = res.stopped is not None or loss is None or acc <= chance
            note = res.stopped or ("validation loss not finite" if loss is None else
                                   ("chance accuracy" if collapsed else None))
            trial = GroupTrial(c, cand.head_lr, cand.ratio, rung_index, rung.length, acc, loss, collapsed,
                               tuple(e.val_acc for e in res.epochs), note, time.perf_counter() - t1)
            rung_trials.append(trial)
            if last:
                last_runs.append(run)
            done += 1
            log.info("rung %d: head lr %.3g ratio %.3g -> val acc %.4f%s", rung_index, cand.head_lr, cand.ratio,
                     acc, " (collapsed)" if collapsed else "")
            if progress is not None:
                progress(done, total, f"rung {rung_index}: head {cand.head_lr:.2e} x{cand.ratio:g} -> {acc:.1%}")
        trials.extend(rung_trials)
        outcomes = [t.outcome() for t in rung_trials]
        if not last:
            keep = promote(outcomes, plan.rungs[rung_index + 1].size, by=RANKING)
            alive = [rung_trials[i].candidate for i in keep]
            if not alive:
                raise ConfigError("every candidate collapsed in the short trials; lower the LRs or check the data")
    order = promote(outcomes, len(outcomes), by=RANKING) or rank(outcomes)  # all collapsed: the least bad
    win = order[0]
    return GroupSelection(tuple(candidates), plan, tuple(trials), rung_trials[win], last_runs[win],
                          time.perf_counter() - t0)
