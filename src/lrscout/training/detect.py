"""Pure detection maths for the divergence guard: losses in, verdicts out (numpy only).

The guard checks every optimizer step's loss against the recent *good* losses (those
that passed these checks), in this order:

``nan``
    the loss is NaN or +-inf.
``spike``
    one loss far above a robust baseline of the last ``window`` good losses::

        loss > m + max(K_SIGMA * 1.4826 * MAD, s * (start - m), MIN_JUMP * m)

    ``m`` the median and ``MAD`` the median absolute deviation of those losses
    (Hampel's outlier rule: 1.4826 * MAD estimates the standard deviation of normal
    noise), ``start`` the median of the first ``window`` good losses, ``s`` the guard's
    ``spike`` setting. The second term asks a spike to give back ``s`` times the progress
    made so far in one step: the loss of one mini-batch is heavy-tailed, and late in
    training single batches at 5-25x the running median are normal (measured on digits,
    batch 32), while the jumps that precede divergence go far above the starting loss.
    The third term rules before there is progress: the loss must at least double.
``growth``
    the loss climbed back and stays up: the median of the last ``window`` good losses
    has given back a fraction ``g`` of the progress made so far::

        median_now > best + g * max(start - best, GROWTH_FLOOR * best)

    ``best`` is the lowest windowed median seen, ``start`` the median of the first
    ``window`` good losses. The floor makes the rule work before there is progress (a
    loss that only rises is caught once it is ``1 + g * GROWTH_FLOOR`` x its best).
    This catches what a spike test cannot: a loss that rises smoothly, or a network
    whose units died and whose loss sits back at its starting level.

Example::

    >>> is_spike(9.0, np.array([2.3, 2.2, 2.25]), start=2.3, spike=2.0)
    True
    >>> is_growth(np.array([2.3] * 20), best=0.4, start=2.3, growth=0.5)
    True
"""

from __future__ import annotations

import math

import numpy as np

MAD_TO_SIGMA = 1.4826
"""Scale of the median absolute deviation to a normal standard deviation."""

K_SIGMA = 6.0
"""A spike is at least this many robust standard deviations above the median."""

MIN_JUMP = 1.0
"""... and at least this fraction of the median above it (1.0: the loss doubles)."""

GROWTH_FLOOR = 0.5
"""Progress used by the growth rule is at least this fraction of the best level."""


def robust_baseline(values: np.ndarray) -> tuple[float, float]:
    """``(median, 1.4826 * MAD)`` of ``values``: a centre and a spread that a few
    outliers cannot move. ``values`` must be non-empty and finite."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("robust_baseline needs at least one value")
    med = float(np.median(v))
    return med, MAD_TO_SIGMA * float(np.median(np.abs(v - med)))


def spike_threshold(recent: np.ndarray, *, start: float, spike: float) -> float:
    """The loss above which the next step is a spike (see the module doc)."""
    med, sigma = robust_baseline(recent)
    return med + max(K_SIGMA * sigma, spike * (start - med), MIN_JUMP * abs(med))


def is_spike(loss: float, recent: np.ndarray, *, start: float, spike: float) -> bool:
    """True when ``loss`` is above :func:`spike_threshold` of the ``recent`` good losses.

    Never true without history (nothing to compare to) or for a non-finite loss (that is
    the ``nan`` check's job).
    """
    if len(recent) == 0 or not math.isfinite(loss):
        return False
    return loss > spike_threshold(recent, start=start, spike=spike)


def growth_threshold(best: float, start: float, *, growth: float) -> float:
    """The windowed median above which the run counts as growing: see the module doc."""
    progress = max(start - best, GROWTH_FLOOR * abs(best))
    return best + growth * progress


def is_growth(recent: np.ndarray, *, best: float, start: float, growth: float) -> bool:
    """True when the median of ``recent`` (a full window of good losses) has risen above
    :func:`growth_threshold`. ``best`` and ``start`` are windowed medians (see
    :func:`windowed_median`)."""
    if len(recent) == 0:
        return False
    return float(np.median(recent)) > growth_threshold(best, start, growth=growth)


def windowed_median(values: np.ndarray, window: int) -> float:
    """Median of the last ``window`` values (of all of them if there are fewer)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.median(v[-window:]))
