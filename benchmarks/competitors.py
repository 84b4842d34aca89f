"""One adapter per LR finder: run *their* code with *their* documented defaults.

Every adapter takes a freshly built model, a :class:`Setup` (how to build the task's
optimizer, the training batches) and optionally a :class:`Sweep`. Without a sweep each
tool runs exactly as its documentation shows; with one (the speed benchmark) every tool
sweeps the same LR range for the same number of steps with early stopping off, so that the
work is identical and only the tool's overhead differs.

Adapters return a :class:`Found`: the tool's suggestions by name, the wall time of the call
(tool objects built inside the clock: that is what a user pays) and the number of steps
the sweep took. The heavy packages are imported inside the adapters.

Documented defaults used (checked against the installed sources):

* fastai ``Learner.lr_find(start_lr=1e-7, end_lr=10, num_it=100, stop_div=True)``, with
  ``suggest_funcs=(minimum, steep, valley, slide)``; the model, plain torch DataLoaders in a
  ``DataLoaders`` and the torch optimizer through ``OptimWrapper`` as in fastai's
  "Pure PyTorch to fastai" guide. ``minimum`` is fastai's "minimum / 10".
* torch-lr-finder README: optimizer built at ``lr=1e-7``,
  ``LRFinder(model, optimizer, criterion).range_test(loader, end_lr=100, num_iter=100)``
  (``smooth_f=0.05``, ``diverge_th=5``), then ``plot(suggest_lr=True)`` -- the steepest
  gradient after skipping 10 / 5 points -- under the Agg backend, then ``reset()``.
* Lightning ``Tuner(trainer).lr_find(module)`` (``min_lr=1e-8, max_lr=1,
  num_training=100, early_stop_threshold=4``) then ``.suggestion()``. The Trainer has
  logger, checkpointing, progress bar and model summary off: they change no number and
  only cost Lightning time.
* lrscout ``find(model, loader, optimizer)`` (1e-7 .. 10, 100 steps) and its ``.lr``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

OptimizerFactory = Callable[[Any, float], torch.optim.Optimizer]


@dataclass(frozen=True)
class Setup:
    """What every finder gets: the task's optimizer factory and its training batches."""

    build_optimizer: OptimizerFactory  # (params, lr) -> optimizer
    train_loader: torch.utils.data.DataLoader
    default_lr: float  # the LR the optimizer is habitually built with


@dataclass(frozen=True)
class Sweep:
    """A fixed sweep for the speed benchmark: same range, same steps, no early stop."""

    start_lr: float
    end_lr: float
    num_iter: int


@dataclass
class Found:
    suggestions: dict[str, float | None]
    seconds: float
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)


def _silenced() -> contextlib.ExitStack:
    """Swallow progress bars and prints (tqdm, fastprogress, "Suggested LR: ...")."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def _valid(lr: Any) -> float | None:
    try:
        lr = float(lr)
    except (TypeError, ValueError):
        return None
    return lr if math.isfinite(lr) and lr > 0 else None


# ---------------------------------------------------------------------------- bare loop


def bare_loop(model: nn.Module, setup: Setup, sweep: Sweep) -> Found:
    """The floor: the same exponential LR ramp and steps, no recording beyond the loss value,
    no snapshot, no restore -- the least any range test must do."""
    criterion = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    optimizer = setup.build_optimizer(model.parameters(), sweep.start_lr)
    ratio = (sweep.end_lr / sweep.start_lr) ** (1 / max(sweep.num_iter - 1, 1))
    losses: list[float] = []
    model.train()
    step, lr = 0, sweep.start_lr
    while step < sweep.num_iter:
        for x, y in setup.train_loader:
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            step, lr = step + 1, lr * ratio
            if step >= sweep.num_iter:
                break
    return Found({}, time.perf_counter() - t0, len(losses))


# ---------------------------------------------------------------------------- lrscout


def lrscout_find(model: nn.Module, setup: Setup, sweep: Sweep | None = None) -> Found:
    import lrscout

    t0 = time.perf_counter()
    optimizer = setup.build_optimizer(model.parameters(), setup.default_lr)
    if sweep is None:
        result = lrscout.find(model, setup.train_loader, optimizer)
    else:
        result = lrscout.find(
            model, setup.train_loader, optimizer,
            start_lr=sweep.start_lr, end_lr=sweep.end_lr, num_iter=sweep.num_iter, diverge_factor=1e9,  # must be finite; never reached
        )
    seconds = time.perf_counter() - t0
    return Found(
        {"lrscout-find": _valid(result.lr)}, seconds, len(result.history_lr),
        {"interval": list(result.interval), "suggestions": dict(result.suggestions), "rule": result.rule},
    )


# ---------------------------------------------------------------------------- fastai


def fastai_lr_find(model: nn.Module, setup: Setup, sweep: Sweep | None = None) -> Found:
    from fastai.callback.schedule import minimum, slide, steep, valley
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper

    with tempfile.TemporaryDirectory() as tmp, _silenced():
        t0 = time.perf_counter()
        dls = DataLoaders(setup.train_loader, setup.train_loader)  # validation is never run by lr_find
        opt_func = partial(OptimWrapper, opt=setup.build_optimizer)
        learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), opt_func=opt_func, path=tmp)
        with learn.no_bar():
            if sweep is None:
                res = learn.lr_find(suggest_funcs=(minimum, steep, valley, slide), show_plot=False)
                found = {f"fastai-{name}": _valid(getattr(res, name)) for name in ("valley", "steep", "minimum", "slide")}
            else:
                learn.lr_find(start_lr=sweep.start_lr, end_lr=sweep.end_lr, num_it=sweep.num_iter,
                              stop_div=False, show_plot=False, suggest_funcs=None)
                found = {}
        seconds = time.perf_counter() - t0
        steps = len(learn.recorder.lrs)
    return Found(found, seconds, steps)


# ---------------------------------------------------------------------------- torch-lr-finder


def torch_lr_finder(model: nn.Module, setup: Setup, sweep: Sweep | None = None) -> Found:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch_lr_finder import LRFinder

    start = 1e-7 if sweep is None else sweep.start_lr
    with _silenced():
        t0 = time.perf_counter()
        optimizer = setup.build_optimizer(model.parameters(), start)
        finder = LRFinder(model, optimizer, nn.CrossEntropyLoss())
        if sweep is None:
            finder.range_test(setup.train_loader, end_lr=100, num_iter=100)
        else:
            finder.range_test(setup.train_loader, end_lr=sweep.end_lr, num_iter=sweep.num_iter, diverge_th=math.inf)
        steps = len(finder.history["lr"])
        lr: float | None = None
        if sweep is None:  # the suggestion is only reachable through plot()
            out = finder.plot(suggest_lr=True)
            lr = _valid(out[1]) if isinstance(out, tuple) else None
            plt.close("all")
        finder.reset()
        seconds = time.perf_counter() - t0
    return Found({"torch-lr-finder": lr} if sweep is None else {}, seconds, steps)


# ---------------------------------------------------------------------------- Lightning


def _lit_module(model: nn.Module, build_optimizer: OptimizerFactory, lr: float) -> Any:
    import pytorch_lightning as pl

    class LitClassifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.lr = lr  # the attribute Tuner.lr_find sweeps

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(self.model(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return build_optimizer(self.parameters(), self.lr)

    return LitClassifier()


def lightning_lr_find(model: nn.Module, setup: Setup, sweep: Sweep | None = None) -> Found:
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):  # banners, "LR set to ..."
        logging.getLogger(name).setLevel(logging.ERROR)
    device = next(model.parameters()).device
    with tempfile.TemporaryDirectory() as tmp, _silenced():
        t0 = time.perf_counter()
        module = _lit_module(model, setup.build_optimizer, setup.default_lr)
        trainer = pl.Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, default_root_dir=tmp,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )
        tuner = Tuner(trainer)
        if sweep is None:
            finder = tuner.lr_find(module, train_dataloaders=setup.train_loader)
            lr = _valid(finder.suggestion()) if finder is not None else None
        else:
            finder = tuner.lr_find(module, train_dataloaders=setup.train_loader, min_lr=sweep.start_lr,
                                   max_lr=sweep.end_lr, num_training=sweep.num_iter, early_stop_threshold=None,
                                   update_attr=False)
            lr = None
        seconds = time.perf_counter() - t0
    steps = len(finder.results.get("lr", [])) if finder is not None else 0
    return Found({"lightning": lr} if sweep is None else {}, seconds, steps)


#: name -> adapter; the speed benchmark runs them all in this order, interleaved.
FINDERS: dict[str, Callable[..., Found]] = {
    "lrscout": lrscout_find,
    "fastai": fastai_lr_find,
    "torch-lr-finder": torch_lr_finder,
    "lightning": lightning_lr_find,
}


# ---------------------------------------------------------------------------- LR-free optimizers


@dataclass(frozen=True)
class LrFree:
    """An LR-free optimizer with its authors' recommended defaults and schedule."""

    name: str
    build: Callable[[Iterable[nn.Parameter], int], tuple[torch.optim.Optimizer, Any]]
    note: str


def _prodigy(params: Iterable[nn.Parameter], total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    from prodigyopt import Prodigy

    opt = Prodigy(params, lr=1.0)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def _dadapt(params: Iterable[nn.Parameter], total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    from dadaptation import DAdaptAdam

    opt = DAdaptAdam(params, lr=1.0)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def _schedulefree(params: Iterable[nn.Parameter], total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    from schedulefree import AdamWScheduleFree

    return AdamWScheduleFree(params, lr=0.0025, warmup_steps=max(1, total_steps // 20)), None


LR_FREE: dict[str, LrFree] = {
    f.name: f
    for f in (
        LrFree("prodigy", _prodigy, "Prodigy(lr=1.0) + CosineAnnealingLR over all steps (README)"),
        LrFree("schedulefree", _schedulefree,
               "AdamWScheduleFree(lr=0.0025) with warmup_steps = 5% of steps (README: warmup recommended); "
               ".train()/.eval() around evaluation"),
        LrFree("dadapt-adam", _dadapt, "DAdaptAdam(lr=1.0) + the schedule we use elsewhere, cosine (README)"),
    )
}
