"""Your own CNN on an ImageFolder, with torchvision transforms and dict batches.

A folder of class sub-folders (``ROOT/train/<class>/*.jpg``, torchvision's ``ImageFolder``
layout) becomes a lrscout task with ``lrscout.task_from``: the model, the transforms, the
batch format (``{"pixels": ..., "label": ...}``), the loss and the metric are all this
file's own code; lrscout only calls them.

    lrscout select --task examples/imagefolder_cnn.py:make_task --epochs 6 --out runs/cifar-select
    lrscout find   --task examples/imagefolder_cnn.py:make_task

Settings come from the environment, since ``--task`` calls ``make_task()`` without
arguments: ``EXAMPLE_ROOT`` (default: ``../shared/datasets/CIFAR10-subset``, then
``data/CIFAR10-subset``), ``EXAMPLE_LIMIT`` (images used, default 2000; a fifth of them
validate), ``EXAMPLE_BATCH`` (default 64).

Every function and class here is defined at the top of the module, so the task travels to
worker processes (``--workers 2``) and Ray (``--backend ray``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset
from torchvision import datasets, transforms

import lrscout

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)  # CIFAR-10's channel statistics, roughly


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head; any image size (global average pooling)."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(3, width), block(width, 2 * width), block(2 * width, 4 * width))
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class DictImages(Dataset):  # type: ignore[type-arg]
    """``(image, class)`` samples as ``{"pixels": image, "label": class}``."""

    def __init__(self, base: Dataset) -> None:  # type: ignore[type-arg]
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        image, label = self.base[i]
        return {"pixels": image, "label": label}


class ModelFactory:
    """``model_fn``: a fresh ``SmallCNN`` for ``num_classes`` classes (a picklable callable)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def __call__(self) -> nn.Module:
        return SmallCNN(self.num_classes)


def make_optimizer(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)


def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["pixels"]), batch["label"], label_smoothing=0.1)


def accuracy(model: nn.Module, batches: Any) -> float:
    correct = total = 0
    for batch in batches:
        correct += int((model(batch["pixels"]).argmax(dim=1) == batch["label"]).sum())
        total += len(batch["label"])
    return correct / total


def _root() -> Path:
    if "EXAMPLE_ROOT" in os.environ:
        return Path(os.environ["EXAMPLE_ROOT"])
    for candidate in (Path("../shared/datasets/CIFAR10-subset"), Path("data/CIFAR10-subset")):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no image folder: set EXAMPLE_ROOT to a folder holding train/<class>/*.jpg")


def make_task() -> lrscout.TrainingTask:
    root = _root() / "train"
    limit = int(os.environ.get("EXAMPLE_LIMIT", "2000"))
    normalise = [transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    augmented = datasets.ImageFolder(str(root), transforms.Compose(
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), *normalise]))
    plain = datasets.ImageFolder(str(root), transforms.Compose([transforms.Resize((32, 32)), *normalise]))
    order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(0))[:limit].tolist()
    n_val = max(1, len(order) // 5)
    train = DictImages(Subset(augmented, order[n_val:]))
    val = DictImages(Subset(plain, order[:n_val]))
    return lrscout.task_from(ModelFactory(len(plain.classes)), train, val, make_optimizer, loss_fn, accuracy,
                             percent=True, batch_size=int(os.environ.get("EXAMPLE_BATCH", "64")),
                             name=f"imagefolder-cnn:{root.parent.name}")
