"""Everything lrscout reads off one range-test curve, in one frozen result."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrscout.curve.clean import clean_curve
from lrscout.curve.interval import Recommendation, recommend
from lrscout.curve.smoothing import smooth
from lrscout.curve.suggest import SUGGESTIONS
from lrscout.errors import CurveError


@dataclass(frozen=True, eq=False)
class Analysis:
    """A curve's suggestions, lrscout's recommendation and the curve they were read from.

    ``lrs`` / ``losses`` are the finite points only (what every rule saw), ``smoothed`` is
    ``smooth(losses)``; the arrays are read-only. ``suggestions`` holds every registered
    suggestion that applies to this curve (one that raises ``CurveError`` is left out).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestions: dict[str, float]
    recommendation: Recommendation


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def analyse(lrs: np.ndarray, losses: np.ndarray) -> Analysis:
    """Run every suggestion in ``SUGGESTIONS`` and ``recommend`` on one curve.

    Non-finite loss points are dropped once here, so none reaches a rule. Raises
    ``CurveError`` when the curve itself is unusable (fewer than 5 finite points, ...).

    >>> from lrscout.curve import lr_ramp
    >>> lr = lr_ramp(1e-5, 1.0, 50)
    >>> a = analyse(lr, 1.0 + (np.log10(lr) + 2.0) ** 2)
    >>> sorted(a.suggestions), a.recommendation.low <= a.recommendation.lr <= a.recommendation.high
    (['minimum', 'slide', 'steep', 'valley'], True)
    """
    lr, y = clean_curve(lrs, losses)
    suggestions: dict[str, float] = {}
    for name, rule in SUGGESTIONS.items():
        try:
            suggestions[name] = rule(lr, y)
        except CurveError:
            continue  # this rule does not apply to this curve's shape
    return Analysis(
        lrs=_frozen(lr),
        losses=_frozen(y),
        smoothed=_frozen(smooth(y)),
        suggestions=suggestions,
        recommendation=recommend(lr, y),
    )
