"""The fine-tuning names in the public API."""

from __future__ import annotations

import lrscout
from lrscout import finetune as finetune_fn
from lrscout.finetuning import __all__ as finetune_all
from lrscout.models.groups import param_groups
from lrscout.finetuning.run import finetune


def test_top_level_names() -> None:
    assert {"finetune", "param_groups"} <= set(lrscout.__all__)
    assert lrscout.param_groups is param_groups
    assert lrscout.finetune is finetune is finetune_fn  # the function, not the subpackage


def test_subpackage_all_is_importable_and_unique() -> None:
    import importlib

    module = importlib.import_module("lrscout.finetuning")
    assert len(set(finetune_all)) == len(finetune_all)
    assert all(hasattr(module, name) for name in finetune_all)
