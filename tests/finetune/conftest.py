"""Fixtures for fine-tuning tests: no network, MNIST from ../shared, a digits-pretrained
SimpleCNN saved once per session."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

SHARED_DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights are never fetched in tests: any connection attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a fine-tuning test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    if not (SHARED_DATASETS / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST not found under {SHARED_DATASETS}")
    return SHARED_DATASETS


def digits_mnist_style() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 1,797 8x8 digits drawn the MNIST way: scaled to 20x20, centred in 28x28."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    x = nn.functional.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    return nn.functional.pad(x, (4, 4, 4, 4)), torch.tensor(bunch.target)


def pretrain_digits(epochs: int = 20, seed: int = 0) -> nn.Module:
    """A SimpleCNN trained on augmented digits (Adam, one-cycle 3e-3): ~4 s on one core."""
    from lrscout.data import random_affine
    from lrscout.models import SimpleCNN
    from lrscout.task import seed_everything

    x, y = digits_mnist_style()
    x = (x - x.mean()) / x.std()
    seed_everything(seed)
    model = SimpleCNN()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    steps = epochs * math.ceil(len(y) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(random_affine(x[idx], g)), y[idx]).backward()
            opt.step()
            sched.step()
    return model


@pytest.fixture(scope="session")
def digits_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a plain state dict of the digits-pretrained SimpleCNN."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("pretrained") / "digits_simplecnn.pt"
    torch.save(pretrain_digits().state_dict(), path)
    return path
