"""Models: the named catalogue, pretrained weights, and parameter groups.

    catalogue   build_model(name, ...): ``simplecnn``, torchvision's ``resnet18``, ``timm:NAME``
    pretrained  load_pretrained: torchvision / timm / local weights, a fresh head, input adapter
    groups      param_groups (head LR, backbone ratio, layer decay), freeze / unfreeze

Everything here builds or arranges ``nn.Module`` objects; nothing trains.
"""

from .catalogue import MODELS, SimpleCNN, build_model
from .groups import backbone_blocks, freeze_backbone, param_groups, unfreeze
from .pretrained import Adapted, InputAdapter, InputSpec, find_head, load_pretrained, replace_head

__all__ = [
    "MODELS",
    "Adapted",
    "InputAdapter",
    "InputSpec",
    "SimpleCNN",
    "backbone_blocks",
    "build_model",
    "find_head",
    "freeze_backbone",
    "load_pretrained",
    "param_groups",
    "replace_head",
    "unfreeze",
]
