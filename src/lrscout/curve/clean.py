"""Checking and cleaning a recorded (lrs, losses) curve before any analysis."""

from __future__ import annotations

import numpy as np

from lrscout.errors import CurveError

MIN_POINTS = 5
"""Fewest finite points a curve needs before anything is read off it."""


def clean_curve(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(lrs, losses)`` as float arrays with every non-finite loss point dropped.

    The LRs must be 1-D, the same length as the losses, finite, ``> 0`` (they are read
    on a log scale) and strictly increasing; a NaN/inf loss (the sweep diverged, or a
    bad batch) removes that point, so no suggestion ever sees it. Raises ``CurveError``
    on a malformed curve or when fewer than ``MIN_POINTS`` (5) finite points remain.
    """
    x = np.asarray(lrs, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise CurveError(f"lrs and losses must be 1-D of one length, got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise CurveError("lrs must be finite and > 0")
    if np.any(np.diff(x) <= 0):
        raise CurveError("lrs must be strictly increasing")
    keep = np.isfinite(y)
    if int(keep.sum()) < MIN_POINTS:
        raise CurveError(
            f"need at least {MIN_POINTS} finite loss points, got {int(keep.sum())} of {len(y)}"
        )
    return x[keep], y[keep]
