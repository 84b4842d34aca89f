"""The second range test of fine-tuning: sweep the backbone ratio with the head LR fixed.

:func:`lrscout.find` scales every group by one multiplier. Here the head groups are held
at their LR and only the backbone groups sweep, from ``head_lr * start_ratio`` to
``head_lr * end_ratio`` (their layer-decay ratios to each other kept). It is the same
range test, run through :class:`GroupView`, an optimizer seen through a subset of its
groups, so its exact restore holds unchanged: the snapshot is of the whole optimizer.

Example::

    groups = param_groups(model, head_lr=first.lr, backbone_ratio=0.1)
    optimizer = torch.optim.Adam(groups)
    second = find_ratio(model, loader, optimizer)
    second.config["ratio"]          # the recommended backbone LR / head LR
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..engine import find
from ..errors import ConfigError
from ..results import FindResult

Batch = tuple[torch.Tensor, torch.Tensor]


class GroupView:
    """An optimizer as :func:`lrscout.find` sees it, with only some groups visible.

    ``param_groups`` lists the chosen groups (the same dict objects, so LR changes reach
    the optimizer); stepping, zeroing and ``state_dict`` / ``load_state_dict`` act on the
    whole optimizer; anything else (``train()``/``eval()`` of Schedule-Free) is forwarded.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, indices: list[int]) -> None:
        self.optimizer = optimizer
        self.param_groups = [optimizer.param_groups[i] for i in indices]

    def step(self, closure: Any = None) -> Any:
        return self.optimizer.step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)


def head_groups(optimizer: torch.optim.Optimizer) -> list[int]:
    """Indices of the groups named ``head`` / ``head/...`` by :func:`param_groups`."""
    return [i for i, g in enumerate(optimizer.param_groups) if str(g.get("name", "")).split("/")[0] == "head"]


def find_ratio(
    model: nn.Module,
    train_data: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module | None = None,
    *,
    start_ratio: float = 1e-3,
    end_ratio: float = 10.0,
    num_iter: int = 100,
    **find_kwargs: Any,
) -> FindResult:
    """Range test of the backbone ratio: backbone LR swept, head LR fixed at group 0's.

    ``optimizer`` must hold named groups from :func:`param_groups` (head first). The
    result is in LR units of the fastest backbone group (the one nearest the head);
    ``config["ratio"]`` is its recommended LR over the head LR, ``config["head_lr"]`` the
    fixed head LR and ``config["ratio_interval"]`` the interval over the head LR. Other
    keyword arguments go to :func:`lrscout.find`.
    """
    heads = head_groups(optimizer)
    if not heads or heads[0] != 0:
        raise ConfigError("find_ratio needs param groups from lrscout.param_groups (group 0 named 'head')")
    head_lr = float(optimizer.param_groups[0]["lr"])
    if not start_ratio > 0 or not end_ratio > start_ratio:
        raise ConfigError(f"need 0 < start_ratio < end_ratio, got {start_ratio}, {end_ratio}")
    backbone = [i for i in range(len(optimizer.param_groups)) if i not in heads]
    if not backbone:
        raise ConfigError("the optimizer has no backbone groups to sweep")
    lrs = [float(optimizer.param_groups[i]["lr"]) for i in backbone]
    if max(lrs) <= 0:
        raise ConfigError("the backbone groups all have lr 0; build the groups with backbone_ratio > 0")
    base = max(range(len(backbone)), key=lambda k: lrs[k])
    view = GroupView(optimizer, backbone)
    result = find(
        model, train_data, view, criterion,  # type: ignore[arg-type]
        start_lr=head_lr * start_ratio, end_lr=head_lr * end_ratio, num_iter=num_iter,
        base_group=base, **find_kwargs,
    )
    config = {
        **result.config,
        "sweep": "backbone_ratio",
        "optimizer": type(optimizer).__name__,
        "head_lr": head_lr,
        "ratio": result.lr / head_lr,
        "ratio_interval": [result.interval[0] / head_lr, result.interval[1] / head_lr],
        "groups": [str(g.get("name", i)) for i, g in enumerate(optimizer.param_groups)],
    }
    return dataclasses.replace(result, config=config)
