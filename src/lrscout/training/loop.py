"""The training loop: one function, readable top to bottom.

Per batch: forward, backward, optimizer step, scheduler step (per-batch schedules), the
guard's check. Per epoch: validation loss and accuracy, the plateau scheduler, the
``on_epoch`` hook (checkpoints, metrics files, trial reporting). The guard is an object
the loop calls, not a callback system: ``guard.step(loss)`` returns True when it rolled
the run back, and raises ``DivergenceError`` when it has run out of recoveries, which
ends the run like a NaN loss without a guard does (``FitResult.stopped`` says why).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from ..errors import ConfigError, DivergenceError
from ..optim import set_mode
from ..protocol import Evaluation, LossFn, batch_size, scalar_loss, to_device

Batch = Any  # (inputs, targets) for the built-in classification path; anything with loss_fn
EvaluateFn = Callable[[nn.Module], Evaluation]


class StepGuard(Protocol):
    """What the loop needs from a guard (see :class:`lrscout.training.guard.Guard`)."""

    def step(self, loss: float) -> bool: ...


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    train_acc: float = math.nan  # running accuracy over the epoch's (kept) training batches


@dataclass(frozen=True)
class FitResult:
    """Per-epoch validation metrics and per-step (loss, LR) of one training run."""

    epochs: tuple[EpochStats, ...]
    step_loss: tuple[float, ...]
    step_lr: tuple[float, ...]
    events: tuple[dict[str, Any], ...] = ()
    stopped: str | None = None  # why training ended before its last epoch, if it did
    seconds: float = 0.0

    @property
    def final_val_acc(self) -> float:
        return self.epochs[-1].val_acc if self.epochs else 0.0

    @property
    def best_val_acc(self) -> float:
        return max((e.val_acc for e in self.epochs), default=0.0)

    @property
    def final_val_loss(self) -> float:
        return self.epochs[-1].val_loss if self.epochs else math.inf


@torch.no_grad()
def evaluate(model: nn.Module, data: Iterable[Batch], criterion: nn.Module | None = None,
             device: torch.device | None = None) -> tuple[float, float]:
    """Mean loss and accuracy (0..1) of ``model`` over ``data``, in eval mode."""
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y in data:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        total_loss += float(criterion(out, y)) * len(y)
        correct += int((out.argmax(dim=1) == y).sum())
        count += len(y)
    model.train(was_training)
    if count == 0:
        raise ConfigError("validation data yielded no samples")
    loss = total_loss / count
    return (loss if math.isfinite(loss) else math.inf), correct / count


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_data: Iterable[Batch],
    val_data: Iterable[Batch],
    *,
    epochs: int,
    scheduler: Any = None,
    criterion: nn.Module | None = None,
    guard: StepGuard | None = None,
    start_epoch: int = 0,
    on_step: Callable[[int, float, float], None] | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    loss_fn: LossFn | None = None,
    evaluate_fn: EvaluateFn | None = None,
) -> FitResult:
    """Train ``model`` for epochs ``start_epoch..epochs-1`` and validate after each.

    ``scheduler`` is a torch LR scheduler stepped after every optimizer step, or a
    ``ReduceLROnPlateau`` stepped after every epoch with the validation loss. A NaN loss
    without a guard ends the run (``stopped`` says so) rather than training on garbage;
    with a guard, rolled-back steps are left out of the epoch's training loss and
    accuracy, and a ``DivergenceError`` from it ends the run the same way (the guard has
    restored the last good weights). ``on_step(step, lr, loss)`` sees every step, rolled
    back or not, with ``step`` counted from 0 across epochs.

    Batches are ``(inputs, targets)`` scored by ``criterion`` (cross-entropy) and accuracy,
    unless ``loss_fn(model, batch)`` gives the loss of any batch (moved to the model's
    device first) and ``evaluate_fn(model)`` the validation :class:`Evaluation` (then
    ``val_data`` is unused, ``val_acc`` holds the task's score and ``train_acc`` is NaN).
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    criterion = criterion if criterion is not None else nn.CrossEntropyLoss()
    device = next(model.parameters()).device
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    history: list[EpochStats] = []
    step_loss: list[float] = []
    step_lr: list[float] = []
    stopped: str | None = None
    t_start = time.perf_counter()
    step = 0
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        set_mode(optimizer, True)
        run_loss, run_correct, run_n = 0.0, 0, 0
        batches = 0
        for batch in train_data:
            batches += 1
            lr = float(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad(set_to_none=True)
            if loss_fn is None:
                x, y = batch
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                out = model(x)
                loss = criterion(out, y)
            else:
                batch = to_device(batch, device)
                loss = scalar_loss(loss_fn(model, batch))
            loss.backward()
            optimizer.step()
            value = loss.item()
            step_loss.append(value if math.isfinite(value) else math.nan)
            step_lr.append(lr)
            if on_step is not None:
                on_step(step, lr, value)
            step += 1
            if guard is not None:
                try:
                    if guard.step(value):
                        continue  # rolled back: the guard restored weights and lowered the LR
                except DivergenceError as exc:
                    stopped = str(exc)
                    break
            elif not math.isfinite(value):
                stopped = f"loss became {value} at epoch {epoch + 1}, step {step} (lr={lr:.3g})"
                break
            if scheduler is not None and not plateau:
                scheduler.step()
            if loss_fn is None:
                run_loss += value * len(y)
                run_correct += int((out.detach().argmax(dim=1) == y).sum())
                run_n += len(y)
            else:
                n = batch_size(batch)
                run_loss += value * n
                run_n += n
        set_mode(optimizer, False)
        if batches == 0:
            raise ConfigError("the training data yields zero batches; give a non-empty dataset")
        if evaluate_fn is not None:
            scores = evaluate_fn(model)
            val_loss, val_acc = scores.loss, scores.score
        else:
            val_loss, val_acc = evaluate(model, val_data, criterion, device)
        stats = EpochStats(
            epoch=epoch + 1,
            train_loss=run_loss / run_n if run_n else math.nan,
            val_loss=val_loss,
            val_acc=val_acc,
            lr=float(optimizer.param_groups[0]["lr"]),
            seconds=time.perf_counter() - t0,
            train_acc=run_correct / run_n if run_n and loss_fn is None else math.nan,
        )
        history.append(stats)
        if plateau:
            scheduler.step(val_loss)
        if on_epoch is not None:
            on_epoch(stats)
        if stopped:
            break
    events = tuple(getattr(guard, "events", ()))
    return FitResult(tuple(history), tuple(step_loss), tuple(step_lr), events, stopped, time.perf_counter() - t_start)
