"""``compare``: every optimizer x schedule combination at its own verified LR, ranked.

Each optimizer gets one range test, shared by all its schedules (it depends on the
optimizer only); each combination then runs :func:`~lrscout.selection.selection.select`.
LR-free optimizers (Prodigy, Schedule-Free, ...) have no LR to select: each is one entry,
trained once on the full protocol at its own default with a constant schedule (both are
designed to run without a decay; Schedule-Free replaces the schedule altogether).

Layout of ``out_dir`` (every part resumable)::

    find/<optimizer>.json          the shared range tests
    <optimizer>-<schedule>/        one selection each (select.json, report.html, trials/)
    <optimizer>-lrfree/            an LR-free entry's single run
    compare.json, report.html
    .lrscout.lock                  held while a comparison works here (one at a time)
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from .._io import DirLock, atomic_write_json
from ..backends import Backend
from ..checks import RULES, check_arguments
from ..errors import ConfigError, DataError, require
from ..optim import OPTIMIZERS, get_optimizer
from ..report import save
from ..results import FindResult
from ..protocol import TrainingTask, check_task
from ..schedules import get_schedule, schedule_for
from ..task import Task
from .halving import Outcome, RangeTestPlan, rank
from .results import CompareEntry, CompareResult
from .driver import THREADS, OnTrial, backend_for, run_trials
from .selection import DEFAULT_BUDGET, find_cost_runs, range_test_plan, run_range_test, select, steps_per_epoch
from .store import RunDir
from .trial import TrialSpec, torch_threads

log = logging.getLogger(__name__)

#: The LR-free optimizers ``lr_free=True`` adds when their package is installed.
LR_FREE_DEFAULTS = ("prodigy", "schedulefree")

_MODULES = {"prodigy": "prodigyopt", "schedulefree": "schedulefree", "dadapt": "dadaptation"}


def _signed(entry: CompareEntry, task: TrainingTask) -> Outcome:
    """The entry's outcome with its score turned so that higher is better."""
    o = entry.outcome
    return Outcome(o.lr, task.metric.signed(o.score), o.loss, o.collapsed)


def installed_lr_free() -> list[str]:
    """The LR-free optimizers of :data:`LR_FREE_DEFAULTS` whose package is importable."""
    return [n for n in LR_FREE_DEFAULTS if importlib.util.find_spec(_MODULES[n]) is not None]


def _split(names: str | Sequence[str]) -> list[str]:
    items = names.split(",") if isinstance(names, str) else list(names)
    out = [n.strip().lower() for n in items if n.strip()]
    return list(dict.fromkeys(out))  # de-duplicate, keep order


def _shared_find(task: TrainingTask, optimizer: str, out: Path | None, find_kwargs: Mapping[str, Any],
                 threads: int | None, plan: RangeTestPlan) -> FindResult:
    """One range test per optimizer (sized by ``plan``), kept in ``out/find/<optimizer>.json``
    when ``out`` is set."""
    path = out / "find" / f"{optimizer}.json" if out is not None else None
    if path is not None and path.exists():
        try:
            cached = FindResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise DataError(f"{path} is unreadable: {exc}") from exc
        wanted = {k: v for k, v in find_kwargs.items()}
        sweep = dataclasses.replace(task, batch_size=plan.batch_size) if isinstance(task, Task) else task
        same_task = cached.config.get("task") in (task.to_json(), sweep.to_json())
        same_args = all(cached.config.get(k) == v for k, v in wanted.items() if k in cached.config)
        if same_task and same_args:
            return cached
        raise ConfigError(f"{path} holds a range test of other settings; use another out_dir or delete it",
                          argument="out_dir")
    with torch_threads(threads):
        result = run_range_test(task, plan, find_kwargs)
    if path is not None:
        atomic_write_json(path, result.to_json())
    return result


def _lr_free_entry(task: TrainingTask, optimizer: str, epochs: int, out: Path | None, backend: Backend,
                   on_trial: OnTrial | None, threads: int | None) -> CompareEntry:
    info = get_optimizer(optimizer)
    if info.extra is not None:
        require(_MODULES.get(info.name, info.name), info.extra)
    spe = steps_per_epoch(task)
    spec = schedule_for(info.default_lr, "constant", epochs, spe)
    trial = TrialSpec(trial_id="full", candidate=0, lr=info.default_lr, rung=0, steps=spec.total_steps,
                      schedule=spec.to_json())
    with RunDir(out / f"{optimizer}-lrfree" if out is not None else None) as rundir:
        rundir.claim({"task": task.to_json(), "epochs": epochs, "lr_free": True, "threads": threads})
        (result,) = run_trials([trial], task, rundir, backend, on_trial, threads)
    return CompareEntry(optimizer=optimizer, schedule="constant", lr=info.default_lr, score=result.val_acc,
                        val_loss=result.val_loss, cost_runs=result.steps_trained / spec.total_steps, lr_free=True,
                        collapsed=result.collapsed, trial=result)


_F = TypeVar("_F", bound=Callable[..., Any])


def _claims_out_dir(func: _F) -> _F:
    """Hold :class:`~lrscout._io.DirLock` on ``out_dir`` (when given) for the whole call, so
    two comparisons never share a folder; a folder the call made and left empty goes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out_dir = kwargs.get("out_dir")
        if out_dir is None:
            return func(*args, **kwargs)
        claim = DirLock(out_dir, "comparison").acquire()
        try:
            return func(*args, **kwargs)
        finally:
            claim.release(remove_if_empty=True)

    return cast(_F, wrapper)


@_claims_out_dir
def compare(
    task: TrainingTask,
    *,
    optimizers: str | Sequence[str] = ("sgd", "adam"),
    schedules: str | Sequence[str] = ("constant",),
    lr_free: bool = False,
    epochs: int = 10,
    budget: float = DEFAULT_BUDGET,
    backend: str | Backend = "local",
    workers: int = 1,
    ray_address: str | None = None,
    out_dir: str | Path | None = None,
    find_kwargs: Mapping[str, Any] | None = None,
    threads: int | None = THREADS,
    on_trial: OnTrial | None = None,
) -> CompareResult:
    """Run :func:`select` for every optimizer x schedule and rank the verified results.

    ``task``'s own optimizer is ignored (``optimizers`` lists them, applied through
    ``task.with_optimizer``); names may be a list or a comma-separated string. An LR-free optimizer in ``optimizers`` (or every installed
    one, with ``lr_free=True``) becomes one entry trained once at its default. ``budget``
    is per selection; ``threads`` as in :func:`select`. The ranking rule is
    :func:`lrscout.selection.halving.rank_key`.

    Example::

        result = lrscout.compare(Task("digits"), optimizers="sgd,adam", schedules="constant,cosine")
        print(result.best.label, result.best.lr, result.best.score)
    """
    t0 = time.perf_counter()
    check_task(task, "compare")
    check_arguments(epochs=epochs, budget=budget, workers=workers, threads=threads, out_dir=out_dir,
                    **{k: v for k, v in (find_kwargs or {}).items() if k in RULES})
    opt_names, sched_names = _split(optimizers), _split(schedules)
    if not opt_names or not sched_names:
        raise ConfigError("compare needs at least one optimizer and one schedule")
    for name in opt_names:
        get_optimizer(name)  # unknown names fail here, before any training
    for name in sched_names:
        get_schedule(name)
    tuned = [n for n in opt_names if not OPTIMIZERS[n].lr_free]
    free = [n for n in opt_names if OPTIMIZERS[n].lr_free]
    if lr_free:
        free += [n for n in installed_lr_free() if n not in free]
    out = Path(out_dir) if out_dir is not None else None
    find_kwargs = dict(find_kwargs or {})
    runner = backend_for(backend, workers, ray_address, threads)

    entries: list[CompareEntry] = []
    cost = 0.0
    with runner:
        for name in tuned:
            t = task.with_optimizer(name)
            total = epochs * steps_per_epoch(t)
            find = _shared_find(t, name, out, find_kwargs, threads, range_test_plan(t, total, budget, find_kwargs))
            cost += find_cost_runs(find, total, getattr(t, "batch_size", 1))
            for sched in sched_names:
                sel = select(t, schedule=sched, epochs=epochs, budget=budget, backend=runner,
                             out_dir=out / f"{name}-{sched}" if out is not None else None, find_result=find,
                             find_kwargs=find_kwargs, threads=threads, on_trial=on_trial)
                cost += sel.cost_runs - float(sel.config.get("find_cost_runs", 0.0))
                # each entry's network is in its folder's model.pt; held here, every entry's
                # network would stay in memory (on the GPU when trained there) for the rest
                sel = dataclasses.replace(sel, model=None)
                collapsed = any(t.collapsed for t in sel.trials if t.spec.lr == sel.lr and t.spec.full)
                entries.append(CompareEntry(optimizer=name, schedule=sched, lr=sel.lr, score=sel.score,
                                            val_loss=sel.val_loss, cost_runs=sel.cost_runs, collapsed=collapsed,
                                            select=sel))
        for name in free:
            entry = _lr_free_entry(task.with_optimizer(name), name, epochs, out, runner, on_trial, threads)
            cost += entry.cost_runs
            entries.append(entry)
    order = rank([_signed(e, task) for e in entries])
    identity = task.to_json()
    config = {"task": {**identity, "optimizer": None} if "optimizer" in identity else identity,
              "metric": task.metric.to_json(), "optimizers": tuned, "lr_free": free,
              "schedules": sched_names, "epochs": epochs, "budget": budget, "find_kwargs": find_kwargs,
              "threads": threads}
    result = CompareResult(entries=tuple(entries[i] for i in order), cost_runs=cost,
                           seconds=time.perf_counter() - t0, config=config)
    if out is not None:
        save(result, out)
    return result
