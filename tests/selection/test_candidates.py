"""Candidate ladder: named points of the rule, spacing, clamps, bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from lrscout.errors import ConfigError
from lrscout.selection.candidates import candidate_lrs, min_loss_lr, window_start


def decades(lrs: tuple[float, ...]) -> np.ndarray:
    return np.diff(np.log10(lrs))


def test_ladder_hangs_one_step_above_the_onset_with_three_per_decade() -> None:
    lrs = candidate_lrs(0.001, 0.004, steep=0.003, onset=0.012)
    assert len(lrs) == 6
    assert lrs[-1] == pytest.approx(0.012 * 10 ** (1 / 3))
    assert np.allclose(decades(lrs), 0.3)  # 1.5 decades in 5 steps
    assert lrs == tuple(sorted(lrs))


def test_points_lie_above_the_steepest_point_and_cover_the_interval() -> None:
    lrs = candidate_lrs(0.001, 0.004, steep=0.003, onset=0.012)
    assert sum(lr > 0.003 for lr in lrs) >= 2
    assert lrs[0] <= 0.001


def test_without_onset_the_top_is_the_min_loss_lr_raised_above_steep() -> None:
    assert candidate_lrs(0.01, 0.05, steep=0.02, min_loss=0.2)[-1] == pytest.approx(0.2)
    # min-loss below steep * 10**(1/3): the top is raised so one point sits above steep
    assert candidate_lrs(0.01, 0.05, steep=0.04, min_loss=0.05)[-1] == pytest.approx(0.04 * 10 ** (1 / 3))
    # nothing but the interval: its high end
    assert candidate_lrs(0.01, 0.05)[-1] == pytest.approx(0.05)


def test_span_is_clamped_between_min_and_max_decades() -> None:
    narrow = candidate_lrs(0.1, 0.1, onset=0.1, above_onset=0)  # degenerate interval
    assert math.log10(narrow[-1] / narrow[0]) == pytest.approx(1.5)
    wide = candidate_lrs(1e-6, 0.1, onset=0.1, above_onset=0)  # interval five decades wide
    assert math.log10(wide[-1] / wide[0]) == pytest.approx(2.5)
    assert len(wide) == 6  # thinned to max_count, not followed down


def test_count_limits_respace_the_same_span() -> None:
    six = candidate_lrs(0.001, 0.004, steep=0.003, onset=0.012)
    four = candidate_lrs(0.001, 0.004, steep=0.003, onset=0.012, max_count=4)
    assert len(four) == 4 and four[0] == pytest.approx(six[0]) and four[-1] == pytest.approx(six[-1])
    assert candidate_lrs(0.001, 0.004, onset=0.012, min_count=1, max_count=1) == pytest.approx((0.012 * 10 ** (1 / 3),))
    assert len(candidate_lrs(0.001, 0.004, onset=0.012, per_decade=6, max_count=20)) == 10


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0.0, 0.1), {}),
        ((0.1, 0.01), {}),
        ((0.01, 0.1), {"onset": float("nan")}),
        ((0.01, 0.1), {"per_decade": 0}),
        ((0.01, 0.1), {"min_span": 3.0, "max_span": 2.0}),
        ((0.01, 0.1), {"min_count": 3, "max_count": 2}),
    ],
)
def test_bad_input_raises_config_error(args: tuple[float, float], kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        candidate_lrs(*args, **kwargs)


def test_min_loss_lr_reads_the_smoothed_minimum() -> None:
    assert min_loss_lr([0.1, 0.2, 0.3], [3.0, 1.0, 2.0]) == 0.2
    assert min_loss_lr([0.1, 0.2], [float("nan"), 1.0]) == 0.2
    assert min_loss_lr([], []) is None


def test_the_window_drops_from_the_bottom_and_keeps_the_spacing() -> None:
    ladder = candidate_lrs(0.001, 0.004, steep=0.003, onset=0.012)
    assert len(ladder) == 6
    top = ladder[window_start(len(ladder), 3):]
    assert top == ladder[3:] and top[-1] == ladder[-1]
    assert top[1] / top[0] == pytest.approx(ladder[1] / ladder[0])
    assert ladder[window_start(len(ladder), 10):] == ladder
    with pytest.raises(ConfigError):
        window_start(len(ladder), 0)


def _find(low: float, high: float, onset: float | None, num_iter: int) -> Any:
    from lrscout.results import FindResult

    lrs = tuple(float(x) for x in np.geomspace(1e-5, 1.0, 20))
    return FindResult(lr=low, interval=(low, high), suggestions={"steep": low}, history_lr=lrs,
                      history_loss=tuple(1.0 for _ in lrs), smoothed=tuple(1.0 for _ in lrs), onset=onset,
                      rule="test", stopped_early=False, config={"num_iter": num_iter})


def test_the_horizon_plan_gets_a_ladder_a_third_of_a_decade_apart() -> None:
    """A wide interval (2.5 decades) spreads the usual six candidates half a decade apart;
    when the plan takes the horizon correction (a continued plan with one finalist) the
    ladder keeps the top and a 10**(1/3) spacing, so one step down is the measured factor."""
    from lrscout.selection.halving import is_verified
    from lrscout.selection.selection import VERIFIED_LOWER, candidates_for, ladder_and_plan, window_shift

    find = _find(1e-4, 1e-2, onset=0.03, num_iter=100)  # the usual sweep: the top a step above the onset
    usual = candidates_for(find)
    assert len(usual) == 6 and usual[-1] == pytest.approx(0.03 * 10 ** (1 / 3))
    assert usual[1] / usual[0] == pytest.approx(10 ** 0.5, rel=0.05)
    ladder, plan = ladder_and_plan(find, 200, 2.5, overhead=0.5, continued=True, quantum=1)
    assert [(r.length, r.size) for r in plan.rungs] == [(100, 3), (200, 1)]  # the horizon case
    assert ladder[-1] == pytest.approx(usual[-1]) and len(ladder) == 6
    assert all(b / a == pytest.approx(10 ** (1 / 3)) for a, b in zip(ladder, ladder[1:]))
    assert window_shift(find, plan) == 0
    # a restarted plan (a decaying schedule) keeps the usual ladder
    same, restarted = ladder_and_plan(find, 200, 2.5, overhead=0.5, continued=False, quantum=1)
    assert not restarted.continued and same == usual
    # so does a plan with two finalists (a larger budget)
    wide, two = ladder_and_plan(find, 200, 4.0, overhead=0.5, continued=True, quantum=1)
    assert two.rungs[-1].size >= 2 and not is_verified(two) and wide == usual


def test_after_a_short_sweep_the_budget_buys_verified_finalists() -> None:
    """A 10-step protocol: the 20-step sweep's ladder hangs from the onset at a 1/3-decade
    spacing, and the horizon plan's budget (3 half runs + 1 finalist = 2 runs) goes to two
    candidates trained to the end: the ladder's 3rd and 4th points from the top."""
    from lrscout.selection.candidates import window_start
    from lrscout.selection.halving import is_verified
    from lrscout.selection.selection import VERIFIED_LOWER, ladder_and_plan, window_shift

    find = _find(1e-4, 1e-2, onset=0.03, num_iter=20)
    ladder, plan = ladder_and_plan(find, 10, 2.5, overhead=0.45, continued=True, quantum=1)
    assert is_verified(plan) and [(r.length, r.size) for r in plan.rungs] == [(5, 2), (10, 2)]
    assert plan.cost_runs == pytest.approx(2.0)
    assert ladder[-1] == pytest.approx(0.03) and all(b / a == pytest.approx(10 ** (1 / 3))
                                                      for a, b in zip(ladder, ladder[1:]))
    first = window_start(len(ladder), 2, lower=window_shift(find, plan))
    assert window_shift(find, plan) == VERIFIED_LOWER
    assert [ladder[i] for i in (first, first + 1)] == pytest.approx([0.003, 0.03 / 10 ** (2 / 3)])
    # each further run of budget buys one more verified finalist, reaching further down
    ladder3, three = ladder_and_plan(find, 10, 3.5, overhead=0.45, continued=True, quantum=1)
    assert [(r.length, r.size) for r in three.rungs] == [(5, 3), (10, 3)] and three.cost_runs == pytest.approx(3.0)
    first = window_start(len(ladder3), 3, lower=window_shift(find, three))
    assert ladder3[first:first + 3] == pytest.approx([0.03 / 10 ** (4 / 3), 0.003, 0.03 / 10 ** (2 / 3)])
    # a restarted plan (a decaying schedule) is not continued: ordinary halving
    _, restarted = ladder_and_plan(find, 10, 2.5, overhead=0.45, continued=False, quantum=1)
    assert not is_verified(restarted)
    # a range test that leaves less than two runs keeps the horizon plan of one finalist
    _, tight = ladder_and_plan(find, 10, 2.5, overhead=0.55, continued=True, quantum=1)
    assert not is_verified(tight) and tight.rungs[-1].size == 1
