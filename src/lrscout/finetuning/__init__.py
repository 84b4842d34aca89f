"""Fine-tuning pretrained vision models: discriminative LRs, freezing, per-group LR choice.

Loading weights and building parameter groups live with the models
(:mod:`lrscout.models.pretrained`, :mod:`lrscout.models.groups`); their names are
re-exported here.

    sweep       the second range test: backbone ratio swept with the head LR fixed
    select2d    successive halving over (head LR, backbone ratio) candidates
    run         finetune(): range tests -> 2-D selection -> the chosen run, files
    digits      pretrain_digits(): an offline backbone that transfers to MNIST
"""

from .digits import pretrain_digits
from ..models.groups import backbone_blocks, freeze_backbone, param_groups, unfreeze
from ..models.pretrained import Adapted, InputAdapter, InputSpec, find_head, load_pretrained, replace_head
from .result import FinetuneResult
from .run import finetune
from .select2d import DEFAULT_RATIOS, Candidate, GroupTrial, candidate_grid, ratio_candidates, select_groups, train_groups
from .sweep import find_ratio

__all__ = [
    "DEFAULT_RATIOS",
    "Adapted",
    "Candidate",
    "FinetuneResult",
    "GroupTrial",
    "InputAdapter",
    "InputSpec",
    "backbone_blocks",
    "candidate_grid",
    "find_head",
    "find_ratio",
    "finetune",
    "freeze_backbone",
    "load_pretrained",
    "param_groups",
    "pretrain_digits",
    "ratio_candidates",
    "replace_head",
    "select_groups",
    "train_groups",
    "unfreeze",
]
