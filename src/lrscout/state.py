"""Snapshot and restore of everything a short experiment can change.

A range test or a guard rollback must leave the user's objects exactly as they were:
parameters and buffers (BatchNorm running stats), ``.grad`` tensors, train/eval flags,
optimizer state and per-group hyperparameters, an AMP ``GradScaler``, the torch /
CUDA / numpy / python RNG streams, and the ``torch.Generator`` objects a DataLoader
shuffles or augments with (see :func:`data_generators`), so the next epoch sees the
batches it would have seen. Everything goes through ``state_dict`` /
``load_state_dict``; tensors are cloned to CPU memory (never to disk), so a snapshot
costs one copy of the state and nothing more.

Example::

    snap = Snapshot.take(model, optimizer)
    try:
        ...  # anything
    finally:
        snap.restore()
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


def _to_cpu(obj: Any) -> Any:
    """Clone every tensor inside a nested state dict to CPU, leaving the rest alone."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj


@dataclass(frozen=True)
class RngState:
    """The four random streams a training step can consume."""

    torch_cpu: torch.Tensor
    torch_cuda: tuple[torch.Tensor, ...]
    numpy: Any
    python: Any

    @classmethod
    def capture(cls) -> RngState:
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() and torch.cuda.is_initialized() else ()
        return cls(torch.get_rng_state(), cuda, np.random.get_state(), random.getstate())

    def state_dict(self) -> dict[str, Any]:
        """Tensors, numbers and lists only, so a checkpoint holding it loads with
        ``torch.load(..., weights_only=True)``."""
        kind, keys, pos, has_gauss, cached = self.numpy
        version, mt, gauss = self.python
        return {"torch_cpu": self.torch_cpu.clone(), "torch_cuda": [t.clone() for t in self.torch_cuda],
                "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64).copy()),
                          "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
                "python": {"version": int(version), "state": [int(v) for v in mt], "gauss": gauss}}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> RngState:
        n = state["numpy"]
        numpy_state = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
        p = state["python"]
        return cls(state["torch_cpu"], tuple(state["torch_cuda"]), numpy_state,
                   (p["version"], tuple(p["state"]), p["gauss"]))

    def restore(self) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda:
            torch.cuda.set_rng_state_all(list(self.torch_cuda))
        np.random.set_state(self.numpy)
        random.setstate(self.python)


def data_generators(*sources: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects that decide what ``sources`` (DataLoaders, samplers or
    any iterables) yield next: the loader's own ``generator``, its sampler's and batch
    sampler's (and the sampler inside a ``BatchSampler``), a ``generator`` attribute of
    its ``collate_fn`` (lrscout's augmentation), and those of a loader a wrapper keeps as
    ``.loader`` / ``.dataloader`` (the Lightning integration's batches). Each generator is listed once; objects
    without any give an empty list. A loader without a generator of its own draws its
    shuffle seed from the global torch RNG, which :class:`RngState` covers."""
    found: dict[int, torch.Generator] = {}
    seen: set[int] = set()

    def attr(obj: Any, name: str) -> Any:
        try:
            return getattr(obj, name, None)
        except Exception:  # a property that refuses to be read: nothing to restore there
            return None

    def visit(obj: Any, depth: int) -> None:
        if obj is None or id(obj) in seen or depth > 3:
            return
        seen.add(id(obj))
        gen = attr(obj, "generator")
        if isinstance(gen, torch.Generator):
            found.setdefault(id(gen), gen)
        for name in ("sampler", "batch_sampler", "collate_fn", "loader", "dataloader"):
            visit(attr(obj, name), depth + 1)

    for source in sources:
        if isinstance(source, torch.Generator):
            found.setdefault(id(source), source)
        else:
            visit(source, 0)
    return list(found.values())


@dataclass
class Snapshot:
    """A restorable copy of a model, its optimizer, an optional GradScaler and the RNGs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    scaler: Any = None
    model_state: dict[str, Any] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    scaler_state: dict[str, Any] | None = None
    grads: list[torch.Tensor | None] = field(default_factory=list)
    training: list[bool] = field(default_factory=list)
    rng: RngState | None = None
    generators: list[tuple[torch.Generator, torch.Tensor]] = field(default_factory=list)

    @classmethod
    def take(cls, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, scaler: Any = None, *,
             data: tuple[Any, ...] = ()) -> Snapshot:
        """Copy the state; ``data`` are loaders (or generators) whose shuffle and
        augmentation generators are restored too (:func:`data_generators`)."""
        return cls(
            model=model,
            optimizer=optimizer,
            scaler=scaler,
            model_state=_to_cpu(model.state_dict()),
            optimizer_state=_to_cpu(optimizer.state_dict()) if optimizer is not None else None,
            scaler_state=_to_cpu(scaler.state_dict()) if scaler is not None else None,
            grads=[None if p.grad is None else p.grad.detach().to("cpu", copy=True) for p in model.parameters()],
            training=[m.training for m in model.modules()],
            rng=RngState.capture(),
            generators=[(g, g.get_state()) for g in data_generators(*data)],
        )

    def state_dict(self) -> dict[str, Any]:
        """The copied state without the RNG streams and generators (what a guard needs to
        carry across a checkpoint); :meth:`from_state_dict` rebuilds the snapshot."""
        return {"model": self.model_state, "optimizer": self.optimizer_state, "scaler": self.scaler_state,
                "grads": list(self.grads), "training": list(self.training)}

    @classmethod
    def from_state_dict(cls, model: nn.Module, optimizer: torch.optim.Optimizer | None, scaler: Any,
                        state: dict[str, Any]) -> Snapshot:
        return cls(model=model, optimizer=optimizer, scaler=scaler, model_state=state["model"],
                   optimizer_state=state["optimizer"], scaler_state=state["scaler"], grads=list(state["grads"]),
                   training=list(state["training"]))

    def restore(self, *, rng: bool = True) -> None:
        """Put everything back bit for bit; ``rng=False`` keeps the random streams moving."""
        self.model.load_state_dict(self.model_state)
        for p, g in zip(self.model.parameters(), self.grads):
            p.grad = None if g is None else g.to(p.device, copy=True)
        for m, flag in zip(self.model.modules(), self.training):
            m.training = flag
        if self.optimizer is not None and self.optimizer_state is not None:
            # load_state_dict keeps references to the tensors it is given: hand it copies
            # so the snapshot stays valid for a second restore (the guard rolls back often).
            self.optimizer.load_state_dict(_to_cpu(self.optimizer_state))
        if self.scaler is not None and self.scaler_state is not None:
            self.scaler.load_state_dict(self.scaler_state)
        if rng and self.rng is not None:
            self.rng.restore()
        if rng:
            for gen, state in self.generators:
                gen.set_state(state)
