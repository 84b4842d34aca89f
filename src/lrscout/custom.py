"""The user's own model, data, optimizer and loss as a :class:`~lrscout.protocol.TrainingTask`.

:func:`task_from` wraps what a training script already has: a function that builds the
model, the training and validation data (a torch ``Dataset``, or a function that returns a
``DataLoader``), and the optimizer (a function ``(params, lr) -> Optimizer``, or a name from
lrscout's registry). Batches may have any structure (a tuple, a dict, several inputs):
give ``loss_fn(model, batch) -> scalar tensor`` (models that compute their own loss) and
``metric(model, val_batches) -> float`` for anything but ``(inputs, targets)``
classification, whose defaults are cross-entropy and accuracy.

Example::

    def make_model():
        return torchvision.models.resnet18(num_classes=10)

    def make_optimizer(params, lr):
        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    task = lrscout.task_from(make_model, train_set, val_set, make_optimizer, batch_size=128, name="cifar-r18")
    result = lrscout.select(task, epochs=10, out_dir="runs/select")

Identity (resume): ``to_json()`` holds the ``name`` given and a fingerprint of the task
(the seeded initial weights, the optimizer, the first training batch, the sizes of both
data sets, the loss and metric functions); a selection folder written for another task is
refused. The fingerprint is computed once, on first use.

:func:`load_task` is what the CLI's ``--task`` does: import ``module:function`` or
``path/to/file.py:function`` and call the function for the task.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from .errors import ConfigError, DataError
from .optim import build_optimizer as build_named_optimizer
from .optim import get_optimizer
from .protocol import (ACCURACY, Batch, Evaluation, LossFn, Metric, TrainingTask, batch_size, chance_note, class_stats,
                       classification_eval, cross_entropy_loss, scalar_loss, to_device)
from .state import RngState
from .task import resolve_device, seed_everything

log = logging.getLogger(__name__)

ModelFn = Callable[[], nn.Module]
OptimizerFn = Callable[[Any, float], torch.optim.Optimizer]
#: ``metric(model, val_batches) -> float``: called in eval mode without gradients.
MetricFn = Callable[[nn.Module, Iterable[Batch]], float]
Data = Any  # a Dataset, or a function returning an iterable of batches (a DataLoader)

#: The LR an optimizer is built at when none is asked for (the range test: only the
#: ratios between parameter groups matter to it).
HABITUAL_LR = 0.01


def _name_of(fn: Any) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    module = getattr(fn, "__module__", None) or type(fn).__module__
    qual = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{qual}"


class CustomTask:
    """A task from the user's objects; build it with :func:`task_from`."""

    def __init__(
        self,
        model_fn: ModelFn,
        train_data: Data,
        val_data: Data,
        optimizer: OptimizerFn | str,
        *,
        loss_fn: LossFn | None = None,
        metric: MetricFn | None = None,
        metric_name: str | None = None,
        higher_is_better: bool = True,
        percent: bool | None = None,
        batch_size: int = 64,
        val_batch_size: int = 256,
        collate_fn: Callable[[list[Any]], Batch] | None = None,
        seed: int = 0,
        device: str | None = None,
        weight_decay: float = 0.0,
        name: str | None = None,
    ) -> None:
        if not callable(model_fn):
            raise ConfigError(f"model_fn must be a function returning an nn.Module, got {type(model_fn).__name__}")
        if isinstance(optimizer, str):
            get_optimizer(optimizer)  # an unknown name fails now, listing the choices
        elif not callable(optimizer):
            raise ConfigError("optimizer_fn must be a function (params, lr) -> Optimizer, or an optimizer name")
        for what, fn in (("loss_fn", loss_fn), ("metric", metric)):
            if fn is not None and not callable(fn):
                raise ConfigError(f"{what} must be a function, got {type(fn).__name__}")
        if batch_size < 1 or val_batch_size < 1:
            raise ConfigError(f"batch sizes must be >= 1, got {batch_size} and {val_batch_size}")
        _check_data("train_data", train_data)
        _check_data("val_data", val_data)
        self.model_fn = model_fn
        self.train_data = train_data
        self.val_data = val_data
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.metric_fn = metric
        self._metric = ACCURACY if metric is None else Metric(
            str(metric_name or getattr(metric, "__name__", "score")), higher_is_better,
            bool(percent) if percent is not None else False)
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.collate_fn = collate_fn
        self._seed = int(seed)
        self.device = device
        self.weight_decay = weight_decay
        self.name = name
        self._identity: dict[str, Any] | None = None
        self._majority: tuple[float, int, float, int] | None = None
        self._baseline: float | None = None
        resolve_device(device)  # an unknown device fails now

    # -- the protocol ------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self._seed

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @property
    def metric(self) -> Metric:
        return self._metric

    @property
    def classification(self) -> bool:
        return self.loss_fn is None and self.metric_fn is None

    def build_model(self) -> nn.Module:
        seed_everything(self._seed)
        model = self.model_fn()
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model_fn returned {type(model).__name__}, not a torch nn.Module")
        if not any(True for _ in model.parameters()):
            raise ConfigError("the model from model_fn has no parameters to train")
        return model.to(self.torch_device)

    def build_optimizer(self, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
        value = HABITUAL_LR if lr is None else lr
        if isinstance(self.optimizer, str):
            return build_named_optimizer(self.optimizer, params, lr, self.weight_decay)
        opt = self.optimizer(params, value)
        if not isinstance(opt, torch.optim.Optimizer):
            raise ConfigError(f"optimizer_fn returned {type(opt).__name__}, not a torch Optimizer")
        return opt

    def train_loader(self) -> Iterable[Batch]:
        """The training batches, shuffled by a generator seeded with the task's seed (the
        same order on every call), or what the user's factory returns."""
        if isinstance(self.train_data, Dataset):
            sampler = RandomSampler(self.train_data,  # type: ignore[arg-type]  # map-style: checked in __init__
                                    generator=torch.Generator().manual_seed(self._seed))
            return DataLoader(self.train_data, batch_size=self.batch_size, sampler=sampler,
                              collate_fn=self.collate_fn)
        return _from_factory("train_data", self.train_data)

    def val_loader(self) -> Iterable[Batch]:
        if isinstance(self.val_data, Dataset):
            return DataLoader(self.val_data, batch_size=self.val_batch_size, shuffle=False,
                              collate_fn=self.collate_fn)
        return _from_factory("val_data", self.val_data)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        batch = to_device(batch, next(model.parameters()).device)
        if self.loss_fn is None:
            return cross_entropy_loss(model, batch)
        return scalar_loss(self.loss_fn(model, batch))

    def evaluate(self, model: nn.Module) -> Evaluation:
        """Mean loss (weighted by batch size) and the metric over the validation batches."""
        if self.classification:
            return classification_eval(model, self.val_loader())
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                total, count = 0.0, 0
                for batch in self.val_loader():
                    n = batch_size(batch)
                    total += float(self.loss(model, batch)) * n
                    count += n
                if count == 0:
                    raise ConfigError("the validation data yields zero batches; give a non-empty dataset")
                loss = total / count
                if self.metric_fn is None:
                    score = classification_eval(model, self.val_loader()).score
                else:
                    score = self.metric_fn(model, _OnDevice(self.val_loader(), device))
        finally:
            model.train(was_training)
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise ConfigError(f"metric {self._metric.name!r} returned {type(score).__name__}, not a number") from None
        if math.isnan(score) and math.isfinite(loss):
            raise ConfigError(f"metric {self._metric.name!r} returned NaN for a model whose validation loss is "
                              f"finite ({loss:.4g}); it must return a number for every model")
        if math.isnan(score):
            score = self._metric.worst()
        return Evaluation(score, loss if math.isfinite(loss) else math.inf)

    def learned_nothing(self, evaluation: Evaluation) -> str | None:
        """For accuracy on ``(inputs, targets)``: the chance rule of
        :func:`~lrscout.protocol.chance_note`. For any other metric: a validation loss no
        better than the untrained model's (measured once, on the seeded fresh model)."""
        if self.metric_fn is not None or self.loss_fn is not None:
            baseline = self._untrained_loss()
            if math.isfinite(baseline) and evaluation.loss >= baseline:
                return (f"a validation loss ({evaluation.loss:.4g}) no better than the untrained model's "
                        f"({baseline:.4g})")
            return None
        if self._majority is None:
            counts: dict[int, int] = {}
            for batch in self.val_loader():
                labels = batch[1] if isinstance(batch, (tuple, list)) and len(batch) == 2 else None
                if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point:
                    return None
                for k, v in zip(*torch.unique(labels, return_counts=True)):
                    counts[int(k)] = counts.get(int(k), 0) + int(v)
            if not sum(counts.values()):
                return None
            self._majority = (*class_stats(list(counts.values())), max(counts) + 1)
        majority, n, prior, classes = self._majority
        return chance_note(evaluation.score, evaluation.loss, majority, n, classes, prior)

    def _untrained_loss(self) -> float:
        if self._baseline is None:
            rng = RngState.capture()
            try:
                self._baseline = self.evaluate(self.build_model()).loss
            finally:
                rng.restore()
        return self._baseline

    def with_optimizer(self, name: str) -> CustomTask:
        get_optimizer(name)
        other = copy.copy(self)
        other.optimizer = name
        other._identity = None
        return other

    def to_json(self) -> dict[str, Any]:
        """``{"kind": "custom", "name": ..., "fingerprint": ...}`` (see the module docstring)."""
        if self._identity is None:
            self._identity = {"kind": "custom", "name": self.name, "fingerprint": self.fingerprint()}
        return dict(self._identity)

    # -- identity ----------------------------------------------------------------------
    def fingerprint(self) -> str:
        """16 hex digits of SHA-256 over what makes two tasks train differently. Builds the
        model and reads one batch; the random streams are put back afterwards."""
        h = hashlib.sha256()

        def add(*parts: Any) -> None:
            for p in parts:
                if isinstance(p, torch.Tensor):
                    t = p.detach().to("cpu").contiguous()
                    h.update(str((tuple(t.shape), str(t.dtype))).encode())
                    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
                else:
                    h.update(repr(p).encode())
                h.update(b"|")

        rng = RngState.capture()
        try:
            model = self.build_model()
            add(type(model).__qualname__)
            for key, value in model.state_dict().items():
                add(key, value)
            opt = self.build_optimizer(model.parameters())
            add(type(opt).__qualname__, sorted((k, repr(v)) for k, v in opt.defaults.items()))
            loader = self.train_loader()
            add(len(loader) if hasattr(loader, "__len__") else None)  # type: ignore[arg-type]
            first = next(iter(loader), None)
            if first is None:
                raise ConfigError("the training data yields zero batches; give a non-empty dataset")
            _add_batch(add, first)
            val = self.val_loader()
            add(len(val) if hasattr(val, "__len__") else None)  # type: ignore[arg-type]
        finally:
            rng.restore()
        add(self._seed, self.batch_size, self.val_batch_size, self.weight_decay)
        add(_name_of(self.loss_fn) if self.loss_fn else None, _name_of(self.metric_fn) if self.metric_fn else None,
            self._metric.to_json(), self.optimizer if isinstance(self.optimizer, str) else _name_of(self.optimizer))
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"CustomTask(name={self.name!r}, model_fn={_name_of(self.model_fn)})"


def _add_batch(add: Callable[..., None], batch: Batch) -> None:
    if isinstance(batch, dict):
        for k in sorted(batch, key=str):
            add(k)
            _add_batch(add, batch[k])
    elif isinstance(batch, (list, tuple)):
        add(len(batch))
        for v in batch:
            _add_batch(add, v)
    else:
        add(batch)


class _OnDevice:
    """Validation batches moved to the model's device as the metric iterates them."""

    def __init__(self, batches: Iterable[Batch], device: torch.device) -> None:
        self.batches = batches
        self.device = device

    def __iter__(self) -> Any:
        return (to_device(b, self.device) for b in self.batches)

    def __len__(self) -> int:
        return len(self.batches)  # type: ignore[arg-type]


def _check_data(what: str, data: Data) -> None:
    if isinstance(data, Dataset):
        try:
            n = len(data)  # type: ignore[arg-type]
        except TypeError:
            raise ConfigError(f"{what} is a Dataset without a length; give a map-style Dataset or a DataLoader "
                              "factory") from None
        if n == 0:
            raise ConfigError(f"{what} is empty (zero samples)")
        return
    if isinstance(data, DataLoader):
        raise ConfigError(f"{what} is a DataLoader; give its Dataset, or a function that returns a fresh "
                          "DataLoader (so every trial sees the same seeded order)")
    if not callable(data):
        raise ConfigError(f"{what} must be a torch Dataset or a function returning a DataLoader, "
                          f"got {type(data).__name__}")


def _from_factory(what: str, factory: Callable[[], Iterable[Batch]]) -> Iterable[Batch]:
    loader = factory()
    if not isinstance(loader, Iterable):
        raise ConfigError(f"{what}() returned {type(loader).__name__}, not an iterable of batches")
    return loader


def task_from(
    model_fn: ModelFn,
    train_data: Data,
    val_data: Data,
    optimizer_fn: OptimizerFn | str,
    loss_fn: LossFn | None = None,
    metric: MetricFn | None = None,
    *,
    metric_name: str | None = None,
    higher_is_better: bool = True,
    percent: bool | None = None,
    batch_size: int = 64,
    val_batch_size: int = 256,
    collate_fn: Callable[[list[Any]], Batch] | None = None,
    seed: int = 0,
    device: str | None = None,
    weight_decay: float = 0.0,
    name: str | None = None,
) -> CustomTask:
    """A training task from the user's objects (see the module docstring).

    * ``model_fn()``: a fresh model; lrscout seeds torch/numpy/python with ``seed`` first,
      so every trial starts from the same weights.
    * ``train_data`` / ``val_data``: a ``Dataset`` (batched by ``batch_size`` /
      ``val_batch_size`` with ``collate_fn``; training order shuffled by a generator seeded
      with ``seed``), or a function returning a fresh ``DataLoader`` each call (it must
      give the same order each call for trials to be comparable).
    * ``optimizer_fn(params, lr)``: the optimizer (``params`` may be parameter groups), or
      a registry name (``"sgd"``, ``"adamw"``, ...) with ``weight_decay``.
    * ``loss_fn(model, batch)``: a scalar loss (batch already on the model's device);
      default: cross-entropy of ``model(inputs)`` for ``(inputs, targets)`` batches.
    * ``metric(model, val_batches)``: the validation score, called in eval mode without
      gradients (batches on the model's device); named ``metric_name`` (default: the
      function's name), ``higher_is_better``, ``percent`` (show as a percentage);
      default: accuracy.
    * ``name``: part of the task's identity for resuming into an output folder.
    """
    return CustomTask(model_fn, train_data, val_data, optimizer_fn, loss_fn=loss_fn, metric=metric,
                      metric_name=metric_name, higher_is_better=higher_is_better, percent=percent,
                      batch_size=batch_size, val_batch_size=val_batch_size, collate_fn=collate_fn, seed=seed,
                      device=device, weight_decay=weight_decay, name=name)


def load_task(spec: str) -> TrainingTask:
    """The task that ``spec`` returns: ``"package.module:function"`` or
    ``"path/to/file.py:function"`` (the function is called without arguments).

    The current directory is importable (as for ``python -m``), and so is a file's folder,
    in this process and in worker processes started after this call.
    """
    task = load_target(spec)
    if not isinstance(task, TrainingTask):
        raise ConfigError(f"{spec} returned {type(task).__name__}, not a training task; return "
                          "lrscout.task_from(...) or a lrscout.Task")
    return task


def load_target(spec: str) -> Any:
    """What the function ``spec`` names returns, unchecked (see :func:`load_task`; the CLI's
    ``select`` also takes an objective)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise ConfigError(f"task {spec!r} is not MODULE:FUNCTION or FILE.py:FUNCTION")
    if target.endswith(".py") or os.sep in target or "/" in target:
        module = _import_file(Path(target))
    else:
        _importable(Path.cwd())
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ConfigError(f"cannot import {target!r} for task {spec!r}: {exc}") from None
        except Exception as exc:
            raise ConfigError(f"importing {target!r} failed: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ConfigError(f"{target} has no function {attr!r} (task {spec!r})")
    try:
        inspect.signature(fn).bind()
    except (TypeError, ValueError):
        raise ConfigError(f"task function {attr!r} must take no arguments (it returns the task)") from None
    try:
        task = fn()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{spec} raised {type(exc).__name__}: {exc}") from exc
    return task


def _importable(folder: Path) -> None:
    """Put ``folder`` on the import path here and for child processes (spawned pool workers
    and Ray workers read PYTHONPATH; spawned pool workers also inherit ``sys.path``)."""
    path = str(folder.resolve())
    if path not in sys.path:
        sys.path.insert(0, path)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if path not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([path, *parts])


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"task file {str(path)!r} does not exist")
    if path.suffix != ".py":
        raise ConfigError(f"task file {str(path)!r} is not a .py file")
    name = path.stem
    if not name.isidentifier():
        raise ConfigError(f"task file name {path.name!r} is not a Python module name; rename it")
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() != path.resolve():
            raise ConfigError(f"task file {path.name!r} has the name of the module {name!r} already imported "
                              f"(from {getattr(loaded, '__file__', 'built in')}); rename the file")
        return loaded
    _importable(path.parent)  # workers import the functions by module name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DataError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigError(f"importing task file {str(path)!r} failed: {type(exc).__name__}: {exc}") from exc
    return module


__all__ = ["CustomTask", "HABITUAL_LR", "load_target", "load_task", "task_from"]
