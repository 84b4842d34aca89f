"""Bitwise state comparison for restore tests (engine and fine-tuning range tests)."""

from __future__ import annotations

import copy
import random

import numpy as np
import torch
from torch import nn


def assert_same(a: object, b: object) -> None:
    """Recursive bitwise equality of tensors, arrays, dicts, sequences and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()  # type: ignore[union-attr]
        for k in a:
            assert_same(a[k], b[k])  # type: ignore[index]
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b):  # type: ignore[call-overload]
            assert_same(x, y)
    else:
        assert a == b


def full_state(model: nn.Module, opt: torch.optim.Optimizer) -> dict:
    """Everything a range test touches: weights, buffers, optimizer, grads, modes, RNGs."""
    return {
        "model": copy.deepcopy(model.state_dict()),
        "opt": copy.deepcopy(opt.state_dict()),
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "training": [m.training for m in model.modules()],
        "torch_rng": torch.get_rng_state(),
        "np_rng": np.random.get_state()[1].copy(),
        "py_rng": random.getstate(),
    }
