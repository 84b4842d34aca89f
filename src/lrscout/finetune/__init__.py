"""Fine-tuning pretrained vision models: discriminative LRs, freezing, per-group LR choice.

    pretrained  load torchvision / timm / local weights, replace the head, adapt the input
    groups      param_groups (head LR, backbone ratio, layer decay), freeze / unfreeze
    sweep       the second range test: backbone ratio swept with the head LR fixed
"""

from .groups import backbone_blocks, freeze_backbone, param_groups, unfreeze
from .pretrained import Adapted, InputAdapter, InputSpec, find_head, load_pretrained, replace_head
from .sweep import find_ratio

__all__ = [
    "Adapted",
    "InputAdapter",
    "InputSpec",
    "backbone_blocks",
    "find_head",
    "find_ratio",
    "freeze_backbone",
    "load_pretrained",
    "param_groups",
    "replace_head",
    "unfreeze",
]
