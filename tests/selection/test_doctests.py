"""The examples in the docstrings of the pure selection modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["lrscout.selection.candidates", "lrscout.selection.halving", "lrscout.finetuning.select2d"]
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
