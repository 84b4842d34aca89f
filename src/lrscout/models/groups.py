"""Discriminative learning rates: parameter groups for a head and its backbone, and freezing.

The head (see :func:`~lrscout.models.pretrained.find_head`) learns at ``head_lr``. The
backbone is cut into blocks in input-to-output order, and block ``i`` of ``n`` learns at::

    lr_i = head_lr * backbone_ratio * layer_decay ** (n - 1 - i)

so ``backbone_ratio`` sets the step down from head to backbone (ULMFiT / fastai's
discriminative LRs) and ``layer_decay`` < 1 makes each earlier block slower again (BEiT's
layer-wise decay; ``backbone_ratio = layer_decay`` gives the usual form). With
``layer_decay = 1`` the backbone is one group. ``backbone_ratio = 1, layer_decay = 1`` is
one LR for everything.

Blocks are timm's own ``group_matcher(coarse=True)`` stages for timm models, else the
top-level children holding parameters (descending while a single child holds them all,
as in a ``features`` wrapper). Biases and normalisation weights (every parameter of at
most one dimension) never get weight decay. Frozen parameters (``requires_grad=False``)
stay in their groups: torch optimizers skip parameters without a gradient, so freezing
and unfreezing never rebuild the optimizer.

Example::

    groups = param_groups(model, head_lr=0.05, backbone_ratio=0.1, weight_decay=5e-4)
    optimizer = torch.optim.SGD(groups, lr=0.05, momentum=0.9)  # group LRs win
    [g["name"] for g in groups]   # ['head', 'head/no_decay', 'backbone', 'backbone/no_decay']
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..errors import ConfigError
from .pretrained import find_head, unwrap

Named = list[tuple[str, nn.Parameter]]


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _timm_blocks(model: nn.Module, head: str) -> list[tuple[str, Named]] | None:
    """timm's coarse parameter groups (stem, stages ... ) in order, head removed."""
    net = unwrap(model)
    matcher = getattr(net, "group_matcher", None)
    if not callable(matcher):
        return None
    try:
        from timm.models import group_parameters
    except ImportError:  # pragma: no cover - a group_matcher without timm is unusual
        return None
    prefix = "net." if net is not model else ""
    params = dict(model.named_parameters())
    blocks: list[tuple[str, Named]] = []
    for names in group_parameters(net, matcher(coarse=True)).values():
        named = [(prefix + n, params[prefix + n]) for n in names if not _is_under(prefix + n, head)]
        if named:
            blocks.append((_block_name([n for n, _ in named]), named))
    return blocks


def _block_name(names: list[str]) -> str:
    """Common module path of the names under the first one's top module ("blocks.11" for
    blocks.11.* + norm.*), else the first parameter's name ("cls_token")."""
    top = names[0].split(".")[0]
    parts = [n.split(".")[:-1] for n in names if n.split(".")[0] == top]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common) or names[0]


def _child_blocks(model: nn.Module, head: str) -> list[tuple[str, Named]]:
    """Top-level children that hold backbone parameters, descending through lone wrappers."""
    module, prefix = model, ""
    while True:
        own: Named = [(prefix + n, p) for n, p in module.named_parameters(recurse=False)]
        children: list[tuple[str, Named]] = []
        for name, child in module.named_children():
            named = [(n, p) for n, p in child.named_parameters(prefix=prefix + name) if not _is_under(n, head)]
            if named:
                children.append((prefix + name, named))
        if own or len(children) != 1:
            break
        sole = children[0][0]
        module, prefix = model.get_submodule(sole), sole + "."
    blocks: list[tuple[str, Named]] = [(prefix.rstrip(".") or "root", own)] if own else []
    return blocks + children


def backbone_blocks(model: nn.Module, head: str | None = None) -> list[tuple[str, Named]]:
    """The backbone's blocks, input side first: ``[(block name, [(param name, param)])]``."""
    head = head if head is not None else find_head(model)
    blocks = _timm_blocks(model, head)
    return blocks if blocks is not None else _child_blocks(model, head)


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(".bias")


def param_groups(
    model: nn.Module,
    head_lr: float,
    backbone_ratio: float = 0.1,
    *,
    layer_decay: float = 1.0,
    weight_decay: float = 0.0,
    head: str | None = None,
) -> list[dict[str, Any]]:
    """Torch param-group dicts: the head first (group 0), then the backbone blocks, input side first.

    Every dict has ``"params"``, an explicit ``"lr"`` and ``"weight_decay"``, and a
    ``"name"`` (``head``, ``backbone`` or ``backbone:<block>``, with ``/no_decay`` for the
    biases and norm weights when ``weight_decay > 0``). Group 0 is the head, so a range
    test on these groups reports the head LR and keeps the ratios. ``head`` overrides
    the detected head module name. Raises :class:`ConfigError` for a non-positive
    ``head_lr``, a negative ``backbone_ratio`` (0 freezes the backbone by LR) or a
    ``layer_decay`` outside (0, 1].

    >>> from lrscout.models import SimpleCNN
    >>> [(g["name"], g["lr"]) for g in param_groups(SimpleCNN(), 0.1, 0.25)]
    [('head', 0.1), ('backbone', 0.025)]
    """
    if not (math.isfinite(head_lr) and head_lr > 0):
        raise ConfigError(f"head_lr must be a positive finite number, got {head_lr}")
    if not (math.isfinite(backbone_ratio) and backbone_ratio >= 0):
        raise ConfigError(f"backbone_ratio must be a finite number >= 0, got {backbone_ratio}")
    if not 0 < layer_decay <= 1:
        raise ConfigError(f"layer_decay must be in (0, 1], got {layer_decay}")
    if weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}")
    head = head if head is not None else find_head(model)
    head_params = [(n, p) for n, p in model.named_parameters() if _is_under(n, head)]
    if not head_params:
        raise ConfigError(f"head {head!r} has no parameters in this model")
    blocks = backbone_blocks(model, head)
    if layer_decay == 1.0 and blocks:
        blocks = [("backbone", [np for _, named in blocks for np in named])]
    groups: list[dict[str, Any]] = []

    def add(name: str, named: Named, lr: float) -> None:
        split = weight_decay > 0
        decay = [p for n, p in named if not (split and _no_decay(n, p))]
        plain = [p for n, p in named if split and _no_decay(n, p)]
        for suffix, params, wd in (("", decay, weight_decay), ("/no_decay", plain, 0.0)):
            if params:
                groups.append({"params": params, "lr": lr, "weight_decay": wd, "name": name + suffix})

    add("head", head_params, float(head_lr))
    n = len(blocks)
    for i, (block, named) in enumerate(blocks):
        name = block if block == "backbone" else f"backbone:{block}"
        add(name, named, float(head_lr * backbone_ratio * layer_decay ** (n - 1 - i)))
    covered = sum(len(g["params"]) for g in groups)
    total = len(list(model.parameters()))
    if covered != total:  # pragma: no cover - a guard against a block rule missing a parameter
        raise ConfigError(f"parameter groups cover {covered} of {total} parameters")
    return groups


def freeze_backbone(model: nn.Module, head: str | None = None) -> list[nn.Parameter]:
    """Stop gradients for every parameter outside the head; returns the ones it froze.

    BatchNorm running statistics still update in train mode (fastai's choice: the new
    data's statistics help). Undo with :func:`unfreeze`.
    """
    head = head if head is not None else find_head(model)
    frozen = [p for n, p in model.named_parameters() if not _is_under(n, head) and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    return frozen


def unfreeze(params: list[nn.Parameter]) -> None:
    """Let the given parameters (from :func:`freeze_backbone`) learn again."""
    for p in params:
        p.requires_grad_(True)
