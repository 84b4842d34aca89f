"""Model registry: ``simplecnn``, torchvision's ``resnet18`` and any ``timm:NAME``.

Every builder adapts input channels and the number of classes to the data, so one name
works for greyscale digits and colour CIFAR alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import ConfigError, require, unknown_name


class SimpleCNN(nn.Module):
    """The classic PyTorch MNIST example network.

    Conv2d(C, 10, 5) -> MaxPool2d(2) -> ReLU -> Linear(10*h*w, 50) -> ReLU -> Linear(50, K);
    on 28x28 input the flattened size is 10*12*12 = 1440, as in the original.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: tuple[int, int] = (28, 28)) -> None:
        super().__init__()
        h, w = image_size
        if h < 6 or w < 6:
            raise ConfigError(f"simplecnn needs images of at least 6x6, got {h}x{w}")
        self.conv = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(10 * ((h - 4) // 2) * ((w - 4) // 2), 50)
        self.fc2 = nn.Linear(50, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.pool(self.conv(x)))
        x = torch.relu(self.fc1(torch.flatten(x, 1)))
        out: torch.Tensor = self.fc2(x)
        return out


def _simplecnn(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    return SimpleCNN(in_channels, num_classes, image_size)


def _resnet18(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
    from torchvision.models import resnet18

    model: nn.Module = resnet18(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def _timm(name: str) -> Callable[[int, int, tuple[int, int]], nn.Module]:
    def build(in_channels: int, num_classes: int, image_size: tuple[int, int]) -> nn.Module:
        timm = require("timm", "timm")
        if not timm.is_model(name):  # type: ignore[attr-defined]
            raise ConfigError(f"unknown timm model {name!r}; see timm.list_models()")
        model: nn.Module = timm.create_model(name, pretrained=False, num_classes=num_classes,  # type: ignore[attr-defined]
                                             in_chans=in_channels)
        return model

    return build


#: name -> builder(in_channels, num_classes, image_size); ``timm:NAME`` is resolved on demand.
MODELS: dict[str, Callable[[int, int, tuple[int, int]], nn.Module]] = {
    "simplecnn": _simplecnn,
    "resnet18": _resnet18,
}


def build_model(name: str, in_channels: int, num_classes: int, image_size: tuple[int, int] = (28, 28)) -> nn.Module:
    """Build a fresh, randomly initialised model (seed torch first for reproducibility)."""
    if name.startswith("timm:"):
        builder = _timm(name.split(":", 1)[1])
    elif name in MODELS:
        builder = MODELS[name]
    else:
        raise unknown_name("model", name, [*MODELS, "timm:NAME"])
    return builder(in_channels, num_classes, image_size)
