"""A training task by names: dataset, model, optimizer, batch size, seed, device.

This is what the CLI, ``train``, ``select`` and the benchmarks share: one frozen value
that builds fresh, seeded models and optimizers, so that two runs of the same task with
the same seed start from identical weights and see identical batches. It is one
implementation of :class:`lrscout.protocol.TrainingTask` (the user's own code is another,
:func:`lrscout.task_from`): classification of ``(images, labels)`` batches, scored by
cross-entropy and accuracy.

Example::

    task = Task(dataset="digits", model="simplecnn", optimizer="sgd")
    splits = task.splits()
    model = task.build_model(splits.info)
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .data import DataInfo, DataSplits, load_dataset
from .checks import check_arguments
from .errors import ConfigError
from .models import build_model, load_pretrained
from .optim import build_optimizer, get_optimizer
from .protocol import (ACCURACY, Batch, Evaluation, Metric, chance_note, classification_eval, cross_entropy_loss,
                       label_stats)

#: Batch size of validation passes (no gradients: only speed depends on it).
VAL_BATCH_SIZE = 512


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto" -> CUDA when present, else CPU; anything else must exist."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


@lru_cache(maxsize=8)
def _cached_splits(dataset: str, data_dir: str | None, download: bool, seed: int, limit: int | None) -> DataSplits:
    return load_dataset(dataset, data_dir=data_dir, download=download, seed=seed, limit=limit)


@dataclass(frozen=True)
class Task:
    """A dataset + model + optimizer protocol, named so it can be rebuilt anywhere."""

    dataset: str = "digits"
    model: str = "simplecnn"
    optimizer: str = "sgd"
    batch_size: int = 64
    seed: int = 0
    device: str | None = None
    data_dir: str | None = None
    download: bool = False
    limit: int | None = None
    weight_decay: float = 0.0
    pretrained: bool = False  # published torchvision / timm weights (fine-tuning; downloads)
    weights: str | None = None  # a local checkpoint to fine-tune from
    augment: bool = False  # random rotation / scale / shift of training batches (data.random_affine)

    def __post_init__(self) -> None:
        check_arguments(batch_size=self.batch_size, seed=self.seed, limit=self.limit, weight_decay=self.weight_decay)
        if self.pretrained and self.weights is not None:
            raise ConfigError("give either pretrained or weights, not both", argument=("pretrained", "weights"))
        get_optimizer(self.optimizer)  # fail fast on an unknown name

    def splits(self) -> DataSplits:
        """The data (cached per process: trials of one task share it). The split seed is
        fixed at 0 so every seed of a task is judged on the same validation images."""
        return _cached_splits(self.dataset, self.data_dir, self.download, 0, self.limit)

    def train_loader(self) -> DataLoader[Any]:
        """The training split in this task's batches and seeded order (augmented if asked)."""
        return self.splits().loader("train", self.batch_size, seed=self.seed, augment=self.augment)

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def build_model(self, info: DataInfo | None = None, seed: int | None = None) -> nn.Module:
        info = info or self.splits().info
        seed_everything(self.seed if seed is None else seed)
        if self.pretrained or self.weights is not None:
            # pretrained weights with a fresh, seeded head
            model = load_pretrained(self.model, info, pretrained=self.pretrained, weights=self.weights)
        else:
            model = build_model(self.model, info.channels, info.num_classes, info.image_size)
        return model.to(self.torch_device)

    def build_optimizer(self, params: Any, lr: float | None = None) -> torch.optim.Optimizer:
        return build_optimizer(self.optimizer, params, lr, self.weight_decay)

    def val_loader(self, batch_size: int = VAL_BATCH_SIZE) -> DataLoader[Any]:
        """The validation split (carved from the training data; never the test split)."""
        return self.splits().loader("val", batch_size)

    @property
    def metric(self) -> Metric:
        return ACCURACY

    @property
    def classification(self) -> bool:
        return True

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """Cross-entropy of an ``(images, labels)`` batch (moved to the model's device)."""
        device = next(model.parameters()).device
        x, y = batch
        return cross_entropy_loss(model, (x.to(device), y.to(device)))

    def evaluate(self, model: nn.Module) -> Evaluation:
        return classification_eval(model, self.val_loader())

    def learned_nothing(self, evaluation: Evaluation) -> str | None:
        majority, n, prior = label_stats(self.splits().val.tensors[1])
        return chance_note(evaluation.score, evaluation.loss, majority, n, self.splits().info.num_classes, prior)

    def with_optimizer(self, name: str) -> Task:
        return replace(self, optimizer=name)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
