"""What the Lightning callbacks do, written once for ``lightning`` and ``pytorch_lightning``.

Both packages ship the same ``Trainer`` under two names, and a ``Trainer`` only accepts
callbacks derived from its own package's ``Callback``. The behaviour therefore lives in
two mixins with no Lightning import at all (they only call the trainer's public
attributes); :mod:`lrscout.integrations.lightning` and
:mod:`lrscout.integrations.pytorch_lightning` join each mixin to their package's
``Callback``.

The range test runs lrscout's own :func:`lrscout.find` on the module's
``training_step`` (through the strategy, so precision and DDP wrappers apply), the
trainer's training dataloader and optimizer; :class:`lrscout.state.Snapshot` inside
``find`` puts the weights, buffers, gradients, optimizer state and RNG streams back bit
for bit before the LR is set. The guard is :class:`lrscout.Guard`, fed the loss of each
optimizer step. :func:`lightning_task` turns a module and a datamodule into a
:class:`lrscout.TrainingTask` through :func:`lrscout.task_from`.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

import torch
from torch import nn

from ..curve import lr_ramp
from ..engine import find
from ..errors import ConfigError
from ..protocol import batch_size
from ..results import FindResult
from ..training import Guard
from ..training.guard import _GROUP_LR_KEYS, _divide, _divide_scheduler

log = logging.getLogger(__name__)

#: Attribute names looked up on the module (then in its ``hparams``) to keep in step with
#: the LR found, as Lightning's own finder does; ``configure_optimizers`` usually reads one.
LR_ATTRS = ("lr", "learning_rate")


# --------------------------------------------------------------------------- shared helpers


def single_optimizer(trainer: Any, who: str) -> torch.optim.Optimizer:
    """The trainer's only optimizer; several (GAN-style manual loops) are refused."""
    optimizers = list(trainer.optimizers)
    if len(optimizers) != 1:
        raise ConfigError(f"{who} needs exactly one optimizer from configure_optimizers, got {len(optimizers)}")
    return cast(torch.optim.Optimizer, optimizers[0])


def lr_schedulers(trainer: Any) -> list[Any]:
    """The torch schedulers the trainer steps (from ``configure_optimizers``)."""
    return [config.scheduler for config in getattr(trainer, "lr_scheduler_configs", None) or ()]


def step_loss(output: Any) -> torch.Tensor | None:
    """The loss in what ``training_step`` returns: a tensor, or a mapping with ``"loss"``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        loss = output.get("loss")
        return loss if isinstance(loss, torch.Tensor) else None
    return None


def _no_log(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``LightningModule.log`` while the range test calls ``training_step``."""


@contextlib.contextmanager
def muted_logging(pl_module: nn.Module) -> Iterator[None]:
    """Make ``self.log`` / ``self.log_dict`` no-ops on this instance for the duration.

    ``training_step`` usually logs, and Lightning refuses ``self.log`` from a hook
    outside its loop (or would fold the range test's losses into the first epoch's
    metrics); the sweep's losses belong to the :class:`FindResult`, not the logger.
    """
    names = ("log", "log_dict")
    saved = {name: pl_module.__dict__[name] for name in names if name in pl_module.__dict__}
    for name in names:
        object.__setattr__(pl_module, name, _no_log)
    try:
        yield
    finally:
        for name in names:
            if name in saved:
                object.__setattr__(pl_module, name, saved[name])
            else:
                object.__delattr__(pl_module, name)


# --------------------------------------------------------------------------- range test


class _Prepared:
    """A batch already on the device, with its index, passed through ``find`` untouched.

    The strategy has moved the batch through the module's transfer hooks; ``find``
    moves only tensors and containers of them, so this wrapper reaches the loss as it is.
    """

    __slots__ = ("batch", "index")

    def __init__(self, batch: Any, index: int) -> None:
        self.batch = batch
        self.index = index


class _DeviceBatches:
    """The training dataloader as ``find`` iterates it: :class:`_Prepared` batches.

    Each batch goes through the module's ``on_before_batch_transfer``, then the
    strategy's ``batch_to_device`` (``transfer_batch_to_device`` and
    ``on_after_batch_transfer``), as in Lightning's own training loop.
    """

    def __init__(self, loader: Any, trainer: Any, pl_module: Any) -> None:
        self.loader = loader
        self.trainer = trainer
        self.pl_module = pl_module

    def __iter__(self) -> Iterator[_Prepared]:
        before = getattr(self.pl_module, "_on_before_batch_transfer", None)
        for index, batch in enumerate(self.loader):
            if before is not None:
                batch = before(batch, dataloader_idx=0)
            yield _Prepared(self.trainer.strategy.batch_to_device(batch), index)


class _StrategyLoss:
    """``find``'s ``loss_fn``: ``training_step``'s loss, called through the strategy so that
    its precision context and DDP wrapper apply as in ``fit``."""

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy

    def __call__(self, model: nn.Module, prepared: _Prepared) -> torch.Tensor:
        loss = step_loss(self.strategy.training_step(prepared.batch, prepared.index))
        if loss is None:
            raise ConfigError(
                "training_step returned no loss (None, or a mapping without 'loss'); "
                "the range test needs a loss for every batch"
            )
        return loss


def _training_loader(trainer: Any) -> Any:
    """The trainer's training dataloader, set up now the way ``fit`` would set it up.

    ``fit_loop.setup_data()`` is what ``fit`` calls right after ``on_fit_start``; calling
    it first is harmless (the second call finds the loader in place).
    """
    trainer.fit_loop.setup_data()
    loader = trainer.train_dataloader
    if loader is None:
        raise ConfigError("the range test found no training dataloader (give fit() one or a datamodule)")
    if isinstance(loader, (Mapping, list, tuple)):
        raise ConfigError("the range test supports one training dataloader, not a collection of them")
    return loader


def _set_lr_attr(pl_module: Any, attr_name: str | None, lr: float) -> str | None:
    """Write ``lr`` where the module keeps its LR (attribute and/or ``hparams`` entry).

    Returns where it was written, or None when the module keeps none of the usual names.
    """
    names = (attr_name,) if attr_name else LR_ATTRS
    hparams = getattr(pl_module, "hparams", None)
    for name in names:
        places = []
        if name in vars(pl_module) or isinstance(getattr(type(pl_module), name, None), property):
            setattr(pl_module, name, lr)
            places.append(name)
        if isinstance(hparams, Mapping) and name in hparams:
            hparams[name] = lr  # type: ignore[index]
            places.append(f"hparams.{name}")
        if places:
            return " and ".join(places)
    if attr_name:
        raise ConfigError(f"attr_name {attr_name!r} is neither an attribute of the module nor in its hparams")
    return None


def apply_lr(optimizer: torch.optim.Optimizer, schedulers: list[Any], lr: float) -> None:
    """Scale every LR the optimizer and its schedulers remember so group 0 starts at ``lr``.

    One factor for all groups (their ratios are kept, as in the sweep) and for the
    schedulers' base LRs (so their next step scales from the new LR, not the old one).
    """
    old = float(optimizer.param_groups[0]["lr"])
    if not (math.isfinite(old) and old > 0):
        raise ConfigError(f"the optimizer's group 0 has lr={old}; it must be > 0 to scale from")
    factor = old / lr
    for group in optimizer.param_groups:
        group.update({k: _divide(group[k], factor) for k in _GROUP_LR_KEYS if k in group})
    if not isinstance(optimizer.param_groups[0]["lr"], torch.Tensor):
        optimizer.param_groups[0]["lr"] = float(lr)  # exactly the LR found, not old / (old / lr)
    for scheduler in schedulers:
        _divide_scheduler(scheduler, factor)


class FindAtFitStart:
    """Mixin for a Callback: lrscout's range test at fit start, then train at its LR.

    Args:
        start_lr, end_lr, num_iter, mode, diverge_factor: the sweep, as in :func:`lrscout.find`.
        attr_name: the module attribute (or ``hparams`` key) that holds the LR, updated
            too; by default ``lr`` or ``learning_rate`` when the module has one.

    After ``fit`` starts, ``result`` holds the :class:`~lrscout.FindResult` and the
    optimizer's group 0 LR is ``result.lr`` (other groups keep their ratios to it; an LR
    scheduler's base LRs scale with it). Skipped under ``fast_dev_run`` and when fit
    resumes from a checkpoint (whose optimizer state would overwrite the LR).
    """

    def __init__(
        self,
        *,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_iter: int = 100,
        mode: str = "exp",
        diverge_factor: float = 4.0,
        attr_name: str | None = None,
    ) -> None:
        lr_ramp(start_lr, end_lr, num_iter, mode)  # bad sweeps fail at construction, before fit
        if not (math.isfinite(diverge_factor) and diverge_factor > 1):
            raise ConfigError(f"diverge_factor must be a finite number > 1, got {diverge_factor}")
        self.start_lr = float(start_lr)
        self.end_lr = float(end_lr)
        self.num_iter = int(num_iter)
        self.mode = mode
        self.diverge_factor = float(diverge_factor)
        self.attr_name = attr_name
        self.result: FindResult | None = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if getattr(trainer, "fast_dev_run", False):
            log.info("range test skipped: fast_dev_run")
            return
        if getattr(trainer, "ckpt_path", None):
            log.info("range test skipped: fit resumes from %s, whose optimizer state sets the LR", trainer.ckpt_path)
            return
        if not getattr(pl_module, "automatic_optimization", True):
            raise ConfigError("the range test needs automatic optimization (training_step returns the loss)")
        optimizer = single_optimizer(trainer, "the range test")
        data = _DeviceBatches(_training_loader(trainer), trainer, pl_module)
        with muted_logging(pl_module):
            result = find(
                pl_module,
                data,
                optimizer,
                loss_fn=_StrategyLoss(trainer.strategy),
                start_lr=self.start_lr,
                end_lr=self.end_lr,
                num_iter=self.num_iter,
                mode=self.mode,
                diverge_factor=self.diverge_factor,
                accumulation_steps=int(getattr(trainer, "accumulate_grad_batches", 1)),
                scaler=getattr(getattr(trainer, "precision_plugin", None), "scaler", None),
            )
        apply_lr(optimizer, lr_schedulers(trainer), result.lr)
        where = _set_lr_attr(pl_module, self.attr_name, result.lr)
        self.result = result
        log.info("range test: lr %.3g (interval %.3g-%.3g)%s", result.lr, *result.interval,
                 f", also set in {where}" if where else "")


# --------------------------------------------------------------------------- guard


class GuardDuringFit:
    """Mixin for a Callback: :class:`lrscout.Guard` over every optimizer step of ``fit``.

    Args are :class:`lrscout.Guard`'s. The guard is built at train start (after any
    range test set the LR) on the module, the trainer's optimizer, its LR scheduler and
    the precision plugin's GradScaler. After each optimizer step it gets that step's
    loss (summed over accumulated batches, as Lightning normalises them): on NaN, a
    spike or growth it restores the last confirmed snapshot and divides the LR by
    ``factor``; past ``max_recoveries`` it raises :class:`~lrscout.errors.DivergenceError`,
    which stops ``fit`` with the last good weights in place.
    """

    def __init__(
        self,
        *,
        factor: float = 10.0,
        max_recoveries: int = 3,
        spike: float = 3.0,
        growth: float = 0.5,
        window: int = 20,
        snapshot_every: int = 20,
    ) -> None:
        self.options: dict[str, Any] = {
            "factor": factor, "max_recoveries": max_recoveries, "spike": spike,
            "growth": growth, "window": window, "snapshot_every": snapshot_every,
        }
        Guard(nn.Linear(1, 1), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), **self.options)  # check now
        self.guard: Guard | None = None
        self._loss = 0.0
        self._global_step = 0

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every detection so far (see :class:`lrscout.Guard`); empty before fit."""
        return self.guard.events if self.guard is not None else []

    @property
    def recoveries(self) -> int:
        """Rollbacks done so far."""
        return self.guard.recoveries if self.guard is not None else 0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not getattr(pl_module, "automatic_optimization", True):
            raise ConfigError("the guard callback needs automatic optimization; call lrscout.Guard in manual loops")
        optimizer = single_optimizer(trainer, "the guard")
        schedulers = lr_schedulers(trainer)
        if len(schedulers) > 1:
            raise ConfigError(f"the guard supports one LR scheduler, got {len(schedulers)}")
        self.guard = Guard(
            pl_module, optimizer,
            scheduler=schedulers[0] if schedulers else None,
            scaler=getattr(getattr(trainer, "precision_plugin", None), "scaler", None),
            **self.options,
        )
        self._loss = 0.0
        self._global_step = int(trainer.global_step)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = step_loss(outputs)
        if loss is None or self.guard is None:
            return  # a skipped batch (training_step returned None)
        self._loss += float(loss)
        if int(trainer.global_step) == self._global_step:
            return  # gradients still accumulating: no optimizer step yet
        self._global_step = int(trainer.global_step)
        loss_value, self._loss = self._loss, 0.0
        self.guard.step(loss_value)


# --------------------------------------------------------------------------- select on a LightningModule


class _DataModuleSource:
    """One datamodule per process, built, prepared and set up on first use.

    The train and validation factories share it; it is rebuilt (not pickled) in each
    worker process, as a datamodule may hold open files or large tensors.
    """

    def __init__(self, datamodule_fn: Callable[[], Any]) -> None:
        self.datamodule_fn = datamodule_fn
        self._datamodule: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"datamodule_fn": self.datamodule_fn, "_datamodule": None}

    def get(self) -> Any:
        if self._datamodule is None:
            datamodule = self.datamodule_fn()
            for hook in ("train_dataloader", "val_dataloader"):
                if not callable(getattr(datamodule, hook, None)):
                    raise ConfigError(f"datamodule_fn returned {type(datamodule).__name__}, which has no {hook}()")
            if callable(getattr(datamodule, "prepare_data", None)):
                datamodule.prepare_data()
            if callable(getattr(datamodule, "setup", None)):
                datamodule.setup("fit")
            self._datamodule = datamodule
        return self._datamodule


class _Loader:
    """``train_data`` / ``val_data`` for :func:`lrscout.task_from`: the datamodule's loader."""

    def __init__(self, source: _DataModuleSource, hook: str) -> None:
        self.source = source
        self.hook = hook
        self.__qualname__ = f"{_qualname(source.datamodule_fn)}.{hook}"

    def __call__(self) -> Any:
        return getattr(self.source.get(), self.hook)()


class _Module:
    """``model_fn``: a fresh LightningModule whose ``self.log`` does nothing (no trainer runs it)."""

    def __init__(self, module_fn: Callable[[], Any]) -> None:
        self.module_fn = module_fn
        self.__qualname__ = _qualname(module_fn)

    def __call__(self) -> nn.Module:
        module = self.module_fn()
        if not isinstance(module, nn.Module) or not callable(getattr(module, "training_step", None)):
            raise ConfigError(f"module_fn returned {type(module).__name__}, not a LightningModule")
        for name in ("log", "log_dict"):
            object.__setattr__(module, name, _no_log)
        return module


class _ConfiguredOptimizer:
    """``optimizer_fn(params, lr)``: the class and defaults of ``configure_optimizers``'s optimizer.

    ``configure_optimizers`` builds over the module's own parameters; lrscout hands
    others (a fresh model's, or parameter groups), so the optimizer is rebuilt over
    them from its class and its defaults, with ``lr`` replaced.
    """

    def __init__(self, module_fn: Callable[[], Any]) -> None:
        self.module_fn = module_fn
        self.__qualname__ = f"{_qualname(module_fn)}.configure_optimizers"
        self._recipe: tuple[type[torch.optim.Optimizer], dict[str, Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_recipe": None}

    def recipe(self) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
        if self._recipe is None:
            module = self.module_fn()
            try:
                configured = module.configure_optimizers()
            except Exception as exc:
                raise ConfigError(
                    f"configure_optimizers() failed outside a Trainer ({type(exc).__name__}: {exc}); "
                    "give lightning_task an optimizer_fn(params, lr)"
                ) from exc
            optimizer = configured_optimizer(configured)
            self._recipe = (type(optimizer), dict(optimizer.defaults))
        return self._recipe

    def __call__(self, params: Any, lr: float) -> torch.optim.Optimizer:
        cls, defaults = self.recipe()
        return cls(params, **{**defaults, "lr": lr})


def configured_optimizer(configured: Any) -> torch.optim.Optimizer:
    """The one optimizer in whatever ``configure_optimizers`` returned (any of its forms)."""
    if isinstance(configured, torch.optim.Optimizer):
        return configured
    if isinstance(configured, Mapping) and isinstance(configured.get("optimizer"), torch.optim.Optimizer):
        return cast(torch.optim.Optimizer, configured["optimizer"])
    if isinstance(configured, (list, tuple)) and configured:
        first = configured[0]
        if len(configured) == 2 and isinstance(first, (list, tuple)):  # ([optimizers], [schedulers])
            configured, first = first, first[0] if first else None
        if len(configured) == 1:
            return configured_optimizer(first)
        raise ConfigError(f"configure_optimizers returned {len(configured)} optimizers; lrscout tunes one")
    raise ConfigError(f"configure_optimizers returned {type(configured).__name__}, not an optimizer")


def training_step_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """``loss_fn``: the loss ``training_step`` returns (a tensor or ``{"loss": ...}``)."""
    loss = step_loss(cast(Any, model).training_step(batch, 0))
    if loss is None:
        raise ConfigError("training_step returned no loss (None, or a mapping without 'loss')")
    return loss


class _Recorder:
    """Stands in for ``self.log`` / ``self.log_dict`` during validation: per-key sums
    weighted by batch size, the way Lightning reduces ``on_epoch`` metrics to a mean."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.batch = 1

    def log(self, name: str, value: Any, *args: Any, batch_size: int | None = None, **kwargs: Any) -> None:
        n = self.batch if batch_size is None else int(batch_size)
        self.sums[name] = self.sums.get(name, 0.0) + float(value) * n
        self.counts[name] = self.counts.get(name, 0) + n

    def log_dict(self, dictionary: Mapping[str, Any], *args: Any, batch_size: int | None = None, **kwargs: Any) -> None:
        for name, value in dictionary.items():
            self.log(name, value, batch_size=batch_size)

    def mean(self, name: str) -> float:
        if name not in self.sums:
            logged = ", ".join(sorted(self.sums)) or "nothing"
            raise ConfigError(f"validation_step did not log {name!r} (it logged {logged}); pass metric= one of those")
        return self.sums[name] / max(self.counts[name], 1)


class _LoggedMetric:
    """``metric(model, val_batches)``: the mean of what ``validation_step`` logs as ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.__qualname__ = f"validation_step:{key}"

    def __call__(self, model: nn.Module, batches: Iterable[Any]) -> float:
        step = getattr(model, "validation_step", None)
        if not callable(step):
            raise ConfigError(f"the module has no validation_step to log {self.key!r}")
        recorder = _Recorder()
        saved = {name: model.__dict__.get(name) for name in ("log", "log_dict")}
        object.__setattr__(model, "log", recorder.log)
        object.__setattr__(model, "log_dict", recorder.log_dict)
        try:
            for index, batch in enumerate(batches):
                recorder.batch = batch_size(batch)
                step(batch, index)
        finally:
            for name, value in saved.items():
                if value is None:
                    object.__delattr__(model, name)
                else:
                    object.__setattr__(model, name, value)
        return recorder.mean(self.key)


def _qualname(fn: Any) -> str:
    fn = getattr(fn, "func", fn)
    return str(getattr(fn, "__qualname__", None) or type(fn).__qualname__)


def lightning_task(
    module_fn: Callable[[], Any],
    datamodule_fn: Callable[[], Any],
    *,
    metric: str | None = None,
    higher_is_better: bool = True,
    percent: bool = False,
    optimizer_fn: Callable[[Any, float], torch.optim.Optimizer] | None = None,
    seed: int = 0,
    device: str | None = None,
    name: str | None = None,
) -> Any:
    """A :class:`lrscout.TrainingTask` from a LightningModule and a LightningDataModule.

    * ``module_fn()``: a fresh module (seeded by lrscout first); the loss of a batch is
      what its ``training_step`` returns.
    * ``datamodule_fn()``: a datamodule, prepared and set up for ``"fit"`` once per process;
      its ``train_dataloader()`` and ``val_dataloader()`` give the batches.
    * ``metric``: a key that ``validation_step`` logs (``"val_acc"``), averaged over the
      validation batches weighted by batch size, as Lightning reduces ``on_epoch`` metrics;
      ``higher_is_better`` and ``percent`` describe it. Default: accuracy of
      ``module(inputs)`` on ``(inputs, targets)`` batches.
    * The optimizer: ``configure_optimizers()``'s class and defaults, rebuilt at each LR
      lrscout tries (its LR schedulers are not used: ``select`` applies the schedule it is
      given), or ``optimizer_fn(params, lr)``.

    No Trainer runs: lrscout's own loop calls ``training_step`` and ``validation_step``
    (``self.log`` is recorded or muted), moving batches with its own device transfer.
    The functions must be module-level for the process pool and Ray.

    Example::

        task = lightning_task(LitNet, DigitsDataModule, metric="val_acc", name="lit-digits")
        result = lrscout.select(task, schedule="cosine", epochs=10, out_dir="runs/lit")
    """
    from ..custom import task_from

    for what, fn in (("module_fn", module_fn), ("datamodule_fn", datamodule_fn)):
        if not callable(fn):
            raise ConfigError(f"{what} must be a function (or class) that returns a new object, got {type(fn).__name__}")
    source = _DataModuleSource(datamodule_fn)
    return task_from(
        _Module(module_fn),
        _Loader(source, "train_dataloader"),
        _Loader(source, "val_dataloader"),
        optimizer_fn if optimizer_fn is not None else _ConfiguredOptimizer(module_fn),
        training_step_loss,
        _LoggedMetric(metric) if metric is not None else None,
        metric_name=metric,
        higher_is_better=higher_is_better,
        percent=percent,
        seed=seed,
        device=device,
        name=name,
    )
