"""Single-LR suggestions read off a range-test curve, and their registry.

Every suggestion has one contract: ``fn(lrs, losses) -> float``, with ``lrs`` strictly
increasing and ``losses`` raw (unsmoothed). Non-finite points are dropped first
(``clean_curve``) and the rest is smoothed with the lag-free ``smooth``; a curve with fewer
than 5 finite points, or one without the feature a rule looks for, raises ``CurveError``.
Slopes are taken against ``x = log10(lr)``, the axis the test is swept and plotted on.

The four rules follow the ideas of fastai's ``lr_find`` suggestions (steep, minimum,
valley, slide); the definitions below are lrscout's own and read the lag-free curve, so
they sit where the curve's features are rather than where an EMA moved them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lrscout.curve.clean import clean_curve
from lrscout.curve.smoothing import default_window, smooth
from lrscout.errors import CurveError, unknown_name

Suggestion = Callable[[np.ndarray, np.ndarray], float]

MINIMUM_SHIFT_DECADES = 1.0
"""``minimum`` returns the min-loss LR this many decades lower (fastai: divide by 10)."""

VALLEY_FRACTION = 2.0 / 3.0
"""Where in the longest descending stretch ``valley`` picks, as a fraction of its span."""

SLIDE_SLOPE = 0.5
"""``slide``: slope (fall fractions per decade) above which the loss is leaving its low."""

SLIDE_BAND = 0.1
"""``slide``: the loss is near its low while within this fraction of the fall of it."""

SLIDE_SHIFT_DECADES = 1.0
"""``slide`` returns the end of the low region this many decades lower."""

_REL_TOL = 1e-9


def _tolerance(s: np.ndarray) -> float:
    """Changes below this are float rounding of the smoother, not a descent."""
    return _REL_TOL * max(1.0, float(np.max(np.abs(s))))


def _smoothed(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cleaned LRs, their ``log10`` and the lag-free smoothed losses."""
    lr, y = clean_curve(lrs, losses)
    return lr, np.log10(lr), smooth(y)


def suggest_steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """LR where the smoothed loss falls fastest: ``argmin_i d s / d log10(lr)``.

    The search runs from the end of the left edge (``default_window(n) // 2`` points, where
    the smoother extrapolates) up to the minimum of the smoothed loss, so neither edge
    effects nor the collapse after the minimum can win. On a lag-free curve this is the
    inflection point of the descent (the EMA version lands later). ``CurveError`` when the
    loss never falls there.
    """
    lr, x, s = _smoothed(lrs, losses)
    n, edge = len(s), default_window(len(s)) // 2
    i_min = int(np.argmin(s))
    hi = min(i_min, n - 1 - edge)
    if hi <= edge:
        raise CurveError("no descent before the loss minimum to find a steepest point in")
    slope = np.gradient(s, x)
    k = edge + int(np.argmin(slope[edge : hi + 1]))
    if slope[k] >= -_tolerance(s):
        raise CurveError("the smoothed loss never decreases")
    return float(lr[k])


def suggest_minimum(lrs: np.ndarray, losses: np.ndarray) -> float:
    """LR of the smoothed loss minimum divided by 10 (fastai's ``minimum`` rule).

    ``lr[argmin s] / 10**1``: at the minimum the loss is already about to blow up, one
    decade lower is the folklore margin that usually still trains fast and stably.
    """
    lr, _, s = _smoothed(lrs, losses)
    return float(lr[int(np.argmin(s))] / 10.0**MINIMUM_SHIFT_DECADES)


def suggest_valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """LR two thirds of the way along the longest descending stretch of the smoothed loss.

    The stretch is the longest run of consecutive points with ``s[i+1] < s[i]`` (beyond
    float rounding; ties: the first); with ``a, b`` its first and last ``log10(lr)``, the
    suggestion is ``10**(a + 2/3 * (b - a))``. Two thirds along puts it past the steepest
    part, where the loss is still falling well, and clear of the minimum at ``b``. fastai's
    valley uses the longest decreasing *subsequence* of the raw curve; on a lag-free
    smoothed curve a contiguous run is the same descent without the O(n^2) search and
    without noise points joining it. ``CurveError`` when the loss never falls.
    """
    lr, x, s = _smoothed(lrs, losses)
    falling = np.diff(s) < -_tolerance(s)
    if not falling.any():
        raise CurveError("the smoothed loss never decreases")
    # run lengths of True in `falling`: edges where it switches on/off
    padded = np.concatenate(([False], falling, [False])).astype(np.int8)
    starts = np.flatnonzero(np.diff(padded) == 1)
    ends = np.flatnonzero(np.diff(padded) == -1)  # exclusive, in `falling` steps
    k = int(np.argmax(ends - starts))
    a, b = x[starts[k]], x[ends[k]]  # step j joins points j, j+1: the run ends at point ends[k]
    return float(10.0 ** (a + VALLEY_FRACTION * (b - a)))


def suggest_slide(lrs: np.ndarray, losses: np.ndarray) -> float:
    """Last LR where the loss still sits near its low, one decade lower.

    Normalise the slope by the total fall, ``g = (d s / d log10 lr) / (max s[:m] - s[m])``
    with ``m`` the smoothed minimum, then walk right from ``m`` while ``g <= 0.5`` (the loss
    rises by less than half its total fall per decade) and ``s`` stays within ``0.1`` of the
    fall above its minimum. The last point reached is where the loss stops staying near its
    low values; the suggestion is that LR ``/ 10``. Like fastai's slide it finds the edge of
    the low region from a local gradient threshold; unlike it, the threshold is scale-free
    (fractions of the fall), walked from the minimum, and a slow steady rise ends the walk
    through the band even where the slope stays small.
    ``CurveError`` when the loss never falls.
    """
    lr, x, s = _smoothed(lrs, losses)
    i = int(np.argmin(s))
    low = float(s[i])
    fall = float(np.max(s[: i + 1])) - low
    if fall <= _tolerance(s):
        raise CurveError("the smoothed loss never decreases")
    slope = np.gradient(s, x) / fall
    near_low = s <= low + SLIDE_BAND * fall
    while i + 1 < len(s) and slope[i + 1] <= SLIDE_SLOPE and near_low[i + 1]:
        i += 1
    return float(lr[i] / 10.0**SLIDE_SHIFT_DECADES)


SUGGESTIONS: dict[str, Suggestion] = {
    "steep": suggest_steep,
    "minimum": suggest_minimum,
    "valley": suggest_valley,
    "slide": suggest_slide,
}
"""Suggestion rules by name; each is ``fn(lrs, losses) -> float``."""


def get_suggestion(name: str) -> Suggestion:
    """The suggestion called ``name``; ``ConfigError`` listing the choices when unknown."""
    try:
        return SUGGESTIONS[name]
    except KeyError:
        raise unknown_name("suggestion", name, list(SUGGESTIONS)) from None
