"""What lrscout needs from a training task: the seam between the search and the user's code.

``find``, ``select``, ``train``, ``compare`` and ``finetune`` never look inside a model or a
batch; they ask a :class:`TrainingTask` for:

* ``build_model()``: a fresh model, seeded (every call gives the same weights), on its device;
* ``build_optimizer(params, lr)``: an optimizer over ``params`` (tensors or groups) at ``lr``;
* ``train_loader()``: the training batches in a seeded order (the same order each call),
  with a length (batches per epoch); ``val_loader()``: the validation batches;
* ``loss(model, batch)``: a scalar loss tensor for one batch, any batch structure;
* ``evaluate(model)``: an :class:`Evaluation` (validation score and loss) in eval mode;
  ``metric`` (a :class:`Metric`) names the score and says whether higher is better;
* ``learned_nothing(evaluation)``: why a score means the run learned nothing (chance
  level), or ``None`` when it cannot tell or the run is healthy;
* ``to_json()``: the task's identity, plain JSON: two runs into one output folder must
  have equal identities, or resume is refused;
* ``with_optimizer(name)``: the same task with a named optimizer (``compare``);
* ``seed``, ``torch_device``, ``classification`` (see below).

Two implementations ship: :class:`lrscout.Task` (a dataset, model and optimizer by name)
and :func:`lrscout.task_from` (the user's model factory, data and optimizer factory).
``classification`` is true when batches are ``(inputs, targets)`` scored by cross-entropy
and accuracy; the training loop then runs its built-in path (which also tracks training
accuracy), so both implementations of one protocol give the same numbers bit for bit.

A task travels to worker processes (a process pool, Ray) by pickling, so it must be
built from module-level functions and classes: :func:`check_travels` says so in one line
instead of a pickling traceback.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from .errors import ConfigError

Batch = Any
#: ``loss_fn(model, batch) -> scalar tensor``
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    """The name of a validation score and its direction.

    ``percent``: the score is a fraction shown as a percentage (accuracy, IoU).

    >>> Metric("mIoU").better(0.6, 0.5), Metric("mae", higher_is_better=False).better(0.6, 0.5)
    (True, False)
    """

    name: str = "accuracy"
    higher_is_better: bool = True
    percent: bool = True

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ConfigError("a metric needs a name")

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def signed(self, score: float) -> float:
        """The score turned so that higher is better (for ranking)."""
        return score if self.higher_is_better else -score

    def worst(self) -> float:
        return -math.inf if self.higher_is_better else math.inf

    def format(self, score: float) -> str:
        return f"{100 * score:.2f}%" if self.percent else f"{score:.4g}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "higher_is_better": self.higher_is_better, "percent": self.percent}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Metric:
        if not data:
            return ACCURACY
        return cls(str(data["name"]), bool(data.get("higher_is_better", True)), bool(data.get("percent", True)))


ACCURACY = Metric("accuracy")


@dataclass(frozen=True)
class Evaluation:
    """A model measured on the validation data: its ``score`` (the task's metric) and mean
    ``loss`` (``math.inf`` when not finite)."""

    score: float
    loss: float


@runtime_checkable
class TrainingTask(Protocol):
    """A training task as the search sees it (see the module docstring)."""

    @property
    def seed(self) -> int: ...

    @property
    def torch_device(self) -> torch.device: ...

    @property
    def metric(self) -> Metric: ...

    @property
    def classification(self) -> bool: ...

    def build_model(self) -> nn.Module: ...

    def build_optimizer(self, params: Any, lr: float | None = None) -> torch.optim.Optimizer: ...

    def train_loader(self) -> Iterable[Batch]: ...

    def val_loader(self) -> Iterable[Batch]: ...

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module) -> Evaluation: ...

    def learned_nothing(self, evaluation: Evaluation) -> str | None: ...

    def with_optimizer(self, name: str) -> TrainingTask: ...

    def to_json(self) -> dict[str, Any]: ...


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Every tensor in a nested batch (tuples, lists, dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        moved = {k: to_device(v, device) for k, v in batch.items()}
        return type(batch)(moved) if isinstance(batch, dict) else moved
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def steps_in(loader: Iterable[Batch]) -> int:
    """Batches in one pass over ``loader``: ``select``, ``train`` and ``finetune`` plan in
    optimizer steps per epoch, so a training loader must know its length."""
    if not isinstance(loader, Sized):
        raise ConfigError("the training loader has no len(): lrscout plans in optimizer steps per epoch; "
                          "give a DataLoader over a map-style dataset, or a list of batches")
    return len(loader)


def batch_size(batch: Batch) -> int:
    """Samples in a batch: the length of its first tensor (1 when it holds none)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    values: Iterable[Any] = batch.values() if isinstance(batch, Mapping) else \
        (batch if isinstance(batch, (list, tuple)) else ())
    for v in values:
        n = batch_size(v)
        if n:
            return n
    return 1 if not isinstance(batch, (Mapping, list, tuple)) else 0


def scalar_loss(loss: Any, where: str = "loss_fn") -> torch.Tensor:
    """``loss`` checked: a tensor with one element (else one clear :class:`ConfigError`)."""
    if not isinstance(loss, torch.Tensor):
        raise ConfigError(f"{where} returned {type(loss).__name__}, not a tensor; return the loss tensor itself")
    if loss.numel() != 1:
        raise ConfigError(f"{where} returned a tensor of shape {tuple(loss.shape)}; it must return a scalar "
                          "(reduce it, e.g. with .mean())")
    return loss.reshape(())


def cross_entropy_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The default loss of an ``(inputs, targets)`` batch: cross-entropy of ``model(inputs)``."""
    inputs, targets = _pair(batch)
    return nn.functional.cross_entropy(model(inputs), targets)


def _pair(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ConfigError(f"the default loss and metric need (inputs, targets) batches, got {_shape(batch)}; "
                          "give loss_fn and metric for other batch structures")
    return batch[0], batch[1]


def _shape(batch: Batch) -> str:
    if isinstance(batch, Mapping):
        return f"a dict with keys {sorted(map(str, batch))}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)}"
    return type(batch).__name__


@torch.no_grad()
def classification_eval(model: nn.Module, batches: Iterable[Batch]) -> Evaluation:
    """Mean cross-entropy and accuracy (0..1) over ``(inputs, targets)`` batches, eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    try:
        for batch in batches:
            x, y = _pair(batch)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            total += float(nn.functional.cross_entropy(out, y)) * len(y)
            correct += int((out.argmax(dim=1) == y).sum())
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("the validation data yielded no samples")
    loss = total / count
    return Evaluation(correct / count, loss if math.isfinite(loss) else math.inf)


def chance_level(majority: float, n_val: int) -> float:
    """The highest accuracy on ``n_val`` images that is still chance: always answering the
    most frequent class (``majority``), plus two binomial standard deviations of guessing
    at that rate and half an image.

    Why the band: a diverged network does not answer one class exactly; its accuracy
    scatters around chance by a few images (13% where the majority class is 12% of 450),
    and half an image of slack let such runs, with losses in the thousands, count as
    healthy.

    >>> round(chance_level(0.1, 100), 3), round(chance_level(0.1, 10_000), 4)
    (0.165, 0.1061)
    """
    n = max(n_val, 1)
    return majority + 2.0 * math.sqrt(majority * (1.0 - majority) / n) + 0.5 / n


def prior_loss(counts: Sequence[int]) -> float:
    """The validation loss of the best constant guess, the class frequencies themselves:
    their entropy (``ln K`` when the classes are balanced, less when they are not).

    >>> round(prior_loss([10] * 10), 4), round(prior_loss([30, 10, 10, 10, 10, 10, 10, 10]), 4)
    (2.3026, 1.973)
    """
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c > 0) if total else 0.0


def class_stats(counts: Sequence[int]) -> tuple[float, int, float]:
    """(majority-class share, count, :func:`prior_loss`) of per-class image counts: what
    the collapse rule needs to know about a validation split.

    >>> share, n, prior = class_stats([30, 10, 10, 0, 10])
    >>> share, n, round(prior, 4)
    (0.5, 60, 1.2425)
    """
    n = sum(counts)
    return (max(counts) / n if n else 0.0), n, prior_loss(counts)


def label_stats(labels: torch.Tensor) -> tuple[float, int, float]:
    """:func:`class_stats` of a tensor of integer class labels."""
    return class_stats([int(c) for c in torch.bincount(labels.long().flatten())])


def chance_note(score: float, loss: float, majority: float, n_val: int, num_classes: int,
                prior: float | None = None) -> str | None:
    """Why a classification result learned nothing: accuracy within chance of always
    answering the most frequent class (:func:`chance_level`) *and* a loss no better than
    guessing the class frequencies (``prior``, :func:`prior_loss`; ``ln K``, a uniform
    guess, when the frequencies are unknown); ``None`` otherwise. A slow start whose loss
    has fallen below that has begun to learn and is not flagged.

    Why the class frequencies: on unbalanced data (USPS: 16% zeros, 7-9% of several other
    digits) a run that only learned them scores the majority class with a loss of about
    2.28, below ``ln 10 = 2.30``; judged against a uniform guess it counted as healthy, and
    ``select`` returned such a run (15% validation accuracy) as its verified choice."""
    guess = prior if prior is not None else (math.log(num_classes) if num_classes > 1 else 0.0)
    if score <= chance_level(majority, n_val) and loss >= guess:
        what = "guessing the class frequencies" if prior is not None else "a uniform guess"
        return f"chance accuracy ({score:.3f}) and a loss no better than {what} ({loss:.3f})"
    return None


def loop_hooks(task: TrainingTask) -> dict[str, Any]:
    """Keyword arguments for :func:`lrscout.training.fit` on ``task``: none for classification
    (the loop's own path), the task's loss and evaluation otherwise."""
    if task.classification:
        return {}
    return {"loss_fn": task.loss, "evaluate_fn": task.evaluate}


def steps_per_epoch(task: TrainingTask) -> int:
    """Optimizer steps in one epoch of the task's training data (a clear error when it has
    no length or no batches)."""
    loader = task.train_loader()
    if not isinstance(loader, Sized):
        raise ConfigError("the training data has no length (an iterable without __len__); "
                          "give a Dataset or a DataLoader over one")
    n = len(loader)
    if n < 1:
        raise ConfigError("the training data yields zero batches; give a non-empty dataset")
    return n


def check_travels(task: Any, where: str) -> None:
    """Raise one :class:`ConfigError` line when ``task`` cannot be pickled for ``where``
    (worker processes, Ray): what to do instead, not a pickling traceback."""
    try:
        pickle.dumps(task)
    except Exception as exc:  # pickle raises PicklingError, AttributeError, TypeError, ...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"the task cannot be sent to {where} ({reason}); build it from module-level functions and classes "
            "(a def at the top of a module, not a lambda, a nested function or an open file), or use workers=1"
        ) from None


def check_task(task: Any, what: str) -> None:
    """Refuse, in one line, something that is not a training task (an objective's model and
    data are inside its function, so only ``select`` takes one)."""
    if all(callable(getattr(task, name, None)) for name in ("build_model", "build_optimizer", "train_loader")):
        return
    raise ConfigError(f"{what} needs a training task (a lrscout.Task or lrscout.task_from(...)), not "
                      f"{type(task).__name__}; an objective (lrscout.objective) goes to select only")


def describe(task: Any) -> str:
    """A short name for logs."""
    data = task.to_json()
    if "name" in data and data["name"]:
        return str(data["name"])
    if "dataset" in data:
        return f"{data['dataset']} / {data.get('model')} / {data.get('optimizer')}"
    return str(data.get("fingerprint") or data.get("function") or "task")


__all__ = [
    "ACCURACY", "Batch", "Evaluation", "LossFn", "Metric", "TrainingTask", "batch_size", "chance_level", "chance_note", "steps_in",
    "check_task", "check_travels", "classification_eval", "cross_entropy_loss", "describe", "loop_hooks",
    "scalar_loss", "steps_per_epoch", "to_device",
]
