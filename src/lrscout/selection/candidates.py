"""Candidate learning rates for a verified selection, read off a range test (pure maths).

A range test shows where the loss falls fastest (``steep``), where it bottoms out (the
minimum-loss LR) and where training starts to come apart (``onset``). Measured on real
digit data, the LR with the best *final* accuracy after a full training run often lies
*above* the steepest point, close to the top of the usable range, and every single-point
heuristic misses it by up to a decade; the onset itself moves by half a decade from seed
to seed while the cliff in final accuracy stays put. So the candidates are a log-spaced
ladder hung from one step above the onset, reaching down through lrscout's recommended
interval (a candidate that collapses costs one short run and is recorded as such):

    top    = onset * 10**(a/d) if the sweep saw an onset (a = 1 step above it), else the
             minimum-loss LR, else the interval's high end; at least steep * 10**(1/d)
             and the interval's high end
    bottom = min(interval low, top / 10**min_span), not below top / 10**max_span
    n      = round(d * log10(top / bottom)) + 1, clamped to [min_count, max_count]
    lr_i   = bottom * (top / bottom) ** (i / (n - 1)),   i = 0 .. n-1

with ``d`` candidates per decade (3 by default: neighbours a factor 10**(1/3) ~ 2.15 apart,
finer than the accuracy differences short runs can resolve). With fewer candidates than
the span asks for the same span is covered more coarsely; when a budget allows fewer
short runs than the ladder holds, :func:`window_start` drops candidates from the bottom
instead, keeping the spacing where the winners are.

Example::

    >>> [round(x, 4) for x in candidate_lrs(0.001, 0.004, steep=0.003, onset=0.012)]
    [0.0008, 0.0016, 0.0033, 0.0065, 0.013, 0.0259]
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError

#: Candidates per decade of LR.
PER_DECADE = 3.0
#: The ladder spans at least this many decades below its top ...
MIN_SPAN_DECADES = 1.5
#: ... and at most this many (a very wide interval is thinned, not followed to the bottom).
MAX_SPAN_DECADES = 2.5
#: Most candidates a ladder holds before it is spaced more coarsely.
MAX_COUNT = 6
#: The ladder's top sits this many steps (of 1/d decade) above the instability onset.
ABOVE_ONSET = 1.0


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{name} must be a positive finite LR, got {value!r}")
    return v


def candidate_lrs(
    low: float,
    high: float,
    *,
    steep: float | None = None,
    onset: float | None = None,
    min_loss: float | None = None,
    per_decade: float = PER_DECADE,
    above_onset: float = ABOVE_ONSET,
    min_span: float = MIN_SPAN_DECADES,
    max_span: float = MAX_SPAN_DECADES,
    min_count: int = 2,
    max_count: int = MAX_COUNT,
) -> tuple[float, ...]:
    """Log-spaced candidate LRs from a range test's interval ``[low, high]`` and landmarks.

    ``steep``: the steepest-descent LR; ``onset``: where the loss turns back up (``None``
    if the sweep never got there); ``min_loss``: the LR of the smoothed loss minimum;
    ``above_onset``: how many ladder steps the top sits above the onset. The rule is in
    the module docstring. Returns ``n`` increasing LRs, the last one the top.
    Raises :class:`ConfigError` for a non-positive LR, ``low > high`` or bad counts.
    """
    lo, hi = _positive("interval low", low), _positive("interval high", high)
    assert lo is not None and hi is not None  # for the type checker: _positive(x) of a float
    if lo > hi:
        raise ConfigError(f"interval low {low!r} is above its high {high!r}")
    steep_v, onset_v, min_v = _positive("steep", steep), _positive("onset", onset), _positive("min_loss", min_loss)
    if not per_decade > 0:
        raise ConfigError(f"per_decade must be > 0, got {per_decade!r}")
    if not 0 < min_span <= max_span:
        raise ConfigError(f"need 0 < min_span <= max_span, got {min_span!r}, {max_span!r}")
    if not 1 <= min_count <= max_count:
        raise ConfigError(f"need 1 <= min_count <= max_count, got {min_count!r}, {max_count!r}")

    step = 1.0 / per_decade
    if onset_v is not None:
        x_top = math.log10(onset_v) + above_onset * step
    else:
        x_top = math.log10(min_v if min_v is not None else hi)
    floor = math.log10(hi)
    if steep_v is not None:
        floor = max(floor, math.log10(steep_v) + step)  # at least one point above steep
    x_top = max(x_top, floor)
    x_bottom = min(math.log10(lo), x_top - min_span)
    x_bottom = max(x_bottom, x_top - max_span)
    span = x_top - x_bottom
    n = int(math.floor(span * per_decade + 0.5 + 1e-9)) + 1  # round half up (span is a float sum)
    n = max(min_count, min(max_count, n))
    if n == 1:
        return (float(10**x_top),)
    return tuple(float(v) for v in 10 ** np.linspace(x_bottom, x_top, n))


def window_start(ladder_size: int, n: int, *, lower: int = 0) -> int:
    """Index of the lowest of the ``n`` ladder LRs rung 0 tries: the top ``n`` of the
    ladder (dropped from the bottom, keeping the spacing), or the ``n`` that sit ``lower``
    steps below them (as far as the ladder reaches).

    Why from the bottom: in the quality benchmark (8 tasks x 3 seeds, budget re-spacing
    the ladder over its whole span) the lowest candidate never won, while the top one won
    a fifth of the time: the best final LR sits high in the range test's usable span.

    >>> window_start(6, 3), window_start(6, 3, lower=1), window_start(3, 3, lower=1)
    (3, 2, 0)
    """
    if n < 1 or lower < 0:
        raise ConfigError(f"need at least one candidate and lower >= 0, got {n}, {lower}")
    return max(0, ladder_size - n - lower)


def min_loss_lr(lrs: list[float] | tuple[float, ...], smoothed: list[float] | tuple[float, ...]) -> float | None:
    """The LR at the minimum of a smoothed range-test curve (``None`` if there is none)."""
    if not lrs or len(lrs) != len(smoothed):
        return None
    s = np.asarray(smoothed, dtype=np.float64)
    if not np.isfinite(s).any():
        return None
    return float(lrs[int(np.nanargmin(np.where(np.isfinite(s), s, np.nan)))])
