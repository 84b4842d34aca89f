"""Suggestions, recommendation and analysis on synthetic curves with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from lrscout.curve import (
    SUGGESTIONS,
    Recommendation,
    analyse,
    get_suggestion,
    lr_ramp,
    recommend,
    suggest_minimum,
    suggest_slide,
    suggest_steep,
    suggest_valley,
)
from lrscout.errors import ConfigError, CurveError

LRS = lr_ramp(1e-6, 10.0, 100)
X = np.log10(LRS)
STEP = 7.0 / 99.0  # decades per grid step


def range_test_curve(x: np.ndarray) -> np.ndarray:
    """Loss 3 -> 1 along a logistic centred at 1e-2 (steepest there), blow-up after 1e-0.5.

    Known answers: steepest descent at x = -2; minimum just before -0.5; the blow-up
    ``0.5 * (exp((x + 0.5) / 0.15) - 1)`` climbs 0.25 of the fall (0.5) at x = -0.396.
    """
    descent = 1.0 + 2.0 / (1.0 + np.exp((x + 2.0) / 0.25))
    return descent + 0.5 * (np.exp(np.clip(x + 0.5, 0.0, None) / 0.15) - 1.0)


def noisy(seed: int, sigma: float = 0.05, spike: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = range_test_curve(X) + rng.normal(0.0, sigma, X.shape)
    if spike:
        y[rng.integers(20, 75)] += 5.0
    return y


CLEAN = range_test_curve(X)
X_MIN = float(X[np.argmin(CLEAN)])


def test_registry_and_unknown_name() -> None:
    assert set(SUGGESTIONS) == {"steep", "minimum", "valley", "slide"}
    assert get_suggestion("steep") is suggest_steep
    listing = r"unknown suggestion 'fast'; choose one of: minimum, slide, steep, valley"
    with pytest.raises(ConfigError, match=listing):
        get_suggestion("fast")


def test_steep_is_the_inflection_of_the_descent() -> None:
    assert np.log10(suggest_steep(LRS, CLEAN)) == pytest.approx(-2.0, abs=0.1)
    for seed in range(3):
        assert np.log10(suggest_steep(LRS, noisy(seed, 0.02))) == pytest.approx(-2.0, abs=0.15)


def test_minimum_is_argmin_over_ten() -> None:
    assert np.log10(suggest_minimum(LRS, CLEAN)) == pytest.approx(X_MIN - 1.0, abs=STEP + 1e-9)


def test_valley_two_thirds_along_longest_descent() -> None:
    v_curve = 1.0 + np.abs(X + 2.0)  # falls in one run from x=-6 to x=-2
    expected = -6.0 + 2.0 / 3.0 * (-2.0 + 6.0)
    assert np.log10(suggest_valley(LRS, v_curve)) == pytest.approx(expected, abs=0.1)
    assert -2.5 < np.log10(suggest_valley(LRS, CLEAN)) < X_MIN


def test_slide_is_end_of_low_region_over_ten() -> None:
    assert np.log10(suggest_slide(LRS, CLEAN)) == pytest.approx(-1.5, abs=0.15)
    slow_rise = 1.0 + np.abs(X + 2.0)  # leaves the 0.1-of-fall band (0.4) at x=-1.6
    assert np.log10(suggest_slide(LRS, slow_rise)) == pytest.approx(-2.6, abs=0.1)


@pytest.mark.parametrize("name", sorted(SUGGESTIONS))
def test_suggestions_need_a_descent(name: str) -> None:
    rising = 1.0 + 0.1 * (X + 6.0)
    if name == "minimum":
        assert get_suggestion(name)(LRS, rising) == pytest.approx(LRS[0] / 10)
    else:
        with pytest.raises(CurveError):
            get_suggestion(name)(LRS, rising)


def test_recommendation_on_known_curve() -> None:
    rec = recommend(LRS, CLEAN)
    lo, lr, hi = np.log10([rec.low, rec.lr, rec.high])
    assert rec.rule.startswith("descent")
    assert rec.onset is not None and np.log10(rec.onset) == pytest.approx(-0.396, abs=0.1)
    assert lo < lr < hi < X_MIN < np.log10(rec.onset)
    # the centre of the fall, estimated twice: the steepest point and the half-way point
    # are both the logistic's centre, x = -2; the interval reaches 0.5 decade beyond them,
    # capped where the loss reaches its floor (within 10% of the fall of 2, i.e. 0.2, at
    # x = -2 + 0.25 ln 9; the smoothed floor starts ~0.1 decade later)
    floor_start = -2.0 + 0.25 * np.log(9.0)
    steep = np.log10(suggest_steep(LRS, CLEAN))
    assert lr == pytest.approx((steep - 2.0) / 2, abs=0.05)
    assert lr == pytest.approx(-2.0, abs=0.1)
    assert lo == pytest.approx(min(steep, -2.0) - 0.5, abs=0.05)
    assert hi == pytest.approx(min(max(steep, -2.0) + 0.5, floor_start), abs=0.15)
    assert 1.0 <= X_MIN - lr <= 2.0  # the middle of the descent, well below the minimum


def test_recommendation_robust_to_noise_and_spike() -> None:
    ref = np.log10(recommend(LRS, CLEAN).lr)
    for seed in range(5):
        assert abs(np.log10(recommend(LRS, noisy(seed)).lr) - ref) < 0.15
    spiked = CLEAN.copy()
    spiked[45] += 10.0
    assert abs(np.log10(recommend(LRS, spiked).lr) - ref) < 0.1


def test_flat_curve() -> None:
    y = 2.3 + np.random.default_rng(0).normal(0.0, 0.05, X.shape)
    rec = recommend(LRS, y)
    assert rec.rule.startswith("flat") and rec.onset is None
    assert rec.low == LRS[0] and rec.high == pytest.approx(LRS[-1] / 10)
    assert rec.lr == pytest.approx(np.sqrt(rec.low * rec.high))


def test_curve_that_only_rises() -> None:
    y = 2.3 + 0.1 * np.exp((X + 6.0) / 1.0)
    rec = recommend(LRS, y)
    assert rec.rule.startswith("flat") and rec.onset is not None
    assert rec.low <= rec.lr <= rec.high < rec.onset
    assert np.log10(rec.onset / rec.lr) == pytest.approx(1.0)  # a decade below where it turns up


def test_flat_curve_that_blows_up_gets_a_decade_below_the_onset() -> None:
    """No descent above the noise, then divergence (a BatchNorm ResNet on CIFAR in 100 steps):
    the onset is the one landmark; the sweep's start is arbitrary and must not pull the LR down."""
    rng = np.random.default_rng(1)
    y = 2.31 + rng.normal(0.0, 0.03, X.shape) + np.where(X > -1.5, 3.0 * (X + 1.5) ** 2, 0.0)
    for start in (0, 20, 40):  # the same curve seen from sweeps that start lower or higher
        rec = recommend(LRS[start:], y[start:])
        assert rec.rule.startswith("flat") and rec.onset is not None
        assert -1.5 < np.log10(rec.onset) < -0.9
        assert np.log10(rec.lr) == pytest.approx(np.log10(rec.onset) - 1.0)


def test_curve_that_only_descends() -> None:
    y = 3.0 - 2.0 / (1.0 + np.exp(-(X - 0.5) / 0.6))  # still falling at 10
    rec = recommend(LRS, y)
    assert rec.rule.startswith("no-minimum") and rec.onset is None
    assert rec.high < LRS[-1]
    assert np.log10(rec.lr) == pytest.approx(np.log10(LRS[-1]) - 0.5, abs=1e-9)


def test_non_finite_points_never_reach_a_rule() -> None:
    y = CLEAN.copy()
    y[90:] = np.nan
    y[93] = np.inf
    y[10] = np.nan
    keep = np.isfinite(y)
    a = analyse(LRS, y)
    np.testing.assert_array_equal(a.lrs, LRS[keep])
    np.testing.assert_array_equal(a.losses, y[keep])
    assert a.recommendation == recommend(LRS[keep], y[keep])
    assert a.suggestions == {k: fn(LRS[keep], y[keep]) for k, fn in SUGGESTIONS.items()}
    assert not a.smoothed.flags.writeable


def test_analyse_omits_rules_that_do_not_apply() -> None:
    a = analyse(LRS, np.full(X.shape, 2.3))
    assert set(a.suggestions) == {"minimum"}
    assert a.recommendation.rule.startswith("flat")


def test_linear_ramp_curve() -> None:
    lrs = lr_ramp(1e-3, 1.0, 200, mode="linear")
    rise = np.exp(np.clip(lrs - 0.8, 0.0, None) / 0.05) - 1.0
    y = 1.0 + 2.0 / (1.0 + np.exp((lrs - 0.3) / 0.05)) + rise
    a = analyse(lrs, y)
    assert a.suggestions["steep"] == pytest.approx(0.3, abs=0.02)
    rec = a.recommendation
    assert rec.low <= rec.lr <= rec.high < lrs[int(np.argmin(y))]


@pytest.mark.parametrize(
    "lrs, losses, fragment",
    [
        (LRS[:4], CLEAN[:4], "at least 5 finite"),
        (LRS[:8], np.r_[CLEAN[:4], [np.nan] * 4], "got 4 of 8"),
        (LRS[::-1], CLEAN, "increasing"),
        (LRS[:10], CLEAN[:9], "one length"),
        (np.r_[0.0, LRS[1:10]], CLEAN[:10], "> 0"),
    ],
)
def test_bad_curves_raise(lrs: np.ndarray, losses: np.ndarray, fragment: str) -> None:
    for fn in (*SUGGESTIONS.values(), recommend, analyse):
        with pytest.raises(CurveError, match=fragment):
            fn(lrs, losses)


def test_recommendation_dict_round_trip_and_invariant() -> None:
    rec = recommend(LRS, CLEAN)
    assert Recommendation.from_dict(rec.to_dict()) == rec
    with pytest.raises(ConfigError, match="low <= lr <= high"):
        Recommendation(lr=1.0, low=0.1, high=0.5, onset=None, rule="x")
