"""Choose the head LR and the backbone ratio together: successive halving over a 2-D grid.

Each candidate is a pair ``(head_lr, ratio)``; a trial trains a fresh copy of the
pretrained model (same seeded head, same batches) with :func:`param_groups` at that pair: a
``"groups"`` trial of :mod:`lrscout.selection.trial`, run by ``select``'s own driver
(:mod:`lrscout.selection.driver`: the same backends, per-trial files, resume and collapse
rule). The bookkeeping is :mod:`lrscout.selection.halving`'s (:class:`Plan`, :func:`promote`
by :data:`RANKING`); the rungs are
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
from torch import nn

from ..backends import Backend
from ..errors import ConfigError, DataError
from ..protocol import TrainingTask, steps_in
from ..schedules import ScheduleSpec, schedule_for
from ..selection.driver import THREADS, OnTrial, backend_for, outcome, run_rungs
from ..selection.halving import Outcome, Plan, Rung, promote, rank, short_length
from ..selection.store import RunDir
from ..selection.trial import TrialResult, TrialSpec, load_trained, torch_threads, train_trial
from ..task import Task
from ..training import FitResult

log = logging.getLogger(__name__)

#: Backbone ratios tried when no second range test is run (ULMFiT-style steps of ~3x).
DEFAULT_RATIOS = (0.1, 0.3, 1.0)
#: Head LRs per ratio at most (the grid is head LRs x ratios): select's full ladder.
MAX_HEAD_LRS = 6
#: Of each rung, a third of the trials advance (select keeps half of a 1-D ladder; the
#: grid is three times larger).
GRID_ETA = 3
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

    @classmethod
    def from_trial(cls, t: TrialResult) -> GroupTrial:
        """The fine-tuning view of a ``"groups"`` trial of the driver."""
        return cls(t.spec.candidate, t.spec.lr, float(t.spec.param("ratio")), t.spec.rung, round(t.spec.epochs),
                   t.val_acc, t.val_loss, t.collapsed, tuple(e.val_acc for e in t.history), t.note, t.seconds)

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


def group_spec(task: TrainingTask, candidate: int, cand: Candidate, rung: int, epochs: int, *, protocol_epochs: int,
               schedule: str = "onecycle", layer_decay: float = 1.0, freeze_epochs: int = 0,
               last: bool = False) -> TrialSpec:
    """The ``"groups"`` trial of ``cand`` in ``rung``: ``epochs`` epochs of the
    ``protocol_epochs``-epoch schedule (compressed when shorter, freezing with it);
    ``last`` keeps its model (a checkpoint the driver takes the winner from)."""
    spe = steps_in(task.train_loader())
    spec = schedule_for(cand.head_lr, schedule, protocol_epochs, spe)
    return TrialSpec(
        trial_id=f"r{rung}-c{candidate}", candidate=candidate, lr=cand.head_lr, rung=rung, steps=epochs * spe,
        schedule=spec.to_json(), compress=epochs < protocol_epochs, checkpoint=last, kind="groups",
        params={"ratio": cand.ratio, "layer_decay": layer_decay, "freeze_epochs": freeze_epochs},
    )


def train_groups(
    task: TrainingTask,
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
    """Train a fresh ``task`` model with discriminative LRs for ``epochs`` epochs, in this
    process (the trial :func:`select_groups` runs on its backend).

    The schedule is planned for ``protocol_epochs`` (default ``epochs``) and compressed
    into ``epochs`` when they differ; the backbone is frozen for the first
    ``freeze_epochs / protocol_epochs`` of the steps (gradual unfreezing: head first,
    then everything). Biases and norms get no weight decay; the rest gets the task's.
    ``on_step(step, lr, loss)`` is called after every optimizer step.
    """
    full_epochs = protocol_epochs or epochs
    spec = group_spec(task, 0, Candidate(head_lr, ratio), 0, epochs, protocol_epochs=full_epochs,
                      schedule=schedule, layer_decay=layer_decay, freeze_epochs=freeze_epochs)
    run = train_trial(task, spec, on_step=on_step)
    return TrainedRun(run.model, run.fit, ScheduleSpec.from_json(spec.schedule), run.groups)


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
    task: TrainingTask,
    candidates: Sequence[Candidate],
    epochs: int,
    *,
    schedule: str = "onecycle",
    layer_decay: float = 1.0,
    freeze_epochs: int = 0,
    progress: SelectProgress | None = None,
    backend: str | Backend = "local",
    workers: int = 1,
    ray_address: str | None = None,
    rundir: RunDir | None = None,
    threads: int | None = THREADS,
    on_trial: OnTrial | None = None,
) -> GroupSelection:
    """Successive halving over ``candidates`` (:func:`plan_grid`); returns every trial and
    the winner's run. Trials run on ``backend`` (``"local"`` with ``workers`` processes,
    ``"ray"``, or a backend object), each with ``threads`` torch CPU threads; each finished
    trial is saved in ``rundir`` (a temporary directory when ``None``), so a killed
    selection given the same directory resumes. A trial is *collapsed* by the rule of
    :func:`lrscout.selection.halving.collapse_note`; collapsed trials never advance.
    The last rung keeps its models, so the winner's run is taken, not retrained (unless
    its checkpoint is gone: then it is retrained here, to the same numbers).
    """
    if not candidates:
        raise ConfigError("no candidates to select from")
    if not 0 <= freeze_epochs < epochs:
        raise ConfigError(f"freeze_epochs must be in [0, {epochs - 1}] for {epochs} epochs, got {freeze_epochs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1 (or None), got {threads}")
    t0 = time.perf_counter()
    plan = plan_grid(len(candidates), epochs)
    runner = backend_for(backend, workers, ray_address, threads)
    total = sum(r.size for r in plan.rungs)
    last = len(plan.rungs) - 1
    done = 0

    def spec_for(c: int, r: int) -> TrialSpec:
        return group_spec(task, c, candidates[c], r, plan.rungs[r].length, protocol_epochs=epochs,
                          schedule=schedule, layer_decay=layer_decay, freeze_epochs=freeze_epochs, last=r == last)

    def report(t: TrialResult) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, f"rung {t.spec.rung}: head {t.spec.lr:.2e} x{t.spec.param('ratio'):g} -> "
                                  f"{t.val_acc:.1%}")
        if on_trial is not None:
            on_trial(t)

    own = rundir is None
    store = RunDir(None, kind="finetune") if rundir is None else rundir
    try:
        with runner:
            rungs = run_rungs(task, plan, range(len(candidates)), spec_for, store, runner, by=RANKING,
                              on_trial=report, threads=threads)
        if len(rungs) < len(plan.rungs):
            raise ConfigError("every candidate collapsed in the short trials; lower the LRs or check the data")
        top = rungs[-1]
        outcomes = [outcome(t) for t in top]
        order = promote(outcomes, len(outcomes), by=RANKING) or rank(outcomes)  # all collapsed: the least bad
        winner = top[order[0]]
        run = load_trained(task, winner, store.trials_dir)
        if run is None:
            log.info("the winner's checkpoint is gone: retraining %s here", winner.spec.trial_id)
            with torch_threads(threads):
                run = train_trial(task, winner.spec)
        store.remove_checkpoints()
    finally:
        if own:
            store.close()
    trials = tuple(GroupTrial.from_trial(t) for results in rungs for t in results)
    best = GroupTrial.from_trial(winner)
    trained = TrainedRun(run.model, run.fit, ScheduleSpec.from_json(winner.spec.schedule), run.groups)
    return GroupSelection(tuple(candidates), plan, trials, best, trained, time.perf_counter() - t0)
