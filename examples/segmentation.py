"""Semantic segmentation: a small U-Net on generated shapes, chosen by mean IoU.

Each image holds a few random discs and squares on a noisy background; the target is a
per-pixel class map (0 background, 1 disc, 2 square). The model is a two-level U-Net,
batches are dicts (``{"image": ..., "mask": ...}``), the loss is per-pixel
cross-entropy and the validation metric is the mean intersection-over-union over the
classes, so ``select`` ranks learning rates by mIoU, not accuracy:

    lrscout select --task examples/segmentation.py:make_task --epochs 6 --out runs/seg-select

Settings from the environment (``--task`` calls ``make_task()`` without arguments):
``EXAMPLE_IMAGES`` (training images, default 256; a quarter as many validate),
``EXAMPLE_SIZE`` (pixels a side, default 32).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

import lrscout

CLASSES = ("background", "disc", "square")


class Shapes(Dataset):  # type: ignore[type-arg]
    """``count`` generated images, the same for the same ``seed``."""

    def __init__(self, count: int, size: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.empty(count, 1, size, size)
        self.masks = torch.zeros(count, size, size, dtype=torch.long)
        yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        for i in range(count):
            mask = torch.zeros(size, size, dtype=torch.long)
            for _ in range(int(torch.randint(1, 4, (), generator=g))):
                kind = int(torch.randint(1, 3, (), generator=g))
                r = float(torch.randint(size // 10 + 1, size // 4 + 1, (), generator=g))
                cy, cx = (float(v) for v in torch.randint(0, size, (2,), generator=g))
                if kind == 1:
                    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
                else:
                    inside = ((yy - cy).abs() <= r) & ((xx - cx).abs() <= r)
                mask[inside] = kind
            brightness = torch.tensor([0.0, 1.0, 0.6])[mask]  # squares a little darker than discs
            self.images[i, 0] = brightness + 0.3 * torch.randn(size, size, generator=g)
            self.masks[i] = mask

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i], "mask": self.masks[i]}


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class TinyUNet(nn.Module):
    """Encoder (two levels), bottleneck, decoder with skip connections, 1x1 class head."""

    def __init__(self, channels: int = 1, classes: int = len(CLASSES), width: int = 8) -> None:
        super().__init__()
        self.down1, self.down2 = _conv(channels, width), _conv(width, 2 * width)
        self.bottom = _conv(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _conv(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = _conv(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(nn.functional.max_pool2d(d1, 2))
        b = self.bottom(nn.functional.max_pool2d(d2, 2))
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = self.dec1(torch.cat([self.up1(u2), d1], dim=1))
        return self.head(u1)


def make_model() -> nn.Module:
    return TinyUNet()


def make_optimizer(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def pixel_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["image"]), batch["mask"])


def mean_iou(model: nn.Module, batches: Any) -> float:
    """Mean over classes of |prediction ∩ target| / |prediction ∪ target|, counted over every
    validation pixel (classes absent from both are left out)."""
    k = len(CLASSES)
    confusion = torch.zeros(k, k, dtype=torch.long)
    for batch in batches:
        predicted = model(batch["image"]).argmax(dim=1)
        confusion += torch.bincount((batch["mask"] * k + predicted).flatten().cpu(), minlength=k * k).view(k, k)
    hits = confusion.diag().double()
    union = confusion.sum(0).double() + confusion.sum(1).double() - hits
    present = union > 0
    return float((hits[present] / union[present]).mean())


def make_task() -> lrscout.TrainingTask:
    images = int(os.environ.get("EXAMPLE_IMAGES", "256"))
    size = int(os.environ.get("EXAMPLE_SIZE", "32"))
    if size % 4:
        raise ValueError(f"EXAMPLE_SIZE must be a multiple of 4 (two 2x poolings), got {size}")
    return lrscout.task_from(make_model, Shapes(images, size, seed=1), Shapes(max(images // 4, 8), size, seed=2),
                             make_optimizer, pixel_loss, mean_iou, metric_name="mIoU", percent=True,
                             batch_size=16, name=f"shapes-unet-{images}x{size}")
