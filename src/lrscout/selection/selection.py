"""``select``: a learning rate verified by short real training runs on the user's protocol.

1. Range test on the task (or the one given): interval, steepest point, onset. Its
   length fits the budget (:func:`~lrscout.selection.halving.plan_range_test`): the
   usual 100 steps on a long protocol, fewer (and a smaller batch) on a short one. A
   budget that cannot buy the range test, two short trials and one finalist is refused
   before anything runs, with the budget that would do.
2. Candidates: a log-spaced ladder from the onset down through the interval
   (:func:`~lrscout.selection.candidates.candidate_lrs`), as many as the budget allows.
3. Successive halving (:mod:`~lrscout.selection.halving`), counted in optimizer steps:
   every candidate trains a third of the protocol's steps with the schedule compressed
   to that length, or, when the schedule has no decay to compress (constant, plateau),
   the first half of the real run (whole epochs for a plateau schedule, which acts per
   epoch); the best go on to the full protocol (a fresh run, or the same run continued).
   When the budget buys a single finalist of a continued plan, the short-run leader's
   lower neighbour on the ladder goes on instead: after half the steps the LR that leads
   is about twice the one that leads after all of them (:func:`uses_horizon`); after a
   short sweep the candidates sit one ladder step lower to leave room for it
   (:func:`window_shift`), and the ladder keeps a 1/3-decade spacing so that the step is
   that factor (:func:`ladder_and_plan`). After a short sweep (a short protocol) the
   budget buys verified finalists instead: two at the default budget (two thirds of a
   decade and a decade below the onset), one more per extra run, all trained to the end
   and compared there (:func:`~lrscout.selection.halving.verified_plan`). When short runs
   collapse, LRs from further down the ladder are added within the budget
   (:func:`~lrscout.selection.driver.run_rungs`).
4. The choice: the best finalist by validation accuracy over the last quarter of the
   full protocol, where finalists within one standard error of the best (on the
   validation split's size) count as tied and the lower validation loss decides
   (:func:`~lrscout.selection.halving.robust_rank`), with its schedule built for it and
   its trained network: the finalist already ran the whole protocol (:func:`with_model`).

Trials run on a backend (:mod:`lrscout.backends`) through the successive-halving driver
(:mod:`lrscout.selection.driver`, which ``finetune`` shares); each finished trial is saved at once
in the output directory, so a killed selection resumes where it stopped. Everything is
seeded by the task: the same task, settings and seed give the same choice on any backend.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..backends import Backend
from ..engine import find_task
from ..engine.rangetest import NONFINITE_STOP
from ..checks import RULES, check_arguments
from ..errors import ConfigError, DataError, LrscoutError
from ..optim import get_optimizer
from ..report import save
from ..report.files import SELECT_MODEL
from ..results import FindResult
from ..schedules import ScheduleSpec, schedule_for
from ..training.run import load_checkpoint
from ..protocol import ACCURACY, Metric, TrainingTask, check_travels, describe, steps_in
from ..task import Task
from .candidates import (ABOVE_ONSET, MAX_COUNT, MAX_SPAN_DECADES, MIN_SPAN_DECADES, PER_DECADE, candidate_lrs,
                         min_loss_lr, window_start)
from .driver import THREADS, OnTrial, backend_for, outcome, run_rungs, run_trials
from .halving import (CONTINUED_FRACTION, FIND_STEPS, SHORT_FIND_STEPS, Plan, RangeTestPlan, Trace,
                      check_budget, is_verified, verified_plan, plan_halving, plan_range_test, rank, robust_rank,
                      short_length)
from .objectives import NO_RANGE_TEST, Objective
from .results import Candidate, SelectResult
from .store import RunDir
from .trial import TrialResult, TrialSpec, load_trained, torch_threads

log = logging.getLogger(__name__)

#: Budget of a selection in full training runs, range test included. Measured in the
#: quality benchmark (36 tasks, 2 seeds, 2026-11-30): 2.5 (costing 2.4 runs) lands -0.0
#: points from a 21-point grid's best on the 17 development tasks and +0.4 to +1.2 on the
#: three held-out sets; 3.5 (3.4 runs) -0.4 / +0.4 to +1.2.
DEFAULT_BUDGET = 2.5

def steps_per_epoch(task: TrainingTask | Objective) -> int:
    """Optimizer steps in one epoch of the task's training split (an objective states them)."""
    if isinstance(task, Objective):
        return task.steps_per_epoch
    return steps_in(task.train_loader())


def find_cost_steps(find: FindResult) -> int:
    """Optimizer steps the range test took, as it recorded them (``config["steps_run"]``).

    A result without that record (written by an older lrscout, or built elsewhere) is
    counted by its points, plus one for a sweep stopped by a non-finite loss (the step it
    did not record). Counting one more for every stopped sweep overcharged a sweep whose
    divergence was caught at its last recorded point: 21 steps for a 20-step sweep, 0.525
    runs instead of the 0.5 it was planned at, and two verified finalists no longer fitted
    the default budget (on 2 of 102 short selections of the quality benchmark)."""
    steps = find.config.get("steps_run")
    if not isinstance(steps, int) or steps < 1:
        nan_stop = bool(find.stop_reason) and str(find.stop_reason).startswith(NONFINITE_STOP)
        steps = len(find.history_lr) + (1 if (find.stopped_early and nan_stop) else 0)
    return steps * int(find.config.get("accumulation_steps", 1) or 1)


def find_cost_runs(find: FindResult, total_steps: int, batch_size: int | None) -> float:
    """What the range test cost in training runs of ``total_steps`` steps of ``batch_size``
    images: its steps, scaled by its batch when it ran on a smaller one (``batch_size``
    None, an objective's unknown batch: counted as the protocol's)."""
    find_batch = (find.config.get("task") or {}).get("batch_size") or batch_size
    if batch_size is None or find_batch is None:
        return find_cost_steps(find) / total_steps
    return find_cost_steps(find) * float(find_batch) / (total_steps * batch_size)


def range_test_plan(task: TrainingTask | Objective, total_steps: int, budget: float,
                    find_kwargs: Mapping[str, Any]) -> RangeTestPlan:
    """The range test ``select`` runs: sized to the budget, unless ``find_kwargs`` fixes
    ``num_iter`` (then that many steps of the task's batch). The user's own tasks keep
    their batches (lrscout cannot rebatch their data): as many steps as the budget's
    share affords, between :data:`~lrscout.selection.halving.MIN_FIND_STEPS` and
    :data:`FIND_STEPS`.

    The share is of at most :data:`DEFAULT_BUDGET`: a larger budget buys more trials on
    the same range test, not a longer one. The candidate ladder is placed relative to the
    sweep's onset, and the onset moves with the sweep's batch and length; measured on the
    short development protocols, a budget of 3.5 that also grew the sweep (to a larger
    batch) read the onset higher and chose worse LRs than the default budget (+3.7 points
    from the grid oracle against +0.2)."""
    budget = min(budget, DEFAULT_BUDGET)
    if not isinstance(task, Task):
        batch = int(getattr(task, "batch_size", 1) or 1)
        if "num_iter" in find_kwargs:
            steps = int(find_kwargs["num_iter"])
            return RangeTestPlan(steps, batch, steps / total_steps)
        sized = plan_range_test(total_steps, batch, budget)
        steps = sized.steps  # at a smaller batch the plan keeps its minimum steps: here at the user's batch
        return RangeTestPlan(steps, batch, steps / total_steps, sized.start_lr)
    if "num_iter" in find_kwargs:
        steps = int(find_kwargs["num_iter"])
        return RangeTestPlan(steps, task.batch_size, steps / total_steps)
    return plan_range_test(total_steps, task.batch_size, budget)


def run_range_test(task: TrainingTask, plan: RangeTestPlan, find_kwargs: Mapping[str, Any]) -> FindResult:
    """The range test of ``plan`` on ``task`` (on a copy of it with the plan's batch size)."""
    sweep = task
    if isinstance(task, Task) and plan.batch_size != task.batch_size:
        sweep = dataclasses.replace(task, batch_size=plan.batch_size)
    kwargs = dict(find_kwargs)
    if plan.steps != FIND_STEPS or "num_iter" in kwargs:
        kwargs["num_iter"] = plan.steps
    if plan.start_lr is not None:
        kwargs.setdefault("start_lr", plan.start_lr)
    return find_task(sweep, **kwargs)


def short_quantum(protocol: ScheduleSpec) -> int:
    """Steps a short trial's length is a multiple of: whole epochs for a schedule that
    acts per epoch (a plateau: its cuts follow epoch-end validations), else 1."""
    return protocol.steps_per_epoch if (not protocol.per_batch and protocol.kind != "constant") else 1


def prefix_exact(protocol: ScheduleSpec, short: int) -> bool:
    """True when the first ``short`` steps of the protocol equal the protocol compressed
    into ``short`` steps (a constant LR; a plateau schedule, whose cuts depend on the run
    and are kept by continuing it): then a short trial can simply be continued."""
    if not protocol.per_batch:
        return True
    t = protocol.total_steps
    return all(protocol.lr_at(i) == protocol.lr_at((i * t) // short) for i in range(short))


def is_continued(protocol: ScheduleSpec) -> bool:
    """Whether a selection on ``protocol`` continues its short trials (see :func:`prefix_exact`)."""
    total = protocol.total_steps
    return total > 1 and prefix_exact(protocol, short_length(total, CONTINUED_FRACTION, short_quantum(protocol)))


def uses_horizon(plan: Plan) -> bool:
    """Whether a selection on ``plan`` corrects for the short trials' horizon: a continued
    plan with one finalist, whose short trials are the first half of the run (see
    :func:`~lrscout.selection.halving.horizon_finalist`). Restarted plans squeeze the whole
    schedule, decay included, into their short runs and keep the plain leader."""
    return plan.continued and len(plan.rungs) > 1 and plan.rungs[-1].size == 1


def short_sweep(find: FindResult) -> bool:
    """Whether ``find`` was a short sweep (at most :data:`~lrscout.selection.halving.SHORT_FIND_STEPS`
    steps, a short protocol's): its ladder hangs from the onset, and its plan may be verified."""
    return int(find.config.get("num_iter", FIND_STEPS)) <= SHORT_FIND_STEPS


#: Ladder steps below the top where a :func:`~lrscout.selection.halving.verified_plan`'s
#: candidates start (after a short sweep, whose ladder hangs from the onset): two are the
#: ladder's 3rd and 4th points from the top, onset / 10**(2/3) and onset / 10; more
#: reach further down.
VERIFIED_LOWER = 2


def window_shift(find: FindResult, plan: Plan) -> int:
    """How many ladder steps below the ladder's top rung 0's candidates sit: one after a
    short sweep (whose ladder hangs from the onset itself) when the horizon correction is
    on, :data:`VERIFIED_LOWER` for verified finalists, else none.

    Measured on the short development protocols of the quality benchmark (1-2 epochs, 10-80
    steps; ``benchmarks/ablation_short.py``): with the window at the top, the leader sat at
    the window's bottom and its lower neighbour, the finalist the horizon correction wants,
    had not been tried (+6.6 points from the best ladder LR, against +2.0 one step lower).
    After the usual 100-step sweep the ladder's top sits a step above the onset and the
    window stays (-0.1 points at the top, +0.5 one step lower, on the 10-epoch ones).
    With the 1/3-decade ladder of :func:`ladder_and_plan`, on 9 short development protocols
    (4 of them Adam/AdamW/RMSprop) x 3 seeds, the horizon guess lands +0.9 points from the
    grid oracle; the pair at the 3rd and 4th points from the top, compared at full length,
    -0.1 (worst task +0.6), the 3rd to 5th -0.3; the pair one step higher +2.7: most of the
    best final LRs of these short protocols sit a decade below the short sweep's onset
    (``benchmarks/results/ablation-short.md``).
    """
    short = short_sweep(find)
    if short and is_verified(plan):
        return VERIFIED_LOWER
    return 1 if (short and uses_horizon(plan)) else 0


def candidates_for(find: FindResult, *, per_decade: float = PER_DECADE, max_count: int = MAX_COUNT,
                   fine: bool = False) -> tuple[float, ...]:
    """The candidate ladder for a range-test result (see :mod:`lrscout.selection.candidates`);
    after a short sweep (at most :data:`~lrscout.selection.halving.SHORT_FIND_STEPS`
    steps) it hangs from the onset itself, not a step above it (divergence shows late).
    ``fine``: the ladder keeps its spacing of ``1/per_decade`` decade and gives up its
    bottom instead (at most ``(max_count - 1) / per_decade`` decades), for the horizon
    correction, whose one ladder step down must be the factor it was measured as."""
    low, high = find.interval
    max_span, min_span = MAX_SPAN_DECADES, MIN_SPAN_DECADES
    if fine and max_count > 1:
        max_span = (max_count - 1) / per_decade
        min_span = min(MIN_SPAN_DECADES, max_span)
    return candidate_lrs(
        low, high, steep=find.suggestions.get("steep"), onset=find.onset,
        min_loss=min_loss_lr(find.history_lr, find.smoothed or find.history_loss),
        per_decade=per_decade, max_count=max_count, above_onset=0.0 if short_sweep(find) else ABOVE_ONSET,
        min_span=min_span, max_span=max_span,
    )


def ladder_and_plan(find: FindResult, total: int, budget: float, *, overhead: float, continued: bool, quantum: int,
                    per_decade: float = PER_DECADE, max_count: int = MAX_COUNT) -> tuple[tuple[float, ...], Plan]:
    """The candidate ladder and the halving plan of a selection after range test ``find``.

    After a short sweep (a short protocol), a continued plan is spent on verified
    finalists only (:func:`~lrscout.selection.halving.verified_plan`: two at the default
    budget, one more per extra run). Otherwise, when the plan takes the horizon correction
    (:func:`uses_horizon`), it keeps its shape. Both use the ``fine`` ladder
    (:func:`candidates_for`): over a wide interval the usual ladder spreads its six points
    half a decade apart, and one step below the leader was then a factor 3.2, not the
    factor 2 that the horizon bias measures; on the first held-out set that sent Adam on
    a 10-step protocol to an LR 5x too low.
    """
    ladder = candidates_for(find, per_decade=per_decade, max_count=max_count)
    plan = plan_halving(len(ladder), total, budget, overhead=overhead, continued=continued, quantum=quantum)
    short = short_sweep(find)
    if plan.continued and len(plan.rungs) == 2 and (short or uses_horizon(plan)):
        fine = candidates_for(find, per_decade=per_decade, max_count=max_count, fine=True)
        fine_plan = plan_halving(len(fine), total, budget, overhead=overhead, continued=continued, quantum=quantum)
        verified = verified_plan(fine_plan, budget, overhead, len(fine)) if short else None
        if verified is not None:
            return fine, verified
        if uses_horizon(fine_plan):
            return fine, fine_plan
    return ladder, plan


def check_objective(task: Objective, find_result: FindResult | None, find_kwargs: Mapping[str, Any]) -> None:
    """An objective's candidates come from ``find_result`` or its own ``range_test``: refuse
    ``find_kwargs`` (they set lrscout's range test of a task) and a missing range test."""
    if find_kwargs:
        raise ConfigError(f"{', '.join(find_kwargs)} set lrscout's range test on a task; an objective's range "
                          "test is find_result or its own range_test function", argument=tuple(find_kwargs))
    if find_result is None and task.range_test is None:
        raise ConfigError(NO_RANGE_TEST)


def check_backend_travel(task: TrainingTask | Objective, backend: Any) -> None:
    """A task for worker processes must pickle: refuse it in one line before any work."""
    if isinstance(task, Task):
        return
    if backend.name == "ray":
        check_travels(task, "Ray workers")
    elif int(getattr(backend, "workers", 1)) > 1:
        check_travels(task, "worker processes (workers > 1)")


def _trace(t: TrialResult, rungs: Sequence[Sequence[TrialResult]], total_steps: int,
           metric: Metric = ACCURACY) -> Trace:
    """A trial's validation history, its parent's included when it was continued."""
    by_id = {r.spec.trial_id: r for results in rungs for r in results}
    history = list(t.history)
    parent = by_id.get(t.spec.parent) if t.spec.parent is not None else None
    while parent is not None:
        history = list(parent.history) + history
        parent = by_id.get(parent.spec.parent) if parent.spec.parent is not None else None
    evals = tuple((e.step, metric.signed(e.val_acc), e.val_loss) for e in history)
    if not evals or evals[-1][0] != t.spec.steps:  # the final score is the trial's own
        evals += ((t.spec.steps, metric.signed(t.val_acc), t.val_loss),)
    return Trace(t.spec.lr, evals, total_steps, t.collapsed)


def _val_size(task: TrainingTask | Objective) -> int | None:
    """Images in the task's validation split (None when it cannot be told)."""
    try:
        return len(task.splits().val)  # type: ignore[union-attr]
    except (AttributeError, TypeError, LrscoutError):  # no sized validation split: no noise band
        return None


def select(
    task: TrainingTask | Objective,
    *,
    schedule: str = "constant",
    epochs: int = 10,
    budget: float = DEFAULT_BUDGET,
    schedule_params: Mapping[str, Any] | None = None,
    backend: str | Backend = "local",
    workers: int = 1,
    ray_address: str | None = None,
    out_dir: str | Path | None = None,
    find_result: FindResult | None = None,
    find_kwargs: Mapping[str, Any] | None = None,
    per_decade: float = PER_DECADE,
    max_candidates: int = MAX_COUNT,
    threads: int | None = THREADS,
    keep_checkpoints: bool = False,
    on_trial: OnTrial | None = None,
) -> SelectResult:
    """Choose the LR for ``task`` trained ``epochs`` epochs with ``schedule``, and prove it.

    ``budget`` is the most the selection may cost, in full training runs of this protocol,
    range test included (the default, :data:`DEFAULT_BUDGET`, buys three short runs and
    one finalist on digits; more buys more candidates and finalists). It holds for any
    protocol length: short trials are counted in optimizer steps and the range test is
    sized to the budget; a budget too small for even that raises :class:`ConfigError`
    before any work, naming the budget that would do. ``backend`` is ``"local"`` (``workers`` processes) or ``"ray"``
    (``ray_address`` for a cluster), or a backend object. ``out_dir`` keeps
    ``select.json``, ``report.html``, the range test and every trial; rerunning into it
    resumes. ``find_result`` reuses a range test of the same task; ``find_kwargs`` go to
    :func:`~lrscout.engine.find_task`. ``threads``: torch CPU threads for the range test
    and each trial (CPU results depend on it, so it is fixed: the same choice on every
    backend and machine; ``None`` leaves torch's setting alone). ``on_trial`` is called
    after each trial this call runs (not the ones loaded from ``out_dir``).

    ``task`` is any :class:`~lrscout.protocol.TrainingTask`: a named :class:`Task`, or the
    user's code through :func:`lrscout.task_from`; or an :func:`lrscout.objective` (the
    user's training function, Optuna / Ray Tune style), whose candidates come from
    ``find_result`` or its own ``range_test``, and whose short trials restart unless it is
    resumable. Scores are the task's validation metric (accuracy, 0..1, for named tasks:
    on the validation split carved from the training data; the test split is never
    touched), ranked in the metric's direction.

    Example::

        result = lrscout.select(Task("digits", "simplecnn", "sgd"), epochs=10, out_dir="runs/select")
        print(result.lr, result.score, result.cost_runs)
        scheduler = result.schedule.build(optimizer)
    """
    t0 = time.perf_counter()
    named_optimizer = getattr(task, "optimizer", None)
    if isinstance(named_optimizer, str) and get_optimizer(named_optimizer).lr_free:
        raise ConfigError(f"{named_optimizer} sets its own step size: there is no LR to select "
                          "(compare ranks it against tuned optimizers)")
    find_kwargs = dict(find_kwargs or {})
    check_arguments(epochs=epochs, budget=budget, workers=workers, threads=threads, out_dir=out_dir,
                    **{k: v for k, v in find_kwargs.items() if k in RULES})
    params = dict(schedule_params or {})
    spe = steps_per_epoch(task)
    protocol = schedule_for(1.0, schedule, epochs, spe, **params)  # validates kind and parameters now
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1 (or None), got {threads}")
    runner = backend_for(backend, workers, ray_address, threads)  # validates the backend name now
    total = epochs * spe
    quantum = short_quantum(protocol)
    continued = is_continued(protocol)
    sweep = range_test_plan(task, total, budget, find_kwargs)
    if isinstance(task, Objective):
        check_objective(task, find_result, find_kwargs)
        continued = continued and task.resumable  # only a resumable objective goes on from a short trial
        batch: int | None = None  # unknown: its range test counts as run on the protocol's batch
        # its own range test sizes itself: the whole budget is checked once it has run
        planned = 0.0 if find_result is None else find_cost_runs(find_result, total, batch)
        own_sweep: dict[str, Any] = {"function": task.range_test_name}
    else:
        batch = getattr(task, "batch_size", None)  # a task written to the protocol need not state it
        planned = sweep.cost_runs if find_result is None else find_cost_runs(find_result, total, batch)
        own_sweep = {"steps": sweep.steps, "batch_size": sweep.batch_size}
    check_budget(total, budget, planned, continued=continued, min_candidates=min(2, max_candidates), quantum=quantum,
                 batch_size=batch if (isinstance(task, Task) and find_result is None
                                      and "num_iter" not in find_kwargs) else None)
    check_backend_travel(task, runner)
    settings = {
        "task": task.to_json(), "metric": task.metric.to_json(), "schedule": protocol.kind, "schedule_params": protocol.to_json()["params"],
        "epochs": epochs, "steps_per_epoch": spe, "budget": budget, "find_kwargs": find_kwargs,
        "per_decade": per_decade, "max_candidates": max_candidates, "threads": threads,
        "range_test": None if find_result is not None else own_sweep,
        "find_given": None if find_result is None else {"lr": find_result.lr, "interval": list(find_result.interval),
                                                        "onset": find_result.onset},
    }
    with RunDir(out_dir) as rundir:
        resuming = rundir.claim(settings)
        find = find_result or (rundir.load_find() if resuming else None)
        if find is None:
            log.info("range test on %s", describe(task))
            with torch_threads(threads):
                find = task.find() if isinstance(task, Objective) else run_range_test(task, sweep, find_kwargs)
        rundir.save_find(find)
        overhead = find_cost_runs(find, total, batch)
        ladder, plan = ladder_and_plan(find, total, budget, overhead=overhead, continued=continued, quantum=quantum,
                                       per_decade=per_decade, max_count=max_candidates)
        horizon = uses_horizon(plan)
        first = window_start(len(ladder), plan.rungs[0].size, lower=window_shift(find, plan))
        window = range(first, min(len(ladder), first + plan.rungs[0].size))
        log.info("%d candidates %s, plan %s", len(window), [f"{ladder[c]:.3g}" for c in window],
                 plan.to_json())

        with runner:
            rungs = run_rungs(task, plan, window,
                              lambda c, r: _trial_spec(c, ladder[c], r, plan, protocol,
                                                       keep_model=not isinstance(task, Objective)), rundir, runner,
                              below=range(first - 1, -1, -1), on_trial=on_trial, threads=threads,
                              horizon=horizon, spare=budget - overhead - plan.cost_runs)
        result = _assemble(task, protocol, ladder, plan, rungs, find, overhead, settings, time.perf_counter() - t0)
        result = with_model(task, result, rungs, rundir)
        if not keep_checkpoints:
            rundir.remove_checkpoints()
        if rundir.persistent:
            save(result, rundir.path)
    return result


#: Note of a selection whose chosen run's weights did not come back to this process.
MODEL_ELSEWHERE = ("the chosen run's weights did not come back (trained on a worker without this out_dir, or its "
                   "checkpoint was removed): train the chosen LR again for the model")


def _saved_model(task: TrainingTask, path: Path, lr: float) -> torch.nn.Module | None:
    """The network of a finished selection's ``model.pt`` when it holds ``lr``'s run, else None
    (a missing or damaged file is rewritten at the end of this run)."""
    try:
        state = load_checkpoint(path)
    except DataError:
        return None
    if state.get("lr") != lr or "model" not in state:
        return None
    model = task.build_model()
    model.load_state_dict(state["model"])
    return model


def with_model(task: TrainingTask | Objective, result: SelectResult, rungs: Sequence[Sequence[TrialResult]],
               rundir: RunDir) -> SelectResult:
    """``result`` with the chosen finalist's trained network (:attr:`SelectResult.model`).

    Why: a finalist trains the whole protocol at its LR, so the choice comes with its model
    and the user need not pay another run for it. Only for a healthy full-length choice of
    a task lrscout builds models for (not an objective, whose training is the user's own).
    The network comes from the finalist's checkpoint, or, when a finished selection is
    resumed, from the ``model.pt`` it wrote; one that did not come back (a Ray worker
    elsewhere) is said in the notes."""
    if isinstance(task, Objective) or not rungs:
        return result
    chosen = [t for t in rungs[-1] if t.spec.lr == result.lr and t.spec.steps == result.plan.length
              and not t.collapsed]
    if not chosen:
        return result
    run = load_trained(task, chosen[0], rundir.trials_dir)
    model = run.model if run is not None else (
        _saved_model(task, rundir.path / SELECT_MODEL, result.lr) if rundir.persistent else None)
    if model is None:
        return dataclasses.replace(result, notes=(*result.notes, MODEL_ELSEWHERE))
    return dataclasses.replace(result, model=model)


def _trial_spec(c: int, lr: float, r: int, plan: Plan, protocol: ScheduleSpec, *, keep_model: bool = True) -> TrialSpec:
    """Trial ``r{r}-c{c}``; ``keep_model``: a full-length trial saves its checkpoint, so the
    chosen one's network can be returned (:func:`with_model`; not for an objective)."""
    last = len(plan.rungs) - 1
    steps = plan.rungs[r].length
    spec = schedule_for(lr, protocol.kind, protocol.epochs, protocol.steps_per_epoch, **protocol.params)
    continued = plan.continued and r > 0
    return TrialSpec(
        trial_id=f"r{r}-c{c}", candidate=c, lr=lr, rung=r, steps=steps, schedule=spec.to_json(),
        compress=(not plan.continued) and steps < plan.length, start_step=plan.start(r),
        parent=f"r{r - 1}-c{c}" if continued else None,
        checkpoint=(plan.continued and r < last) or (keep_model and steps == plan.length),
    )


def _safe_fallback(earlier: list[list[TrialResult]], below: float,
                   metric: Metric = ACCURACY) -> TrialResult | None:
    """The best healthy earlier-rung trial at an LR below every collapsed finalist.

    A finalist that trained well on the short run and collapsed on the full one says
    the protocol is unstable at that LR; a lower LR that trained healthily is the safe
    choice, even though its score comes from a shorter run.
    """
    pool = [t for results in earlier for t in results if not t.collapsed and t.spec.lr < below]
    if not pool:
        return None
    return pool[rank([dataclasses.replace(outcome(t), score=metric.signed(t.val_acc)) for t in pool])[0]]


def _assemble(task: TrainingTask | Objective, protocol: ScheduleSpec, ladder: Sequence[float], plan: Plan,
              rungs: list[list[TrialResult]], find: FindResult, overhead: float, settings: dict[str, Any],
              seconds: float) -> SelectResult:
    notes: list[str] = []
    latest: dict[int, TrialResult] = {}
    for results in rungs:
        for t in results:
            latest[t.spec.candidate] = t
    top = rungs[-1]
    n_val = _val_size(task) if task.metric.name == "accuracy" else None  # the noise band is for accuracy
    chosen = top[robust_rank([_trace(t, rungs, plan.length, task.metric) for t in top], n_val)[0]]
    trials = tuple(t for results in rungs for t in results)
    cost = overhead + sum(t.steps_trained for t in trials) / plan.length
    budget = float(settings.get("budget") or math.inf)
    extra = len(rungs[0]) - plan.rungs[0].size
    if extra > 0:
        notes.append(f"too many short runs collapsed at the top of the ladder: {extra} more candidate(s) from below "
                     "were tried" + ("" if cost <= budget + 1e-9 else
                                     f", beyond the budget ({cost:.2f} of {budget:g} runs) since none had trained "
                                     "healthily"))
    if len(plan.rungs) > 1 and len(rungs) == len(plan.rungs) and len(top) < plan.rungs[-1].size:
        notes.append(f"{len(top)} of the {plan.rungs[-1].size} planned finalists: too few short runs trained "
                     "healthily, and the budget bought no more candidates")
    if len(rungs) < len(plan.rungs):
        notes.append("every candidate collapsed in the short runs: no LR reached the full protocol; "
                     "the choice is the least bad short run (check the range test)")
    elif chosen.collapsed:
        fallback = _safe_fallback(rungs[:-1], min(t.spec.lr for t in top), task.metric)
        if fallback is None:
            notes.append("every finalist collapsed on the full protocol; the choice is unreliable")
        else:
            notes.append(
                f"every finalist collapsed on the full protocol; chose {fallback.spec.lr:.3g}, the best "
                f"candidate below them that trained healthily ({fallback.spec.steps} steps): the "
                "full protocol is unstable near the finalists' LRs"
            )
            chosen = fallback
    candidates = tuple(
        Candidate(lr=ladder[c], score=t.val_acc, val_loss=t.val_loss, steps_run=t.spec.steps, rung=t.spec.rung,
                  collapsed=t.collapsed, note=t.note)
        for c, t in sorted(latest.items())
    )
    schedule = schedule_for(chosen.spec.lr, protocol.kind, protocol.epochs, protocol.steps_per_epoch, **protocol.params)
    config = {**settings, "find_cost_runs": overhead, "candidate_lrs": [ladder[c] for c in sorted(latest)],
              "ladder": list(ladder), "horizon": uses_horizon(plan), "verified": is_verified(plan)}
    return SelectResult(
        lr=chosen.spec.lr, score=chosen.val_acc, val_loss=chosen.val_loss, candidates=candidates, trials=trials,
        schedule=schedule, cost_runs=cost, seconds=seconds, plan=plan, find=find, config=config, notes=tuple(notes),
    )


__all__ = ["DEFAULT_BUDGET", "candidates_for", "find_cost_runs", "is_continued", "ladder_and_plan", "prefix_exact",
           "range_test_plan", "run_range_test", "run_trials", "select", "short_sweep", "steps_per_epoch",
           "uses_horizon", "window_shift"]
