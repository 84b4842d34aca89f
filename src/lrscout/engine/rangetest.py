"""The LR range test: raise the LR every optimizer step, record the loss, put everything back.

One readable loop. The sweep scales a single multiplier, so the LR ratios between
parameter groups are kept (a head at 10x the backbone stays at 10x); the reported LR is
the one of ``base_group``. Whatever happens inside (divergence, an exception, Ctrl-C) the
``finally`` clause restores the model, optimizer, scaler and RNG streams bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from ..checks import RULES, check_arguments
from ..curve import MIN_STOP_POINTS, analyse, diverged, lr_ramp
from ..errors import ConfigError, CurveError
from ..optim import set_mode
from ..protocol import LossFn, TrainingTask, batch_size, loop_hooks, scalar_loss, to_device
from ..results import FindResult
from ..state import Snapshot

log = logging.getLogger(__name__)

#: How a stop reason begins when the sweep stopped at a non-finite loss (a step it ran and
#: did not record; :func:`lrscout.selection.selection.find_cost_steps` reads it).
NONFINITE_STOP = "loss became"

Batch = Any  # (inputs, targets), or any structure with loss_fn
Progress = Callable[[int, float, float], None]


def _cycle(data: Iterable[Batch]) -> Iterator[Batch]:
    """Yield batches forever, starting a new pass when the loader runs out."""
    while True:
        empty = True
        for batch in data:
            empty = False
            yield batch
        if empty:
            raise ConfigError("the training data yielded no batches")


def _autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager[Any]:
    if amp is None:
        return contextlib.nullcontext()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    raise ConfigError("the model has no parameters")


def _distributed() -> bool:
    """Whether this process is one rank of several (torch.distributed initialised)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_ranks_mean(loss: torch.Tensor, distributed: bool | None = None) -> torch.Tensor:
    """Under torch.distributed, the mean loss over all ranks (else ``loss`` itself).

    Every rank then records the same curve and takes the same stop decision at the same
    step; a rank that stopped alone would leave the others hanging in their next
    gradient all-reduce. ``distributed`` is :func:`_distributed`, asked once per sweep
    by the caller (it is the same for every step).
    """
    import torch.distributed as dist

    if distributed if distributed is not None else _distributed():
        loss = loss.clone()
        dist.all_reduce(loss, op=dist.ReduceOp.SUM)
        loss /= dist.get_world_size()
    return loss


def _batch_loss(model: nn.Module, batch: Batch, criterion: nn.Module, loss_fn: LossFn | None,
                device: torch.device) -> tuple[torch.Tensor, int]:
    """The loss of one batch and its sample count: ``criterion(model(x), y)`` for an
    ``(x, y)`` batch, else ``loss_fn(model, batch)`` with the batch on ``device``."""
    if loss_fn is None:
        x, y = batch
        if x.device != device or y.device != device:  # skips two dispatches a step when already there
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        return criterion(model(x), y), len(y)
    batch = to_device(batch, device)
    return scalar_loss(loss_fn(model, batch)), batch_size(batch)


def _accumulate(model: nn.Module, batches: Iterator[Batch], criterion: nn.Module, loss_fn: LossFn | None,
                device: torch.device, cast: contextlib.AbstractContextManager[Any],
                scaler: torch.amp.GradScaler | None, steps: int) -> torch.Tensor:
    """Gradients of ``steps`` batches summed into one optimizer step (each loss divided by
    ``steps``, so the step is the mean's); returns the mean loss, detached."""
    total: torch.Tensor | None = None
    for _ in range(steps):
        with cast:
            loss = _batch_loss(model, next(batches), criterion, loss_fn, device)[0] / steps
        (scaler.scale(loss) if scaler is not None else loss).backward()
        part = loss.detach().float()
        total = part if total is None else total + part
    assert total is not None  # steps >= 1
    return total


@torch.no_grad()
def _eval_loss(model: nn.Module, batches: list[Batch], criterion: nn.Module, device: torch.device, amp: str | None,
               loss_fn: LossFn | None = None) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        with _autocast(device, amp):
            loss, n = _batch_loss(model, batch, criterion, loss_fn, device)
            total += float(loss) * n
        count += n
    model.train()
    return float(_all_ranks_mean(torch.tensor(total / max(count, 1))))


def find(
    model: nn.Module,
    train_data: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module | None = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    mode: str = "exp",
    diverge_factor: float = 4.0,
    val_data: Iterable[Batch] | None = None,
    val_every: int = 5,
    accumulation_steps: int = 1,
    amp: str | None = None,
    scaler: torch.amp.GradScaler | None = None,
    base_group: int = 0,
    progress: Progress | None = None,
    loss_fn: LossFn | None = None,
) -> FindResult:
    """Run an LR range test and return the curve, the suggestions and a recommended LR.

    LR at step i (exp mode): ``start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))``
    for the base group, every other group scaled by its original ratio to it. The test
    stops early when the loss is NaN/inf (at once) or, from the ``MIN_STOP_POINTS``-th
    recorded point on, when its running average exceeds ``diverge_factor`` x its best
    (the best counted from that point too). The model, optimizer, scaler, RNG streams
    and the loaders' own shuffle / augmentation generators are restored at the end. ``val_data`` switches to validation-loss mode: every
    ``val_every`` steps the loss over those fixed batches is recorded instead of the
    training batch loss. ``amp`` is ``"fp16"`` (CUDA, with a GradScaler) or ``"bf16"``.
    Under ``torch.distributed`` (a DDP-wrapped model, one process per rank) the recorded
    loss is the mean over ranks, so every rank sees the same curve and stops together.
    Batches are ``(inputs, targets)`` scored by ``criterion``, or any structure (a dict,
    several inputs) with ``loss_fn(model, batch) -> scalar tensor`` (the batch is moved
    to the model's device first; models that compute their own loss return it here).

    Example::

        result = lrscout.find(model, train_loader, torch.optim.SGD(model.parameters(), lr=0.01))
        print(result.lr, result.interval)
    """
    check_arguments(num_iter=num_iter)
    lrs = lr_ramp(start_lr, end_lr, num_iter, mode)
    if accumulation_steps < 1:
        raise ConfigError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
    if val_every < 1:
        raise ConfigError(f"val_every must be >= 1, got {val_every}")
    if amp not in (None, "fp16", "bf16"):
        raise ConfigError(f"amp must be None, 'fp16' or 'bf16', got {amp!r}")
    if not 0 <= base_group < len(optimizer.param_groups):
        raise ConfigError(f"base_group {base_group} out of range: the optimizer has {len(optimizer.param_groups)} groups")
    base_lr = float(optimizer.param_groups[base_group]["lr"])
    if base_lr <= 0:
        raise ConfigError(f"the base param group has lr={base_lr}; the sweep keeps ratios to it, so it must be > 0")
    ratios = [float(g["lr"]) / base_lr for g in optimizer.param_groups]
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
    device = _model_device(model)
    if amp == "fp16" and scaler is None and device.type == "cuda":
        scaler = torch.amp.GradScaler("cuda")
    # before anything reads a batch: the loaders' shuffle / augmentation generators too
    snapshot = Snapshot.take(model, optimizer, scaler, data=(train_data, val_data))
    try:
        val_batches = list(val_data) if val_data is not None else None
    except BaseException:
        snapshot.restore()
        raise

    config = {
        "start_lr": start_lr, "end_lr": end_lr, "num_iter": num_iter, "mode": mode,
        "diverge_factor": diverge_factor, "val_every": val_every if val_batches else None,
        "accumulation_steps": accumulation_steps, "amp": amp, "base_group": base_group,
        "group_ratios": ratios, "optimizer": type(optimizer).__name__,
    }
    if loss_fn is not None:
        config["loss_fn"] = getattr(loss_fn, "__qualname__", type(loss_fn).__name__)
    hist_lr: list[float] = []
    hist_loss: list[float] = []
    stop_reason: str | None = None
    steps_run = 0  # optimizer steps taken: the history holds fewer with val_every, or after a NaN
    avg, best, beta = 0.0, math.inf, 0.98
    distributed = _distributed()
    cast = _autocast(device, amp)  # re-entered every step: a no-op context without AMP
    groups = list(zip(optimizer.param_groups, ratios))
    t0 = time.perf_counter()
    try:
        model.train()
        set_mode(optimizer, True)
        batches = _cycle(train_data)
        for i, lr in enumerate(lrs.tolist()):
            for group, ratio in groups:
                group["lr"] = lr * ratio
            optimizer.zero_grad(set_to_none=True)
            if accumulation_steps == 1:  # the usual step, without the accumulation bookkeeping
                with cast:
                    loss = _batch_loss(model, next(batches), criterion, loss_fn, device)[0]
                (scaler.scale(loss) if scaler is not None else loss).backward()
                step_loss = loss.detach()
            else:
                step_loss = _accumulate(model, batches, criterion, loss_fn, device, cast, scaler, accumulation_steps)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            steps_run = i + 1
            value = float(_all_ranks_mean(step_loss.float(), True) if distributed else step_loss)
            if val_batches is not None:
                if i % val_every and i != num_iter - 1:
                    continue
                if math.isfinite(value):
                    value = _eval_loss(model, val_batches, criterion, device, amp, loss_fn)
            if not math.isfinite(value):
                stop_reason = f"{NONFINITE_STOP} {value} at lr={lr:.3g}"
                break
            avg = beta * avg + (1 - beta) * value
            smoothed = avg / (1 - beta ** (len(hist_loss) + 1))
            hist_lr.append(float(lr))
            hist_loss.append(value)
            if progress is not None:
                progress(i, float(lr), value)
            if len(hist_loss) < MIN_STOP_POINTS:
                continue  # a running average of a few batches is one batch's luck, not a trend
            best = min(best, smoothed)
            if diverged(value, smoothed, best, diverge_factor):
                stop_reason = f"loss diverged (running average > {diverge_factor}x its best) at lr={lr:.3g}"
                break
    finally:
        snapshot.restore()
    config["steps_run"] = steps_run
    elapsed = time.perf_counter() - t0
    if stop_reason:
        log.info("range test stopped early: %s", stop_reason)
    try:
        analysis = analyse(torch.tensor(hist_lr).numpy(), torch.tensor(hist_loss).numpy())
    except CurveError as exc:
        raise CurveError(
            f"the range test recorded only {len(hist_loss)} usable points ({stop_reason or exc}); "
            "lower start_lr or raise num_iter", argument=("start_lr", "num_iter")
        ) from exc
    return FindResult.from_analysis(
        analysis,
        history_lr=hist_lr,
        history_loss=hist_loss,
        stopped_early=stop_reason is not None,
        stop_reason=stop_reason,
        seconds=elapsed,
        config=config,
    )


def find_task(task: TrainingTask, *, progress: Progress | None = None, **kwargs: Any) -> FindResult:
    """Range test on a task: fresh seeded model and optimizer, its training batches, its
    loss (:class:`~lrscout.protocol.TrainingTask`).

    The optimizer is built at its habitual LR (only group ratios matter to the sweep).
    """
    check_arguments(**{k: v for k, v in kwargs.items() if k in RULES})  # before the data loads
    model = task.build_model()
    optimizer = task.build_optimizer(model.parameters())
    loader = task.train_loader()
    hooks = loop_hooks(task)
    result = find(model, loader, optimizer, progress=progress, loss_fn=hooks.get("loss_fn"), **kwargs)
    config = {**result.config, "task": task.to_json()}
    return dataclasses.replace(result, config=config)
