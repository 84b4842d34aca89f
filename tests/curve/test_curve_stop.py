"""diverged: NaN/inf, the factor rule, and bests at or below zero."""

from __future__ import annotations

import math

import pytest

from lrscout.curve import diverged
from lrscout.errors import ConfigError


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_or_smoothed_stops(bad: float) -> None:
    assert diverged(bad, 1.0, 1.0, 4.0)
    assert diverged(1.0, bad, 1.0, 4.0)


def test_factor_rule_for_positive_best() -> None:
    assert not diverged(3.9, 3.99, 1.0, 4.0)
    assert not diverged(9.0, 4.0, 1.0, 4.0)  # equal to factor * best: not yet
    assert diverged(9.0, 4.01, 1.0, 4.0)


def test_best_at_or_below_zero() -> None:
    # best = -2, factor 4: threshold -2 + 3 * 2 = 4 (factor * best = -8 would stop at once)
    assert not diverged(-1.0, -1.0, -2.0, 4.0)
    assert not diverged(3.0, 4.0, -2.0, 4.0)
    assert diverged(5.0, 4.5, -2.0, 4.0)
    assert diverged(0.1, 0.1, 0.0, 4.0)  # any rise above an exact-zero best


def test_no_best_yet_never_triggers_rise() -> None:
    assert not diverged(1e9, 1e9, math.inf, 4.0)
    assert not diverged(1.0, 1.0, math.nan, 4.0)


@pytest.mark.parametrize("factor", [1.0, 0.5, -3.0, math.nan, math.inf])
def test_factor_must_exceed_one(factor: float) -> None:
    with pytest.raises(ConfigError, match="factor must be"):
        diverged(1.0, 1.0, 1.0, factor)
