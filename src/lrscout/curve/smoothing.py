"""Smoothing a range-test loss curve: lag-free for analysis, causal EMA for stopping.

The classic range test smooths with a debiased exponential moving average (EMA). An EMA is
causal: every value is a weighted mean of the *past*, so on a curve sampled evenly in
``log10(lr)`` it delays every feature by about ``beta / (1 - beta)`` steps (49 steps at
``beta = 0.98``, half a decade or more on a 100-step sweep). Suggestions read off an EMA
(its minimum, its steepest point) are therefore shifted towards larger LRs. ``smooth`` uses a
centred filter instead, whose window is symmetric around each point, so a smooth curve's
minimum and steepest point stay where they are. ``ema`` stays for what needs causality: the
divergence check during the sweep, which can only see the past.

``rolling_median`` is the robust smoother of long training-loss curves (``diagnose`` and
its plots): near-linear in the number of points, so a million-step log is cheap.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lrscout.errors import ConfigError, CurveError

DEFAULT_WINDOW_FRACTION = 0.1
"""Default window as a fraction of the number of points (100 points -> 11)."""

MIN_DEFAULT_WINDOW = 5
"""Smallest default window: below it a quadratic fit does not average anything away."""

POLY_ORDER = 2
"""Order of the local polynomial (Savitzky-Golay). 2 keeps minima at their place."""

MEDIAN_WINDOW = 5
"""Width of the running median run before the fit: removes bursts of up to 2 outliers."""


def _largest_odd_at_most(n: int) -> int:
    return n if n % 2 == 1 else n - 1


def default_window(n: int) -> int:
    """Default smoothing window for ``n`` points: about 10% of them, odd, at least 5.

    ``w = round(0.1 * n)`` made odd (``+1`` when even), raised to 5, then capped at the
    largest odd number ``<= n``. 100 points -> 11, 300 -> 31, 20 -> 5, 4 -> 3.
    Scaling with ``n`` keeps the window a fixed span of the sweep (0.7 decade on a
    7-decade, 100-step sweep): wide enough to average minibatch noise, narrow enough that a
    quadratic still describes the curve inside it.
    """
    w = int(round(DEFAULT_WINDOW_FRACTION * n))
    if w % 2 == 0:
        w += 1
    w = max(w, MIN_DEFAULT_WINDOW)
    return max(1, min(w, _largest_odd_at_most(n)))


def _resolve_window(n: int, window: int | None) -> int:
    if window is None:
        return default_window(n)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise ConfigError(f"window must be an odd int >= 3, got {window!r}")
    if window < 3 or window % 2 == 0:
        raise ConfigError(f"window must be an odd int >= 3, got {window!r}")
    return min(int(window), _largest_odd_at_most(n))


def _median_filter(y: np.ndarray) -> np.ndarray:
    """Centred running median of ``MEDIAN_WINDOW`` (5) points; shrinking windows at edges.

    The median of 5 ignores any burst of at most 2 outliers, so an isolated loss spike (one
    bad batch) is removed before the least-squares fit below could spread it over the
    window. On a monotone stretch it returns every point unchanged; at a smooth minimum it
    lifts the lowest point to its neighbours' level, symmetrically, so nothing moves. The
    first and last points (windows of 1 and 3) keep the filter centred: no shift.
    """
    n, h = len(y), MEDIAN_WINDOW // 2
    if n < MEDIAN_WINDOW:
        return y.copy()
    out = y.copy()
    out[h : n - h] = np.median(sliding_window_view(y, MEDIAN_WINDOW), axis=1)
    for i in range(1, h):  # shrinking centred windows near each edge
        out[i] = np.median(y[: 2 * i + 1])
        out[n - 1 - i] = np.median(y[n - 1 - 2 * i :])
    return out


@functools.lru_cache(maxsize=32)
def _savgol_basis(w: int) -> tuple[np.ndarray, np.ndarray]:
    """The Vandermonde matrix ``V[t, k] = t**k`` of a ``w``-point window (``t = -h..h``) and
    its pseudo-inverse (``(order+1, w)``: coefficients = pinv @ window), read-only: the
    same for every curve smoothed with this window."""
    h = w // 2
    t = np.arange(-h, h + 1, dtype=np.float64)
    vander = np.vander(t, POLY_ORDER + 1, increasing=True)
    pinv = np.linalg.pinv(vander)
    vander.setflags(write=False)
    pinv.setflags(write=False)
    return vander, pinv


def _savgol(y: np.ndarray, w: int) -> np.ndarray:
    """Savitzky-Golay filter: value at each point of a least-squares local polynomial.

    Inside, ``s_i = sum_t c_t * y_{i+t}`` for ``t = -h..h`` (``h = w // 2``), where ``c`` is
    the first row of the pseudo-inverse of the Vandermonde matrix ``V[t, k] = t**k``. At the
    ``h`` points of each edge there is no centred window, so the polynomial fitted to the
    first (last) ``w`` points is evaluated there instead of padding with invented values.
    """
    n, h = len(y), w // 2
    vander, pinv = _savgol_basis(w)
    out = np.empty(n, dtype=np.float64)
    out[h : n - h] = sliding_window_view(y, w) @ pinv[0]
    if h:
        out[:h] = vander[:h] @ (pinv @ y[:w])
        out[n - h :] = vander[h + 1 :] @ (pinv @ y[n - w :])
    return out


def smooth(losses: np.ndarray, window: int | None = None) -> np.ndarray:
    """Lag-free smoothing of a loss curve: a running median of 5, then Savitzky-Golay.

    Between the two, ``clip_blowup`` compresses the divergence at the end of the sweep.

    Each output point is the value at that point of a quadratic fitted by least squares to
    the ``window`` points centred on it (edges: the fit to the first/last ``window``
    points), after a centred median of 5 has removed isolated spikes. A quadratic
    fit reproduces any quadratic exactly and a centred window has no lag, so minima and
    inflection points do not move; unlike fastai's EMA, which shifts them to larger LRs.

    ``window`` is an odd int ``>= 3`` (default: ``default_window(len(losses))``), capped at
    the largest odd number ``<= len(losses)``. The window counts samples, so it spans a
    fixed width in ``log10(lr)`` on an exponential ramp. Output has the input's length;
    fewer than 3 points are returned unchanged. Non-finite input raises ``CurveError``
    (drop those points first: a NaN would spread over the whole window).

    A line falling from 8 to 0 with one spike (40 at index 4) comes back without it:

    >>> smooth(np.array([8.0, 7, 6, 5, 40, 3, 2, 1, 0]), window=5).round(1).tolist()
    [7.9, 7.4, 6.7, 6.2, 4.7, 3.3, 1.9, 0.9, 0.1]
    """
    y = np.asarray(losses, dtype=np.float64)
    if y.ndim != 1:
        raise CurveError(f"losses must be 1-D, got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise CurveError("smooth needs finite losses; drop NaN/inf points first")
    w = _resolve_window(len(y), window)
    if len(y) < 3 or w < 3:
        return y.copy()
    if len(y) > REMEMBER_POINTS:
        return _smoothed(y, w)
    return _smooth_cached(y.tobytes(), w).copy()


#: ``smooth`` remembers curves of at most this many points (range tests: 100 to a few
#: thousand); a longer series is smoothed afresh, so the memory it holds stays small.
REMEMBER_POINTS = 20_000


def _smoothed(y: np.ndarray, w: int) -> np.ndarray:
    """The smoothing itself: running median, blow-up clipping, Savitzky-Golay."""
    return _savgol(clip_blowup(_median_filter(y)), w)


@functools.lru_cache(maxsize=16)
def _smooth_cached(data: bytes, w: int) -> np.ndarray:
    """``smooth`` of the float64 curve ``data`` with window ``w``, remembered: ``find`` reads
    one curve with four suggestion rules and the interval, each of which smooths it, and
    those repeats were a third of the range test's fixed cost on a small model."""
    return _smoothed(np.frombuffer(data, dtype=np.float64), w)


def clip_blowup(y: np.ndarray) -> np.ndarray:
    """Cap the divergence at the end of a sweep at ``start + max(start - min, |start|)``,
    with ``start`` the median of the first 10% of points.

    A blow-up to 100x the loss in the last steps would otherwise make the quadratic fit
    ring far below the true minimum (on a 2.3 -> 1.9 fall then a jump to 400: a smoothed
    minimum of -32 instead of 1.75) and move every rule that reads the floor or the
    slope. Only the blow-up's height is lost, and how far it rises carries no information
    about a good LR. The cap sits at least ``|start|`` above the start so that a gently
    rising curve keeps its shape.

    >>> clip_blowup(np.array([2.0, 2.0, 1.0, 0.5, 400.0])).tolist()
    [2.0, 2.0, 1.0, 0.5, 4.0]
    """
    start = float(np.median(y[: max(1, len(y) // 10)]))
    clipped: np.ndarray = np.minimum(y, start + max(start - float(y.min()), abs(start)))
    return clipped


def ema(losses: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """Debiased causal exponential moving average (the classic range-test smoothing).

    ``a_i = beta * a_{i-1} + (1 - beta) * x_i`` with ``a_{-1} = 0``, returned as
    ``a_i / (1 - beta**(i + 1))`` so early values are not pulled towards 0 (Adam's bias
    correction). It only looks back, so it suits the online stop rule; it lags, so it is
    not used to place suggestions. NaN/inf propagate (a NaN loss is itself a stop signal).

    >>> ema(np.array([1.0, 1.0, 4.0]), beta=0.5).round(3).tolist()
    [1.0, 1.0, 2.714]
    """
    if not 0.0 <= beta < 1.0:
        raise ConfigError(f"beta must be in [0, 1), got {beta!r}")
    x = np.asarray(losses, dtype=np.float64)
    if x.ndim != 1:
        raise CurveError(f"losses must be 1-D, got shape {x.shape}")
    out = np.empty_like(x)
    avg = 0.0
    for i, value in enumerate(x):
        avg = beta * avg + (1.0 - beta) * value
        out[i] = avg / (1.0 - beta ** (i + 1))
    return out


ROLLING_RESOLUTION = 100
"""The rolling median is evaluated every ``k = max(1, window // ROLLING_RESOLUTION)``
points and linearly interpolated in between: exact for windows under 200 points (curves
under 4,000 points in :func:`lrscout.training.diagnose`); on longer curves the window
moves by 1% of itself between two evaluations, far less than the features the measures
look for. The cost is
``O(n * ROLLING_RESOLUTION)`` instead of ``O(n * window)``: a 1,000,000-point curve
(window 50,000) takes about a second instead of minutes."""

_CHUNK_VALUES = 1 << 21  # values copied per vectorised batch of windows (16 MiB of float64)


def _window_medians(v: np.ndarray, lo: np.ndarray, hi: np.ndarray, window: int) -> np.ndarray:
    """``median(v[lo[j]:hi[j]])`` for every j, NaNs ignored (NaN when a window has none)."""
    out = np.full(lo.size, np.nan)
    nan_aware = bool(np.isnan(v).any())
    median = np.nanmedian if nan_aware else np.median
    full = np.flatnonzero(hi - lo == window)
    if full.size and v.size >= window:
        views = np.lib.stride_tricks.sliding_window_view(v, window)
        step = max(1, _CHUNK_VALUES // window)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window gives NaN
            for i in range(0, full.size, step):
                idx = full[i:i + step]
                out[idx] = median(views[lo[idx]], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for j in np.flatnonzero(hi - lo != window):
            if hi[j] > lo[j]:
                out[j] = median(v[lo[j]:hi[j]])
    return out


def rolling_median(values: np.ndarray, window: int, *, trailing: bool = False) -> np.ndarray:
    """Rolling median of ``values`` over ``window`` points, NaNs ignored.

    Centred by default: point ``i`` gets the median of ``values[i - window // 2 :
    i - window // 2 + window]``; ``trailing=True``: of ``values[i - window + 1 : i + 1]``
    (what a reader of a live curve sees). The window shrinks at the ends. Evaluated every
    ``max(1, window // ROLLING_RESOLUTION)`` points and interpolated in between (see
    :data:`ROLLING_RESOLUTION`), so a million points take about a second.

    >>> rolling_median(np.array([1.0, 9.0, 2.0, 3.0, 4.0]), 3).tolist()
    [5.0, 2.0, 3.0, 3.0, 3.5]
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if window < 1:
        raise CurveError(f"window must be >= 1, got {window}")
    if n == 0:
        return v.copy()
    k = max(1, window // ROLLING_RESOLUTION)
    at = np.arange(0, n, k)
    if at[-1] != n - 1:
        at = np.append(at, n - 1)
    first = at - (window - 1 if trailing else window // 2)
    lo, hi = np.maximum(first, 0), np.minimum(first + window, n)
    medians = _window_medians(v, lo, hi, window)
    if k == 1:
        return medians
    ok = np.isfinite(medians)
    if not ok.any():
        return np.full(n, np.nan)
    return np.asarray(np.interp(np.arange(n), at[ok], medians[ok]), dtype=np.float64)
