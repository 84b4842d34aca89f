"""A small, fast selection shared by the select tests (digits subset, 4 epochs)."""

from __future__ import annotations

from typing import Any

import pytest

from lrscout.task import Task

#: 255 training images in batches of 32: 8 steps an epoch; a 20-step range test (0.625 runs
#: of 4 epochs), so a budget of 4 runs buys 4 two-epoch trials and 2 finalists.
TASK = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=300)
KWARGS: dict[str, Any] = {"epochs": 4, "budget": 4.0, "find_kwargs": {"num_iter": 20}}


@pytest.fixture(scope="session")
def small_select():  # type: ignore[no-untyped-def]
    from lrscout.selection import select

    return select(TASK, **KWARGS)
