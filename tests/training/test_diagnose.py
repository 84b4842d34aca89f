"""Diagnosis maths on curves with a known answer, and its result type."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from lrscout.errors import CurveError, DataError
from lrscout.training import Diagnosis, diagnose
from lrscout.training.diagnosis import curve_measures, rolling_median

N = 300
STEPS = np.arange(N)


def noisy(curve: np.ndarray, rel: float = 0.03, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return curve * (1 + rel * rng.standard_normal(curve.size))


def test_measures_on_a_clean_exponential() -> None:
    loss = 2.0 * np.exp(-STEPS / 60) + 0.1
    m = curve_measures(loss)
    assert m["start"] == pytest.approx(np.median(loss[:3]))
    assert m["progress"] == pytest.approx((m["start"] - m["best"]) / m["start"])
    assert m["retained"] == pytest.approx(1.0, abs=0.02)
    assert m["regression"] == pytest.approx(0.0, abs=1e-9)  # never climbs back


def test_rolling_median_is_centred_and_shrinks_at_the_ends() -> None:
    assert rolling_median(np.array([1.0, 9.0, 2.0, 3.0, 4.0]), 3).tolist() == [5.0, 2.0, 3.0, 3.0, 3.5]


@pytest.mark.parametrize(
    "name, loss, verdict, factor",
    [
        ("healthy: decays to the end", noisy(2.3 * np.exp(-STEPS / 120) + 0.05), "healthy", 1.0),
        ("stalled: flat", noisy(np.full(N, 2.3), 0.01), "stalled", 10.0),
        ("stalled: slow", noisy(2.3 - 0.3 * STEPS / N, 0.01), "stalled", 3.0),
        ("plateaued: fast then flat", noisy(2.0 * np.exp(-STEPS / 15) + 0.3, 0.02), "plateaued", 1.0),
        ("diverged: ends above start", noisy(np.linspace(2.3, 6.0, N), 0.02), "diverged", 0.1),
        ("diverged: progress lost", noisy(np.concatenate([np.linspace(2.3, 0.5, 150), np.full(150, 2.3)])),
         "diverged", 0.1),
        ("unstable: climbs back mid-run",
         noisy(np.concatenate([np.linspace(2.3, 0.4, 100), np.linspace(0.4, 1.4, 50), np.linspace(1.4, 0.5, 150)])),
         "unstable", 0.3),
    ],
)
def test_verdicts_on_known_shapes(name: str, loss: np.ndarray, verdict: str, factor: float) -> None:
    d = diagnose(STEPS, loss)
    assert d.verdict == verdict, (name, d.evidence)
    assert d.lr_factor == factor
    assert d.message


def test_any_nonfinite_loss_is_diverged_even_when_few_points_remain() -> None:
    d = diagnose([0, 1, 2, 3], [2.3, 8.0, math.inf, math.nan])
    assert d.verdict == "diverged" and d.lr_factor == 0.1
    assert d.evidence["first_nonfinite_step"] == 2.0 and d.evidence["nonfinite"] == 2


def test_too_short_or_malformed_curves_raise() -> None:
    with pytest.raises(CurveError, match="at least 8"):
        diagnose(range(5), [2.3, 2.2, 2.1, 2.0, 1.9])
    with pytest.raises(CurveError, match="same length"):
        diagnose(range(10), [1.0] * 9)
    with pytest.raises(CurveError, match="empty"):
        diagnose([], [])


def test_diagnosis_json_round_trip_and_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loss = noisy(2.0 * np.exp(-STEPS / 15) + 0.3, 0.02)
    d = diagnose(STEPS, loss)
    data = json.loads(json.dumps(d.to_json(), allow_nan=False))
    assert data["version"] == 1 and data["verdict"] == "plateaued"
    back = Diagnosis.from_json(data)
    assert back.verdict == d.verdict and back.evidence == d.evidence and back.losses == d.losses
    with pytest.raises(DataError, match="version"):
        Diagnosis.from_json({**data, "version": 99})
    ax = d.plot()
    assert ax.get_title().startswith("plateaued")


def _exact_rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.concatenate([np.full(half, np.nan), values, np.full(window - 1 - half, np.nan)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows
        return np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, window), axis=1)


@pytest.mark.parametrize("window", [1, 2, 3, 8, 57, 199])
def test_rolling_median_is_exact_for_windows_under_200(window: int) -> None:
    x = noisy(2.3 * np.exp(-np.arange(1000) / 200) + 0.1, 0.2)
    np.testing.assert_array_equal(rolling_median(x, window), _exact_rolling_median(x, window))
    x[::7] = np.nan  # NaNs are ignored, as nanmedian does
    np.testing.assert_array_equal(rolling_median(x, window), _exact_rolling_median(x, window))


def test_rolling_median_of_a_long_curve_follows_the_exact_one() -> None:
    n = 12_000  # window 600: evaluated every 6 points and interpolated
    x = noisy(2.3 * np.exp(-np.arange(n) / 2400) + 0.1, 0.1)
    fast, exact = rolling_median(x, n // 20), _exact_rolling_median(x, n // 20)
    assert np.max(np.abs(fast - exact)) < 0.002 * np.max(exact)
    assert curve_measures(x)["best"] == pytest.approx(float(np.min(exact)), rel=5e-3)


@pytest.mark.parametrize("shape", ["plateaued", "unstable"])
def test_a_million_point_curve_gets_its_verdict(shape: str) -> None:
    """What a long TensorBoard / W&B export looks like; the old O(n * n/20) median took minutes
    here (timings: benchmarks/diagnose_speed.py)."""
    n = 1_000_000
    t = np.arange(n) / n  # run time, 0..1
    curve = {
        "plateaued": 2.0 * np.exp(-t * 20) + 0.3,
        "unstable": np.interp(t, [0, 0.33, 0.5, 1], [2.3, 0.4, 1.4, 0.5]),
    }[shape]
    d = diagnose(np.arange(n), noisy(curve, 0.05))
    assert d.verdict == shape, d.evidence
    assert d.evidence["points"] == n and len(d.losses) == n
