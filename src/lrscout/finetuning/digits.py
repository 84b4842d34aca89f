"""An offline pretrained backbone: SimpleCNN trained on scikit-learn's digits drawn MNIST's way.

Published weights need a download, and tests and benchmarks may not make one. A SimpleCNN
trained on all 1,797 digits (:func:`lrscout.data.digits_mnist_style`) with random
rotation / scale / shift (:func:`lrscout.data.random_affine`) transfers to MNIST: the
fine-tuning benchmark's and tests' backbone. Without the augmentation it does not.

Example::

    torch.save(pretrain_digits().state_dict(), "digits.pt")   # ~4 s on one core
    task = lrscout.Task("mnist", "simplecnn", "adam", weights="digits.pt", data_dir="data")
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..data import digits_mnist_style, random_affine
from ..models import SimpleCNN
from ..task import seed_everything

#: Adam with a one-cycle schedule peaking here, batches of :data:`BATCH`.
PEAK_LR = 3e-3
BATCH = 64


def pretrain_digits(epochs: int = 20, seed: int = 0) -> SimpleCNN:
    """A SimpleCNN trained ``epochs`` epochs on every digit, normalised to zero mean and
    unit variance, each batch augmented; deterministic for a given ``seed``."""
    x, y = digits_mnist_style()
    x = (x - x.mean()) / x.std()
    seed_everything(seed)
    model = SimpleCNN()
    opt = torch.optim.Adam(model.parameters(), PEAK_LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, PEAK_LR, total_steps=epochs * math.ceil(len(y) / BATCH))
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            nn.functional.cross_entropy(model(random_affine(x[idx], g)), y[idx]).backward()
            opt.step()
            sched.step()
    return model
