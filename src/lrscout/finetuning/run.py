"""``lrscout.finetune``: find, select and train discriminative LRs for a pretrained model.

1. Range test of the common multiplier, group ratios fixed at a reference ratio (the
   median candidate): the head LR's usable range (:func:`lrscout.find`, group 0 = head).
2. Optionally a second range test: the backbone ratio swept with the head LR fixed
   (:func:`find_ratio`); its ratio interval sets the ratio candidates.
3. Successive halving over head LRs x ratios (:func:`select_groups`); ratio 1, one LR
   for every group, is always a candidate. The range tests count in the budget. Trials
   run on ``select``'s driver and backends (local process pool, Ray); every finished trial
   and range test is saved in ``out_dir``, so a killed run rerun into it resumes.
4. The winner's full-length run is the result, measured on the test split once.

Example::

    task = lrscout.Task("mnist", "simplecnn", "adam", data_dir="data", weights="digits.pt")
    result = lrscout.finetune(task, epochs=3, out_dir="runs/ft")
    result.head_lr, result.backbone_ratio, result.test_acc
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import time
from collections.abc import Callable

from ..backends import Backend
from ..engine import find
from ..checks import check_arguments
from ..errors import ConfigError
from ..models import param_groups
from ..report import save
from ..results import FindResult
from ..protocol import TrainingTask, check_task, steps_in
from ..selection.candidates import candidate_lrs, min_loss_lr
from ..selection.driver import THREADS, OnTrial, backend_for
from ..selection.store import RunDir
from ..selection.trial import EVAL_BATCH, default_weight_decay, torch_threads
from ..task import Task
from ..training import TrainResult, evaluate
from ..training.run import parse_lr
from .result import FinetuneResult
from .select2d import MAX_HEAD_LRS, candidate_grid, plan_grid, ratio_candidates, select_groups
from .sweep import find_ratio

log = logging.getLogger(__name__)

#: ``progress(phase, done, total, info)``: phase "find", "ratio" (range-test steps) or
#: "select" (trials).
FinetuneProgress = Callable[[str, int, int, str], None]


def _parse_ratio(value: float | str) -> float | None:
    """``"select"`` -> None (choose it); a number >= 0 -> float."""
    if isinstance(value, str):
        if value.strip().lower() == "select":
            return None
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"backbone_ratio must be a number >= 0 or 'select', got {value!r}",
                              argument="backbone_ratio") from None
    ratio = float(value)
    if not (math.isfinite(ratio) and ratio >= 0):
        raise ConfigError(f"backbone_ratio must be a finite number >= 0, got {value!r}", argument="backbone_ratio")
    return ratio


def _head_count(n_ratios: int, epochs: int, budget: float | None, overhead: float) -> int:
    """Most head LRs (<= MAX_HEAD_LRS) whose grid fits ``budget`` full runs, range tests
    included; ``None``: MAX_HEAD_LRS."""
    if budget is None:
        return MAX_HEAD_LRS
    for count in range(MAX_HEAD_LRS, 0, -1):
        if overhead + plan_grid(count * n_ratios, epochs).cost_runs <= budget + 1e-9:
            return count
    need = overhead + plan_grid(n_ratios, epochs).cost_runs
    raise ConfigError(f"budget {budget:g} runs is too small: the range test(s) and {n_ratios} candidate(s) need "
                      f"{need:.2f}", argument="budget")


def head_lr_candidates(result: FindResult, count: int) -> tuple[float, ...]:
    """Up to ``count`` head LRs from the first range test (select's ladder), else its LR."""
    if count < 2:
        return (result.lr,)
    return candidate_lrs(
        result.interval[0], result.interval[1], steep=result.suggestions.get("steep"), onset=result.onset,
        min_loss=min_loss_lr(result.history_lr, result.smoothed), max_count=count,
    )


def finetune(
    task: TrainingTask,
    epochs: int = 3,
    *,
    schedule: str = "onecycle",
    head_lr: float | str = "find",
    backbone_ratio: float | str = "select",
    ratio_sweep: bool = False,
    layer_decay: float = 1.0,
    freeze_epochs: int = 0,
    budget: float | None = None,
    num_iter: int = 100,
    out_dir: str | os.PathLike[str] | None = None,
    progress: FinetuneProgress | None = None,
    backend: str | Backend = "local",
    workers: int = 1,
    ray_address: str | None = None,
    threads: int | None = THREADS,
    on_trial: OnTrial | None = None,
) -> FinetuneResult:
    """Fine-tune ``task``'s pretrained model with LRs chosen per parameter group.

    ``task`` names the pretrained source (``weights=PATH`` or ``pretrained=True``; a task
    with neither trains from scratch with the same machinery, which is the benchmarks'
    baseline). ``head_lr``: a number, or ``"find"`` for candidates from the range test;
    ``backbone_ratio``: a number (backbone LR = head LR x ratio), or ``"select"`` to choose
    among :data:`DEFAULT_RATIOS` (or, with ``ratio_sweep``, ratios read off the second
    range test). ``layer_decay`` < 1 slows each earlier backbone block further;
    ``freeze_epochs`` trains the head alone first. ``budget`` caps the cost in full runs of
    the ``epochs``-epoch protocol, range tests included, by thinning the head-LR ladder;
    ``None``: select's full ladder (up to 6 head LRs x 3 ratios, ~12 runs for 3 epochs).
    ``out_dir`` receives the files of :func:`lrscout.report.save`, the range tests and every
    trial; rerunning into it resumes (other settings are refused). ``backend``,
    ``workers``, ``ray_address``, ``threads`` and ``on_trial`` are ``select``'s: where the
    trials run (``"local"`` with ``workers`` processes, ``"ray"``, or a backend object),
    torch CPU threads per trial and range test (fixed, so every backend gives the same
    choice), and a call after each trial run.
    """
    t0 = time.perf_counter()
    check_task(task, "finetune")
    check_arguments(epochs=epochs, budget=budget, num_iter=num_iter, layer_decay=layer_decay, out_dir=out_dir)
    if not 0 <= freeze_epochs < epochs:
        raise ConfigError(f"freeze_epochs must be in [0, {epochs - 1}] for {epochs} epochs, got {freeze_epochs}",
                          argument="freeze_epochs")
    given_lr = parse_lr(head_lr, "head_lr")
    given_ratio = _parse_ratio(backbone_ratio)
    if ratio_sweep and given_ratio is not None:
        raise ConfigError("the backbone-ratio sweep chooses the ratio: use it with backbone_ratio='select'")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1 (or None), got {threads}")
    runner = backend_for(backend, workers, ray_address, threads)  # validates the backend name now
    steps_per_epoch = steps_in(task.train_loader())  # loads the data: a bad dataset fails here, before any work
    task.build_model()  # loads the weights: bad weights fail before out_dir is written
    ratios = (given_ratio,) if given_ratio is not None else ratio_candidates()
    settings = {
        "task": task.to_json(), "epochs": epochs, "schedule": schedule, "head_lr": given_lr,
        "backbone_ratio": given_ratio, "ratio_sweep": ratio_sweep, "layer_decay": layer_decay,
        "freeze_epochs": freeze_epochs, "budget": budget, "num_iter": num_iter, "threads": threads,
        "steps_per_epoch": steps_per_epoch,
    }
    with RunDir(None if out_dir is None else os.fspath(out_dir), kind="finetune") as rundir:
        resuming = rundir.claim(settings)
        return _finetune(task, epochs, schedule, given_lr, given_ratio, ratios, ratio_sweep, layer_decay,
                         freeze_epochs, budget, num_iter, progress, runner, threads, on_trial, rundir,
                         resuming, t0)


def _finetune(task: TrainingTask, epochs: int, schedule: str, given_lr: float | None, given_ratio: float | None,
              ratios: tuple[float, ...], ratio_sweep: bool, layer_decay: float, freeze_epochs: int,
              budget: float | None, num_iter: int, progress: FinetuneProgress | None, runner: Backend,
              threads: int | None, on_trial: OnTrial | None, rundir: RunDir, resuming: bool,
              t0: float) -> FinetuneResult:
    steps_per_epoch = steps_in(task.train_loader())
    reference = statistics.median_low(ratios)

    def sweep_progress(phase: str) -> Callable[[int, float, float], None] | None:
        if progress is None:
            return None
        return lambda i, lr, loss: progress(phase, i + 1, num_iter, f"lr {lr:.2e}  loss {loss:.3f}")

    find_result: FindResult | None = None
    if given_lr is None:
        find_result = rundir.load_find() if resuming else None
    if given_lr is None and find_result is None:
        model = task.build_model()
        groups = param_groups(model, 1.0, reference, layer_decay=layer_decay, weight_decay=default_weight_decay(task))
        optimizer = task.build_optimizer(groups, 1.0)
        loader = task.train_loader()
        with torch_threads(threads):
            find_result = find(model, loader, optimizer, num_iter=num_iter, progress=sweep_progress("find"))
        rundir.save_find(find_result)
        log.info("head-LR range test (ratio %g): lr %.3g, interval %.3g..%.3g", reference, find_result.lr,
                 *find_result.interval)
    ratio_result: FindResult | None = None
    if ratio_sweep:
        ratio_result = rundir.load_find("find_ratio") if resuming else None
    if ratio_sweep and ratio_result is None:
        model = task.build_model()
        fixed = given_lr if given_lr is not None else find_result.lr  # type: ignore[union-attr]
        groups = param_groups(model, fixed, reference, layer_decay=layer_decay, weight_decay=default_weight_decay(task))
        optimizer = task.build_optimizer(groups, fixed)
        loader = task.train_loader()
        with torch_threads(threads):
            ratio_result = find_ratio(model, loader, optimizer, num_iter=num_iter, progress=sweep_progress("ratio"))
        rundir.save_find(ratio_result, "find_ratio")
    if ratio_result is not None:
        lo, hi = ratio_result.config["ratio_interval"]
        ratios = ratio_candidates((lo, hi))
        log.info("backbone-ratio range test: ratio %.3g, interval %.3g..%.3g -> candidates %s",
                 ratio_result.config["ratio"], lo, hi, ratios)

    sweeps = (find_result is not None) + (ratio_result is not None)
    overhead = sweeps * num_iter / (epochs * steps_per_epoch)  # range-test steps in full runs
    if given_lr is not None:
        heads: tuple[float, ...] = (given_lr,)
    else:
        heads = head_lr_candidates(find_result, _head_count(len(ratios), epochs, budget, overhead))  # type: ignore[arg-type]
    candidates = candidate_grid(heads, ratios)

    def select_progress(done: int, total: int, info: str) -> None:
        if progress is not None:
            progress("select", done, total, info)

    selection = select_groups(task, candidates, epochs, schedule=schedule, layer_decay=layer_decay,
                              freeze_epochs=freeze_epochs, progress=select_progress, backend=runner,
                              rundir=rundir, threads=threads, on_trial=on_trial)
    run, best = selection.run, selection.best
    test_acc = test_loss = None
    splits = task.splits() if isinstance(task, Task) else None  # the user's tasks have no test split
    if splits is not None and splits.test is not None:
        test_loss, test_acc = evaluate(run.model, splits.loader("test", EVAL_BATCH))
    fit = run.fit
    best_epoch = max(fit.epochs, key=lambda e: task.metric.signed(e.val_acc)).epoch if fit.epochs else None
    train = TrainResult(lr=best.head_lr, lr_source="select" if len(candidates) > 1 else "given",
                        schedule=run.schedule.to_json(), fit=fit, steps_per_epoch=steps_per_epoch,
                        best_epoch=best_epoch, find=find_result, task=task.to_json())
    result = FinetuneResult(
        head_lr=best.head_lr, backbone_ratio=best.ratio, layer_decay=layer_decay, freeze_epochs=freeze_epochs,
        groups=run.groups, candidates=candidates, plan=selection.plan, trials=selection.trials,
        best=best.candidate, train=train, find=find_result, ratio_find=ratio_result,
        test_acc=test_acc, test_loss=None if test_loss is None or not math.isfinite(test_loss) else test_loss,
        cost_runs=overhead + selection.plan.cost_runs, task=task.to_json(), seconds=time.perf_counter() - t0,
    )
    if rundir.persistent:
        save(result, rundir.path, model=run.model)
    return result
