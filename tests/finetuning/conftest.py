"""Fixtures for fine-tuning tests: no network, MNIST from ../shared, a digits-pretrained
SimpleCNN saved once per session."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(scope="session")
def digits_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a plain state dict of the digits-pretrained SimpleCNN."""
    from lrscout.finetuning import pretrain_digits

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("pretrained") / "digits_simplecnn.pt"
    torch.save(pretrain_digits().state_dict(), path)  # ~4 s on one core
    return path
