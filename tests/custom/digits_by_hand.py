"""The selection tests' named digits task, written by hand through ``task_from``.

Module-level factories, so the task travels to worker processes and Ray. The data are
the named task's tensors (the same images); the model, the optimizer and the batching are
the user's own code.
"""

from __future__ import annotations

import torch
from torch import nn

import lrscout
from lrscout.custom import CustomTask
from lrscout.models import build_model
from lrscout.task import Task

NAMED = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=300)


def make_model() -> nn.Module:
    return build_model("simplecnn", 1, 10, (28, 28))  # digits, upsampled to 28 x 28


def make_optimizer(params: object, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr)  # type: ignore[arg-type]


def make_task() -> CustomTask:
    splits = NAMED.splits()
    return lrscout.task_from(make_model, splits.train, splits.val, make_optimizer, batch_size=32,
                             val_batch_size=512, seed=0, name="digits-by-hand")
