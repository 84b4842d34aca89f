"""The callbacks of :mod:`lrscout.integrations.lightning`, built on ``pytorch_lightning``.

A ``pytorch_lightning.Trainer`` accepts only ``pytorch_lightning.Callback`` subclasses;
use this module when both ``lightning`` and ``pytorch_lightning`` are installed and your
code imports the latter (``pip install pytorch-lightning``).
"""

from __future__ import annotations

from ..errors import MissingDependencyError
from ._lightning import FindAtFitStart, GuardDuringFit, lightning_task

try:
    import pytorch_lightning as pl
except ImportError as exc:
    raise MissingDependencyError(
        "pytorch_lightning is not installed; install it with: pip install pytorch-lightning"
    ) from exc

__all__ = ["DivergenceGuard", "LRFinder", "lightning_task"]


class LRFinder(FindAtFitStart, pl.Callback):
    __doc__ = FindAtFitStart.__doc__


class DivergenceGuard(GuardDuringFit, pl.Callback):
    __doc__ = GuardDuringFit.__doc__
