"""Optimizer registry: the classic optimizers by name, and the LR-free ones as extras.

Each entry knows the LR people use by habit (``default_lr``), which the benchmarks use
as the "common defaults" baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from .errors import ConfigError, require, unknown_name

Params = Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]]


@dataclass(frozen=True)
class OptimizerInfo:
    """A named optimizer: how to build it and the LR it is habitually used with."""

    name: str
    build: Callable[[Params, float, float], torch.optim.Optimizer]
    default_lr: float
    lr_free: bool = False  # learns its own step size; `lr` is a multiplier (1.0 by design)
    extra: str | None = None  # pip extra that provides it


def _prodigy(params: Params, lr: float, wd: float) -> torch.optim.Optimizer:
    mod = require("prodigyopt", "lrfree")
    opt: torch.optim.Optimizer = mod.Prodigy(params, lr=lr, weight_decay=wd)  # type: ignore[attr-defined]
    return opt


def _schedulefree(params: Params, lr: float, wd: float) -> torch.optim.Optimizer:
    mod = require("schedulefree", "lrfree")
    opt: torch.optim.Optimizer = mod.AdamWScheduleFree(params, lr=lr, weight_decay=wd)  # type: ignore[attr-defined]
    return opt


def _dadapt(params: Params, lr: float, wd: float) -> torch.optim.Optimizer:
    mod = require("dadaptation", "bench")
    opt: torch.optim.Optimizer = mod.DAdaptAdam(params, lr=lr, weight_decay=wd)  # type: ignore[attr-defined]
    return opt


OPTIMIZERS: dict[str, OptimizerInfo] = {
    info.name: info
    for info in (
        OptimizerInfo("sgd", lambda p, lr, wd: torch.optim.SGD(p, lr=lr, weight_decay=wd), 0.01),
        OptimizerInfo("sgdm", lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, weight_decay=wd), 0.01),
        OptimizerInfo(
            "nesterov", lambda p, lr, wd: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd), 0.01
        ),
        OptimizerInfo("adam", lambda p, lr, wd: torch.optim.Adam(p, lr=lr, weight_decay=wd), 1e-3),
        OptimizerInfo("adamw", lambda p, lr, wd: torch.optim.AdamW(p, lr=lr, weight_decay=wd or 0.01), 1e-3),
        OptimizerInfo("rmsprop", lambda p, lr, wd: torch.optim.RMSprop(p, lr=lr, weight_decay=wd), 1e-2),
        OptimizerInfo("prodigy", _prodigy, 1.0, lr_free=True, extra="lrfree"),
        OptimizerInfo("schedulefree", _schedulefree, 2.5e-3, lr_free=True, extra="lrfree"),
        OptimizerInfo("dadapt", _dadapt, 1.0, lr_free=True, extra="bench"),
    )
}


def get_optimizer(name: str) -> OptimizerInfo:
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, list(OPTIMIZERS))
    return OPTIMIZERS[name]


def build_optimizer(name: str, params: Params, lr: float | None = None, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``params`` (tensors or param-group dicts)."""
    info = get_optimizer(name)
    lr = info.default_lr if lr is None else float(lr)
    if not lr > 0 or lr != lr or lr == float("inf"):
        raise ConfigError(f"learning rate must be a positive finite number, got {lr}")
    return info.build(params, lr, weight_decay)


def set_mode(optimizer: torch.optim.Optimizer, training: bool) -> None:
    """Schedule-Free optimizers keep two weight sequences and must be told train/eval."""
    method = getattr(optimizer, "train" if training else "eval", None)
    if callable(method):
        method()
