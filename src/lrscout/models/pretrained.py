"""Pretrained models for fine-tuning: load the weights, replace the head, adapt the input.

Three sources, one function (:func:`load_pretrained`):

* ``weights=PATH``: a local checkpoint (a ``state_dict`` saved with ``torch.save``, or a
  dict holding one under ``"model"`` / ``"state_dict"``, as lrscout's ``best.pt`` /
  ``last.pt`` do) loaded into the registry architecture ``name``;
* ``pretrained=True`` with a torchvision name (``resnet18``): the model's ``DEFAULT``
  weights enum, its ``transforms()`` giving input size, mean and std;
* ``pretrained=True`` with ``timm:NAME``: ``timm.create_model(..., pretrained=True)`` and
  ``timm.data.resolve_data_config`` for the input.

The classifier head (see :func:`find_head`) is always replaced by a freshly initialised
``Linear`` with one output per class of the new data. When the model expects another input
than the data provides (3 channels for greyscale, 224x224 for 28x28, ImageNet statistics)
the model is wrapped in :class:`Adapted`, whose parameter-free :class:`InputAdapter` undoes
the data's normalisation, repeats grey to RGB, resizes and applies the model's own
normalisation on the fly, batch by batch (resizing all of MNIST to 224x224 in memory would
take 36 GB). Downloads happen only with ``pretrained=True``.

Example::

    splits = load_dataset("mnist", data_dir="data", limit=2000)
    model = load_pretrained("simplecnn", splits.info, weights="digits.pt")
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DataInfo
from ..errors import ConfigError, DataError, require
from .catalogue import build_model

log = logging.getLogger(__name__)

#: Attribute names under which models keep their classifier, most specific first.
HEAD_ATTRIBUTES = ("fc", "classifier", "head", "heads")


@dataclass(frozen=True)
class InputSpec:
    """What a model expects as input: channels, and optionally size and normalisation.

    ``size``/``mean``/``std`` of ``None`` mean "whatever the data has" (local checkpoints
    carry no such metadata, so their inputs keep the data's size and normalisation).
    """

    channels: int
    size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


class InputAdapter(nn.Module):
    """Turn data-normalised batches into what a pretrained model expects.

    ``x_raw = x * data_std + data_mean`` (back to [0, 1]); grey repeated to ``channels``;
    bilinear resize to ``size``; ``(x_raw - mean) / std``. No parameters; its buffers are
    not persistent, so they stay out of ``state_dict`` and checkpoints.
    """

    data_mean: torch.Tensor
    data_std: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, info: DataInfo, spec: InputSpec) -> None:
        super().__init__()
        if spec.channels != info.channels and info.channels != 1:
            raise ConfigError(
                f"the model expects {spec.channels} input channels and the data has {info.channels}; "
                "only greyscale data can be repeated to fit"
            )
        self.channels = spec.channels
        self.size = spec.size
        self.renormalise = spec.mean is not None and spec.std is not None
        data_mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
        data_std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
        mean = torch.tensor(spec.mean or info.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(spec.std or info.std, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("data_mean", data_mean, persistent=False)
        self.register_buffer("data_std", data_std, persistent=False)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.renormalise:
            x = x * self.data_std + self.data_mean
        if x.shape[1] != self.channels:
            x = x.expand(-1, self.channels, -1, -1)
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        if self.renormalise:
            x = (x - self.mean) / self.std
        return x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}, renormalise={self.renormalise}"

    @staticmethod
    def needed(info: DataInfo, spec: InputSpec) -> bool:
        return (
            spec.channels != info.channels
            or (spec.size is not None and spec.size != info.image_size)
            or (spec.mean is not None and spec.std is not None)
        )


class Adapted(nn.Module):
    """``net(adapter(x))``: a pretrained network behind its :class:`InputAdapter`."""

    def __init__(self, adapter: InputAdapter, net: nn.Module) -> None:
        super().__init__()
        self.adapter = adapter
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(self.adapter(x))
        return out


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside an :class:`Adapted` wrapper (or ``model`` itself)."""
    return model.net if isinstance(model, Adapted) else model


def _qualified_name(model: nn.Module, module: nn.Module) -> str:
    for name, m in model.named_modules():
        if m is module:
            return str(name)
    raise ConfigError("the classifier returned by get_classifier() is not a submodule of the model")


def _last_linear(module: nn.Module, prefix: str = "") -> str | None:
    found = None
    for name, m in module.named_modules(prefix=prefix):
        if isinstance(m, nn.Linear):
            found = name
    return found


def find_head(model: nn.Module) -> str:
    """Qualified name of the classifier head: the Linear layer that makes the logits.

    Looked for in this order: timm's ``get_classifier()``; the last ``Linear`` inside an
    attribute named ``fc``, ``classifier``, ``head`` or ``heads``; the last ``Linear``
    registered anywhere. Names are relative to ``model`` (``net.`` inside :class:`Adapted`).
    """
    prefix = "net." if isinstance(model, Adapted) else ""
    net = unwrap(model)
    get_classifier = getattr(net, "get_classifier", None)
    if callable(get_classifier):
        head = get_classifier()
        if isinstance(head, nn.Module) and not isinstance(head, nn.Identity):
            name = _qualified_name(net, head)
            return prefix + (_last_linear(head, name) or name)
    for attr in HEAD_ATTRIBUTES:
        sub = getattr(net, attr, None)
        if isinstance(sub, nn.Module):
            last = _last_linear(sub, attr)
            if last is not None:
                return prefix + last
    last = _last_linear(net)
    if last is None:
        raise ConfigError(f"no Linear classifier head found in {type(net).__name__}; lrscout fine-tunes models whose logits come from a Linear layer")
    return prefix + last


def replace_head(model: nn.Module, num_classes: int) -> str:
    """Put a fresh ``Linear(in_features, num_classes)`` where the head was; returns its name.

    Seed torch first for a reproducible initialisation. timm models use their own
    ``reset_classifier`` (it also fixes pooling-dependent heads).
    """
    if num_classes < 2:
        raise ConfigError(f"a classifier needs at least 2 classes, got {num_classes}")
    net = unwrap(model)
    reset = getattr(net, "reset_classifier", None)
    if callable(reset) and callable(getattr(net, "get_classifier", None)):
        reset(num_classes)
        return find_head(model)
    name = find_head(model)
    old = model.get_submodule(name)
    if not isinstance(old, nn.Linear):  # pragma: no cover - find_head returns Linear layers
        raise ConfigError(f"head {name!r} is a {type(old).__name__}, not a Linear layer")
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    setattr(parent, attr, new.to(device=old.weight.device, dtype=old.weight.dtype))
    return name


# --- local checkpoints ---------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The model state dict in a checkpoint file (plain, or under "model"/"state_dict").

    A common ``module.`` (DataParallel) or ``net.`` (:class:`Adapted`) prefix is removed.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"weights file {file} does not exist")
    try:
        obj: Any = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():  # not a checkpoint at all (text, another format)
            raise DataError(f"cannot read weights file {file}: not a PyTorch checkpoint, or truncated or corrupt") from exc
        # torch's weights-only unpickler met something other than tensors
        raise DataError(f"cannot read weights file {file}: it holds objects other than tensors, which lrscout "
                        "does not load (unpickling them could run code); save a state dict instead") from exc
    except Exception as exc:  # torch raises zip / EOF / runtime errors alike for a damaged file
        raise DataError(f"cannot read weights file {file}: not a PyTorch checkpoint, or truncated or corrupt "
                        f"({type(exc).__name__})") from exc
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{file} holds no state dict (expected name -> tensor, possibly under a 'model' key)")
    state: dict[str, torch.Tensor] = dict(obj)
    for prefix in ("module.", "net."):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def checkpoint_channels(state: dict[str, torch.Tensor]) -> int | None:
    """Input channels of the first convolution (the first 4-D weight), if there is one."""
    for key, value in state.items():
        if key.endswith("weight") and value.dim() == 4:
            return int(value.shape[1])
    return None


def load_head_free(model: nn.Module, state: dict[str, torch.Tensor], head: str, source: str) -> None:
    """Load every tensor except the head's; anything else missing or mismatched is an error."""
    head_keys = {k for k in model.state_dict() if k.startswith(head + ".")}
    body = {k: v for k, v in state.items() if not k.startswith(head + ".")}
    own = model.state_dict()
    unexpected = sorted(set(body) - set(own))
    missing = sorted(set(own) - set(body) - head_keys)
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in body.items() if k in own and v.shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:5])}")
    if wrong:
        problems.append(f"shape mismatch {'; '.join(wrong[:5])}")
    if problems:
        raise DataError(f"weights in {source} do not fit this network ({'; '.join(problems)}); were they trained with "
                        "this model?", argument="model")
    model.load_state_dict(body, strict=False)


# --- the three sources ---------------------------------------------------------------


def torchvision_weights(name: str) -> Any:
    """The ``DEFAULT`` member of a torchvision model's weights enum (no download)."""
    from torchvision import models as tvm

    try:
        return tvm.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"torchvision has no pretrained weights for {name!r}; see torchvision.models.list_models()") from exc


def torchvision_input(weights: Any) -> InputSpec:
    """Input size, mean and std from ``weights.transforms()`` (crop size, 3 channels)."""
    tf = weights.transforms()
    crop = list(getattr(tf, "crop_size"))
    size = (int(crop[0]), int(crop[-1]))
    return InputSpec(3, size, tuple(float(m) for m in tf.mean), tuple(float(s) for s in tf.std))


def timm_input(model: nn.Module) -> InputSpec:
    """Input shape, mean and std from ``timm.data.resolve_data_config``."""
    require("timm", "timm")
    from timm.data.config import resolve_data_config

    cfg = resolve_data_config({}, model=model)  # type: ignore[no-untyped-call]
    c, h, w = cfg["input_size"]
    return InputSpec(int(c), (int(h), int(w)), tuple(float(m) for m in cfg["mean"]), tuple(float(s) for s in cfg["std"]))


def _from_torchvision(name: str, info: DataInfo) -> tuple[nn.Module, InputSpec]:
    from torchvision import models as tvm

    weights = torchvision_weights(name)
    log.info("loading torchvision %s weights %s (downloads once into the torch hub cache)", name, weights)
    net = tvm.get_model(name, weights=weights)
    replace_head(net, info.num_classes)
    return net, torchvision_input(weights)


def _from_timm(name: str, info: DataInfo) -> tuple[nn.Module, InputSpec]:
    timm: Any = require("timm", "timm")
    if not timm.is_model(name):
        raise ConfigError(f"unknown timm model {name!r}; see timm.list_models()")
    log.info("loading timm %s pretrained weights (downloads once into the HF cache)", name)
    net = timm.create_model(name, pretrained=True, num_classes=info.num_classes)
    return net, timm_input(net)


def _from_file(name: str, info: DataInfo, path: str | os.PathLike[str]) -> tuple[nn.Module, InputSpec]:
    state = read_checkpoint(path)
    channels = checkpoint_channels(state) or info.channels
    net = build_model(name, channels, info.num_classes, info.image_size)
    load_head_free(net, state, find_head(net), str(path))
    return net, InputSpec(channels)


def load_pretrained(
    name: str,
    info: DataInfo,
    *,
    pretrained: bool = False,
    weights: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """A pretrained ``name`` with a fresh head for ``info.num_classes`` classes.

    Exactly one of ``pretrained`` (torchvision / timm weights, downloaded when absent)
    and ``weights`` (a local checkpoint for the registry architecture ``name``) must be
    given. The head is re-initialised from torch's global RNG: seed first. The result is
    wrapped in :class:`Adapted` when its input differs from the data's.
    """
    if pretrained == (weights is not None):
        raise ConfigError("fine-tuning needs exactly one of pretrained (published parameters) or weights (a "
                          "local checkpoint)", argument=("pretrained", "weights"))
    if weights is not None:
        net, spec = _from_file(name, info, weights)
    elif name.startswith("timm:"):
        net, spec = _from_timm(name.split(":", 1)[1], info)
    elif name == "simplecnn":
        raise ConfigError("simplecnn has no published pretrained parameters; give weights (a checkpoint of your "
                          "own)", argument="weights")
    else:
        net, spec = _from_torchvision(name, info)
    if InputAdapter.needed(info, spec):
        return Adapted(InputAdapter(info, spec), net)
    return net
