"""When to stop a range test: the loss is not a number, or it has blown up."""

from __future__ import annotations

import math

from lrscout.errors import ConfigError

MIN_STOP_POINTS = 10
"""Points a range test records before its rise test may stop it (NaN/inf stops at once).

The running average of the first few points is the luck of a few batches: a model that
has just taken a step on the loader's first batch scores low on it and normally on the
next, and "4x the best" would fire at point 2. From the tenth point the average spans
enough batches to be a level, and the best is counted from there as well."""


def diverged(loss: float, smoothed: float, best_smoothed: float, factor: float) -> bool:
    """True when the sweep should stop: the loss is NaN/inf or it has blown up.

    Blown up means ``smoothed > best + (factor - 1) * |best|``, the smoothed (EMA) loss has
    climbed ``factor - 1`` times the size of the best smoothed loss above it. For a
    positive best this is the usual ``smoothed > factor * best`` (fastai uses ``factor=4``,
    pytorch-lr-finder 5); written this way it also behaves for a best ``<= 0`` (a loss
    with an offset, a negative log-likelihood), where ``factor * best`` would be *below*
    best and stop the sweep at once. With ``best == 0`` any rise stops it.

    A non-finite ``smoothed`` also stops; a non-finite ``best_smoothed`` (no best yet)
    never triggers the rise test. ``factor <= 1`` raises ``ConfigError``: it would stop
    on the first step that is not a new best.

    >>> diverged(2.0, 5.0, 1.0, 4.0), diverged(2.0, 3.0, 1.0, 4.0)
    (True, False)
    >>> diverged(float("nan"), 1.0, 1.0, 4.0), diverged(-1.0, -1.0, -2.0, 4.0)
    (True, False)
    """
    if not (math.isfinite(factor) and factor > 1.0):
        raise ConfigError(f"factor must be a finite number > 1, got {factor!r}")
    if not (math.isfinite(loss) and math.isfinite(smoothed)):
        return True
    if not math.isfinite(best_smoothed):
        return False
    return smoothed > best_smoothed + (factor - 1.0) * abs(best_smoothed)
