"""The public surface of lrscout.curve and the examples in its docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

import lrscout.curve as curve

MODULES = ["analysis", "clean", "interval", "ramps", "smoothing", "stop", "suggest"]


def test_all_is_unique_and_importable() -> None:
    assert len(set(curve.__all__)) == len(curve.__all__)
    for name in curve.__all__:
        assert getattr(curve, name) is not None


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str) -> None:
    mod = importlib.import_module(f"lrscout.curve.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
