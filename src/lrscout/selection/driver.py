"""The successive-halving driver: ``select`` and ``finetune`` both run on it.

The driver knows rungs, trials and backends, not what a candidate is: the caller gives
the :class:`~lrscout.selection.halving.Plan`, the candidates alive at rung 0, and
``spec_for(candidate, rung)`` building each :class:`~lrscout.selection.trial.TrialSpec`
(an LR for ``select``; a head LR with its backbone ratio, layer decay and freezing for
``finetune``: ``TrialSpec.kind``). Then, for every rung in turn:

1. the trials of the rung are loaded from the run directory when a previous (killed) run
   finished them, and the rest run on the backend (a local process pool or Ray), each
   saved the moment it finishes (:class:`~lrscout.selection.store.RunDir`);
2. the best healthy trials advance (:func:`~lrscout.selection.halving.promote`, ranked
   ``by`` accuracy or rank sum); a collapsed trial never advances
   (:func:`~lrscout.selection.halving.collapse_note` is the one rule, applied in the
   worker).

Every trial is seeded by the task, so the same plan gives the same choice on every backend
and after any number of resumes.
"""

from __future__ import annotations

import dataclasses

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..backends import Backend, get_backend
from ..errors import ConfigError
from ..protocol import TrainingTask
from ..task import Task
from .halving import Outcome, Plan, horizon_finalist, promote
from .objectives import Objective, run_objective_payload
from .store import RunDir
from .trial import TrialResult, TrialSpec, run_payload

log = logging.getLogger(__name__)

#: ``on_trial(result)`` after each trial a call runs (not the ones loaded from its directory).
OnTrial = Callable[[TrialResult], None]
#: ``spec_for(candidate, rung)``: the trial of ``candidate`` in ``rung``.
SpecFor = Callable[[int, int], TrialSpec]

#: Torch CPU threads per trial by default: small vision models train fastest on one
#: thread per process (trials run side by side for parallelism), and a fixed count makes
#: CPU results identical on every backend.
THREADS = 1


def outcome(t: TrialResult) -> Outcome:
    """What ranking reads from a trial (its LR: the head's for a ``"groups"`` trial)."""
    return Outcome(t.spec.lr, t.val_acc, t.val_loss, t.collapsed)


def backend_for(backend: str | Backend, workers: int = 1, ray_address: str | None = None,
                threads: int | None = THREADS) -> Backend:
    """A backend by name (``workers`` / ``ray_address`` configure it), or the object given."""
    if isinstance(backend, str):
        if backend == "ray":
            return get_backend(backend, workers=workers, ray_address=ray_address, cpus_per_trial=float(threads or 1))
        return get_backend(backend, workers=workers, ray_address=ray_address)
    if workers != 1 or ray_address is not None:
        raise ConfigError("workers / ray_address configure a backend by name; set them on the Backend object")
    return backend


def run_trials(
    specs: Sequence[TrialSpec], task: TrainingTask | Objective, rundir: RunDir, backend: Backend,
    on_trial: OnTrial | None = None, threads: int | None = THREADS,
) -> list[TrialResult]:
    """Results for ``specs``: loaded when already in ``rundir``, otherwise run on ``backend``
    (each with ``threads`` CPU threads) and saved the moment each finishes. An
    :class:`~lrscout.selection.objectives.Objective`'s trials are calls of its function."""
    task_json = task.to_json()
    results: list[TrialResult | None] = [rundir.load_trial(s, task_json) for s in specs]
    todo = [i for i, r in enumerate(results) if r is None]
    for i, r in enumerate(results):
        if r is not None:
            log.info("trial %s: finished earlier (val acc %.4f)", specs[i].trial_id, r.val_acc)
    sent = task_json if isinstance(task, Task) else task  # the user's task travels pickled
    payloads = [{"task": sent, "trial": specs[i].to_json(), "checkpoint_dir": str(rundir.trials_dir.resolve()),
                 "threads": threads, "workdir": os.getcwd()} for i in todo]

    def done(j: int, data: dict[str, Any]) -> None:
        result = TrialResult.from_json(data)
        rundir.save_trial(result)
        results[todo[j]] = result
        log.info("trial %s: lr %.3g, %d steps, val acc %.4f%s", result.spec.trial_id, result.spec.lr,
                 result.spec.steps, result.val_acc, " (collapsed)" if result.collapsed else "")
        if on_trial is not None:
            on_trial(result)

    if payloads:
        rundir.trials_dir.mkdir(parents=True, exist_ok=True)
        job = run_objective_payload if isinstance(task, Objective) else run_payload
        backend.map(job, payloads, on_result=done)
    return [r for r in results if r is not None]


def extra_fits(plan: Plan, added: int, finalists: int, spare: float | None) -> bool:
    """Whether ``added`` short trials beyond rung 0's plan, with ``finalists`` (at most the
    plan's) going on, cost no more than the plan plus ``spare`` runs (None: no limit).

    Each added short trial costs a rung-0 trial; each finalist fewer than planned saves
    what taking one on to the end costs.

    >>> from lrscout.selection.halving import Rung
    >>> pair = Plan((Rung(5, 2), Rung(10, 2)), 10, continued=True)  # a verified pair
    >>> extra_fits(pair, 1, 2, 0.0), extra_fits(pair, 1, 2, 0.5), extra_fits(pair, 1, 1, 0.0)
    (False, True, True)
    """
    if spare is None:
        return True
    later = plan.rungs[1].size if len(plan.rungs) > 1 else 0
    short = plan.trial_length(0) / plan.length
    on = plan.trial_length(1) / plan.length if len(plan.rungs) > 1 else 0.0
    return added * short - (later - min(later, finalists)) * on <= spare + 1e-9


def run_rungs(
    task: TrainingTask | Objective,
    plan: Plan,
    alive: Sequence[int],
    spec_for: SpecFor,
    rundir: RunDir,
    backend: Backend,
    *,
    by: str = "accuracy",
    below: Sequence[int] = (),
    on_trial: OnTrial | None = None,
    threads: int | None = THREADS,
    horizon: bool = False,
    spare: float | None = None,
) -> list[list[TrialResult]]:
    """Run the plan's rungs in turn; between rungs the best healthy trials advance.

    Rung 0 trains the candidates ``alive``. While fewer of its trials are healthy than the
    next rung takes, it adds the candidates of ``below`` one at a time, in that order
    (``select``: the ladder's next LR down, since collapsing short runs say the LRs are too
    high). ``spare`` (runs the budget leaves beyond the plan; None: no limit) bounds that
    (:func:`extra_fits`): with no healthy trial a candidate is added whatever it costs;
    with some, one is added while it and every healthy trial can still go on within the
    budget, and else, once, as a short run only, paid for by the finalist that the
    collapsed trials free (as many finalists go on as there were healthy trials before it:
    the best of them, and a healthy lower LR is left to fall back on should a finalist
    collapse at full length). The rungs run stop early when no trial is
    healthy enough to advance; the result holds one list of trials per rung run, each in
    candidate order, added candidates first. ``horizon`` (select, continued plans with one
    finalist): the finalist is the leader's lower neighbour on the ladder
    (:func:`~lrscout.selection.halving.horizon_finalist`).
    """
    alive = sorted(alive)
    extra = list(below)
    rungs: list[list[TrialResult]] = []
    for r in range(len(plan.rungs)):
        if not alive:
            break
        results = run_trials([spec_for(c, r) for c in alive], task, rundir, backend, on_trial, threads)
        if r == 0:
            need = take = plan.rungs[1].size if len(plan.rungs) > 1 else 1
            while extra and (healthy := sum(not t.collapsed for t in results)) < need:
                added = len(results) - plan.rungs[0].size + 1
                if healthy and not extra_fits(plan, added, healthy + 1, spare):
                    if not extra_fits(plan, added, healthy, spare):
                        log.info("too few healthy short runs, and the budget buys no more: %d finalist(s)", healthy)
                        break
                    take = healthy
                c = extra.pop(0)
                log.info("too few healthy short runs: adding candidate %d (lr %.3g)%s", c, spec_for(c, 0).lr,
                         " as a short run only" if take < need else "")
                results = run_trials([spec_for(c, 0)], task, rundir, backend, on_trial, threads) + results
                if take < need:
                    break
        rungs.append(results)
        if r + 1 < len(plan.rungs):
            metric = getattr(task, "metric", None)  # ranking reads higher as better
            size = min(plan.rungs[r + 1].size, take) if r == 0 else plan.rungs[r + 1].size
            keep = promote([dataclasses.replace(outcome(t), score=metric.signed(t.val_acc)) if metric is not None
                            else outcome(t) for t in results], size, by=by)
            if horizon and plan.rungs[r + 1].size == 1 and keep:
                keep = [horizon_finalist([t.spec.candidate for t in results], [t.collapsed for t in results],
                                         keep[0])]
            alive = sorted(results[i].spec.candidate for i in keep)
    return rungs


__all__ = ["THREADS", "OnTrial", "SpecFor", "backend_for", "extra_fits", "outcome", "run_rungs", "run_trials"]
