"""Build standard ``torch.optim.lr_scheduler`` objects from schedule kinds.

Per-batch kinds become a :class:`~torch.optim.lr_scheduler.LambdaLR` over the pure
multiplier function, so each parameter group keeps its own base learning rate and the
ratios between groups hold at every step. ``plateau`` becomes a
:class:`~torch.optim.lr_scheduler.ReduceLROnPlateau`. The objects are PyTorch's own, so
``state_dict()`` / ``load_state_dict()`` work as usual.

Usage, in one readable loop::

    sched = build_scheduler(opt, "cosine", epochs=E, steps_per_epoch=len(loader))
    for epoch in range(E):
        for x, y in loader:
            loss_fn(model(x), y).backward()
            opt.step(); opt.zero_grad()
            sched.step()              # per-batch kinds: after every optimizer.step()
        # plateau instead: sched.step(val_loss) here, once per epoch
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from lrscout.errors import ConfigError

from ._checks import check_lr, check_run
from .registry import get_schedule


def build_scheduler(
    optimizer: Optimizer,
    kind: str,
    *,
    epochs: int,
    steps_per_epoch: int,
    **params: Any,
) -> LRScheduler:
    """Return the torch scheduler for ``kind`` over ``epochs x steps_per_epoch`` steps.

    Per-batch kinds return ``LambdaLR(optimizer, f)``: the learning rate of group ``g`` at
    step ``t`` is ``base_lr[g] * f(t)``, where ``base_lr[g]`` is the group's
    ``'initial_lr'`` if it has one (PyTorch's rule) and else its ``'lr'``. Step it once
    after every ``optimizer.step()``. ``plateau`` returns ``ReduceLROnPlateau``; step it
    once per epoch with the validation loss. Parameters and their defaults are listed in
    :mod:`lrscout.schedules.registry`; an unknown parameter raises :class:`ConfigError`.

    Example::

        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = build_scheduler(opt, "step", epochs=30, steps_per_epoch=100)  # /10 every 10 epochs
    """
    info = get_schedule(kind)
    epochs, steps_per_epoch = check_run(epochs, steps_per_epoch)
    resolved = info.resolve(params, epochs=epochs, steps_per_epoch=steps_per_epoch)
    if not info.per_batch:
        return ReduceLROnPlateau(optimizer, **resolved)
    multiplier = info.multiplier(resolved, epochs=epochs, steps_per_epoch=steps_per_epoch)
    return LambdaLR(optimizer, lr_lambda=multiplier)


def set_base_lr(optimizer: Optimizer, lr: float) -> list[float]:
    """Make ``lr`` the base learning rate of group 0, scaling the other groups with it.

    Group ``g`` gets ``lr * base[g] / base[0]`` as both ``'lr'`` and ``'initial_lr'``, where
    ``base`` is each group's ``'initial_lr'`` if present (an earlier scheduler may have
    moved ``'lr'``) and else its ``'lr'``: one multiplier moves every group, so the ratios
    between groups are preserved. Returns the new base learning rates.
    """
    lr = check_lr(lr)
    groups = optimizer.param_groups
    if not groups:
        raise ConfigError("optimizer has no parameter groups")
    bases = [float(g.get("initial_lr", g["lr"])) for g in groups]
    if not (math.isfinite(bases[0]) and bases[0] > 0):
        raise ConfigError(
            f"parameter group 0 needs a finite learning rate > 0 to keep group ratios, "
            f"got {bases[0]!r}"
        )
    # lr * (b / b0), not (lr * b) / b0: group 0 must get exactly lr.
    new = [lr * (b / bases[0]) for b in bases]
    for group, value in zip(groups, new):
        current = group["lr"]
        if isinstance(current, torch.Tensor):
            # A tensor lr (capturable / compiled optimizers) is updated in place, as torch does.
            current.fill_(value)
            group["initial_lr"] = current.clone()
        else:
            group["lr"] = value
            group["initial_lr"] = value
    return new
