"""The public names of verified selection."""

from __future__ import annotations

import sys

import lrscout


def test_public_names() -> None:
    assert {"select", "compare", "SelectResult", "CompareResult"} <= set(lrscout.__all__)
    assert callable(lrscout.select) and callable(lrscout.compare)
    package = sys.modules["lrscout.selection"]
    assert len(set(package.__all__)) == len(package.__all__)
    assert all(hasattr(package, name) for name in package.__all__)
    assert package.SelectResult is lrscout.SelectResult
