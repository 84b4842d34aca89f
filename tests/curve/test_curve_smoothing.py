"""smooth is lag-free (minimum and steepest point stay put); ema is causal and lags."""

from __future__ import annotations

import numpy as np
import pytest

from lrscout.curve import clip_blowup, default_window, ema, lr_ramp, smooth
from lrscout.errors import ConfigError, CurveError

X = np.log10(lr_ramp(1e-6, 10.0, 100))  # 7 decades, 0.0707 decade per step


def _bowl(x: np.ndarray) -> np.ndarray:
    """Descent centred at 1e-3 (steepest there), exponential rise: minimum near 1e-1.76."""
    return 1.0 + 2.0 / (1.0 + np.exp((x + 3.0) / 0.4)) + 0.5 * np.exp((x + 1.0) / 0.5)


def test_default_window() -> None:
    assert [default_window(n) for n in (100, 300, 64, 20, 5, 4, 3)] == [11, 31, 7, 5, 5, 3, 3]


def test_smooth_keeps_length_and_quadratics() -> None:
    y = 0.3 * (X + 2.0) ** 2 + 1.0
    s = smooth(y)
    assert s.shape == y.shape
    # only the lowest point is lifted by the running median (by one step's rise)
    assert np.max(np.abs(s - y)) < 0.3 * 0.0707**2 * 2


def test_smooth_is_lag_free_where_ema_is_not() -> None:
    y = _bowl(X)
    s, e = smooth(y), ema(y)
    i_min, i_steep = int(np.argmin(y)), int(np.argmin(np.gradient(y)))
    assert abs(int(np.argmin(s)) - i_min) <= 1
    assert abs(int(np.argmin(np.gradient(s))) - i_steep) <= 1
    # the classic EMA moves both to larger LRs by several grid steps
    assert int(np.argmin(e)) - i_min >= 5
    assert int(np.argmin(np.gradient(e))) - i_steep >= 5


def test_smooth_removes_a_spike_and_averages_noise() -> None:
    rng = np.random.default_rng(0)
    clean = _bowl(X)[:80]  # up to the steep exponential end, where a quadratic cannot follow
    noise = rng.normal(0.0, 0.05, clean.shape)
    assert np.std(smooth(clean + noise) - clean) < 0.55 * np.std(noise)
    spiked = clean + noise
    spiked[50] += 10.0  # 200 sigma
    s = smooth(spiked)
    assert np.max(np.abs(s - clean)) < 0.15
    assert np.std(s - clean) < 0.7 * np.std(noise)


def test_smooth_window_argument() -> None:
    y = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(smooth(y, window=101), y)  # capped at the data; a line stays
    np.testing.assert_allclose(smooth(np.array([2.0, 1.0])), [2.0, 1.0])
    for bad in (2, 4, 1, 0, 3.0):
        with pytest.raises(ConfigError, match="odd int"):
            smooth(y, window=bad)  # type: ignore[arg-type]


def test_smooth_rejects_non_finite() -> None:
    with pytest.raises(CurveError, match="finite"):
        smooth(np.array([1.0, 2.0, np.nan, 1.0, 0.5]))


def test_ema_closed_form() -> None:
    beta = 0.9
    x = np.array([2.0, 4.0, 8.0])
    a1 = 0.1 * 2.0
    a2 = 0.9 * a1 + 0.1 * 4.0
    a3 = 0.9 * a2 + 0.1 * 8.0
    expected = [a1 / (1 - 0.9), a2 / (1 - 0.9**2), a3 / (1 - 0.9**3)]
    np.testing.assert_allclose(ema(x, beta), expected, rtol=1e-12)
    np.testing.assert_allclose(ema(np.full(10, 3.0)), 3.0, rtol=1e-12)  # debiased: no pull to 0


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5])
def test_ema_rejects_bad_beta(beta: float) -> None:
    with pytest.raises(ConfigError, match="beta"):
        ema(np.ones(5), beta)


def test_blowup_is_capped_so_the_fit_does_not_ring() -> None:
    """A jump to 400 after a fall from 2.3 to 1.9: capped at start + max(fall, |start|)."""
    y = np.concatenate([np.full(40, 2.3), np.linspace(2.3, 1.9, 40), [3.0, 30.0, 400.0]])
    capped = clip_blowup(y)
    assert capped.max() == pytest.approx(2.3 + 2.3)
    np.testing.assert_array_equal(capped[:80], y[:80])
    assert smooth(y).min() > 1.7  # without the cap the quadratic fit dives far below 1.9
    assert _savgol_only(y).min() < -10.0


def _savgol_only(y: np.ndarray) -> np.ndarray:
    from lrscout.curve.smoothing import _median_filter, _savgol, default_window

    return _savgol(_median_filter(y), default_window(len(y)))


def test_smoothing_a_curve_again_gives_the_same_values_in_a_fresh_array() -> None:
    """``smooth`` remembers recent curves (find's rules all smooth the same one): a repeat
    must equal the first result bit for bit, and writing into one result must not reach
    the next, nor may a changed curve get the old answer."""
    from lrscout.curve.smoothing import _median_filter, _savgol

    rng = np.random.default_rng(3)
    y = 2.0 + np.cumsum(rng.normal(0.0, 0.05, 60))
    fresh = _savgol(clip_blowup(_median_filter(y)), 7)
    first = smooth(y, 7)
    first[:] = -1.0
    second = smooth(y, 7)
    assert np.array_equal(second, fresh) and second is not first
    y2 = y.copy()
    y2[30] += 1.0
    assert not np.array_equal(smooth(y2, 7), fresh)
    assert np.array_equal(smooth(y, 9), _savgol(clip_blowup(_median_filter(y)), 9))


def test_a_long_series_is_smoothed_without_being_remembered() -> None:
    """Only range-test-sized curves are remembered: a long loss series gives the same values
    and leaves the memory as it was."""
    from lrscout.curve import smoothing

    y = np.linspace(5.0, 1.0, smoothing.REMEMBER_POINTS + 1)
    before = smoothing._smooth_cached.cache_info().currsize
    out = smooth(y, 5)
    assert smoothing._smooth_cached.cache_info().currsize == before
    assert np.array_equal(out, smoothing._savgol(smoothing.clip_blowup(smoothing._median_filter(y)), 5))

