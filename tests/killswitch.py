"""Interrupt a selection after a given number of trials (resume tests of select and finetune)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Killed(Exception):
    """Raised from the ``on_trial`` hook, as a Ctrl-C or a killed worker would stop the run."""


def die_after(ran: list[str], n: int) -> Callable[[Any], None]:
    """An ``on_trial`` hook that records each trial id in ``ran`` and raises :class:`Killed`
    once ``ran`` holds ``n`` ids."""

    def hook(trial: Any) -> None:
        ran.append(trial.spec.trial_id)
        if len(ran) == n:
            raise Killed

    return hook
