"""Lightning callbacks: lrscout's range test at fit start, and its divergence guard.

Install with ``pip install 'lrscout[lightning]'``. Built on ``lightning.pytorch``, or on
``pytorch_lightning`` when only that package is installed (with both installed, use
:mod:`lrscout.integrations.pytorch_lightning` for a ``pytorch_lightning.Trainer``).

Example::

    from lrscout.integrations.lightning import DivergenceGuard, LRFinder

    finder = LRFinder(num_iter=100)
    trainer = lightning.pytorch.Trainer(max_epochs=5, callbacks=[finder, DivergenceGuard()])
    trainer.fit(module, datamodule=datamodule)
    print(finder.result.lr, finder.result.interval)  # the LR the fit trained at

``LRFinder`` runs :func:`lrscout.find` on the module's ``training_step``, the trainer's
training dataloader and its optimizer, restores everything bit for bit, then sets the
optimizer's LR (and the module's ``lr`` / ``learning_rate``) to the recommendation, the
way Lightning's own ``LearningRateFinder`` callback does. ``DivergenceGuard`` is
:class:`lrscout.Guard` as a callback: rollback and an LR cut on NaN or a spike.

``lightning_task(module_fn, datamodule_fn, metric="val_acc")`` is a
:class:`lrscout.TrainingTask` for ``select``, ``train`` and ``compare`` (no Trainer runs;
see :func:`lrscout.integrations._lightning.lightning_task`).
"""

from __future__ import annotations

from ..errors import MissingDependencyError
from ._lightning import FindAtFitStart, GuardDuringFit, lightning_task

try:
    import lightning.pytorch as pl
except ImportError:
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError as exc:
        raise MissingDependencyError(
            "neither lightning nor pytorch_lightning is installed; install it with: pip install 'lrscout[lightning]'"
        ) from exc

__all__ = ["DivergenceGuard", "LRFinder", "lightning_task"]


class LRFinder(FindAtFitStart, pl.Callback):
    __doc__ = FindAtFitStart.__doc__


class DivergenceGuard(GuardDuringFit, pl.Callback):
    __doc__ = GuardDuringFit.__doc__
