"""The package's shape: the public API is pinned, and every module is reachable by its path.

``import lrscout.a.b as m`` looks ``b`` up as an attribute of ``lrscout.a`` first, so a
function named like its subpackage (the old ``lrscout.select``) or module (the old
``training.diagnose``) hides the module. This walks every module under ``src/lrscout``.
"""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import lrscout
from lrscout.errors import MissingDependencyError

PUBLIC = [
    "CompareResult", "Diagnosis", "FindResult", "Guard", "LrscoutError", "Metric", "Objective", "SelectResult",
    "Task", "TrainResult", "TrainingTask",
    "compare", "diagnose", "find", "finetune", "fit", "objective", "param_groups", "schedule_for", "select",
    "task_from", "train",
]


def test_public_api_is_pinned() -> None:
    assert lrscout.__all__ == PUBLIC
    assert all(hasattr(lrscout, name) for name in PUBLIC)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(lrscout.__path__, "lrscout."))


@pytest.mark.parametrize("name", _modules())
def test_every_module_is_reachable_by_attribute_path(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except MissingDependencyError as exc:  # an integration whose optional extra is absent
        pytest.skip(str(exc))
    parent_name, _, leaf = name.rpartition(".")
    parent = importlib.import_module(parent_name)
    attr = getattr(parent, leaf)  # what `import lrscout.x.y as m` binds
    assert isinstance(attr, types.ModuleType) and attr is module, f"{name} is shadowed by {attr!r}"
