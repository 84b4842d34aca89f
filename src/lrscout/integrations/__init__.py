"""Adapters to other training frameworks, each an optional extra imported on its own.

- :mod:`lrscout.integrations.lightning`: callbacks for ``lightning`` (``lightning.pytorch``),
  or ``pytorch_lightning`` when only that is installed (``pip install 'lrscout[lightning]'``).
- :mod:`lrscout.integrations.pytorch_lightning`: the same callbacks built on
  ``pytorch_lightning`` for a ``pytorch_lightning.Trainer`` when both packages are installed.

Nothing here is imported by ``import lrscout``: the frameworks stay optional.
"""
