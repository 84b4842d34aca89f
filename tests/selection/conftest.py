"""A small, fast selection shared by the select tests (digits subset, 4 epochs)."""

from __future__ import annotations

from typing import Any

import pytest

from lrscout.task import Task

#: 255 training images in batches of 32: 8 steps an epoch; a 51-step range test (1.6 runs
#: of 4 epochs; not a short sweep, so the plan is ordinary halving, not verified finalists),
#: so a budget of 4.75 runs buys 4 two-epoch trials and 2 finalists (the sweep stops at about 48
#: steps, 1.5 runs; a step more or less on another CPU keeps the plan).
TASK = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=300)
KWARGS: dict[str, Any] = {"epochs": 4, "budget": 4.75, "find_kwargs": {"num_iter": 51}}


@pytest.fixture(scope="session")
def small_select():  # type: ignore[no-untyped-def]
    from lrscout.selection import select

    return select(TASK, **KWARGS)
