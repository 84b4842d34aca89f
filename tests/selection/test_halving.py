"""Successive-halving bookkeeping: plans from the closed form, ranking, promotion."""

from __future__ import annotations

import pytest

from lrscout.errors import ConfigError
from lrscout.selection.halving import Outcome, Plan, Rung, plan_halving, promote, rank, short_epochs


def sizes(plan: Plan) -> list[tuple[int, int]]:
    return [(r.epochs, r.size) for r in plan.rungs]


@pytest.mark.parametrize(
    "budget, overhead, continued, expected",
    [
        # digits: the range test costs ~0.44 runs. A constant LR continues: rung 0 is the
        # first half of the run (0.5 runs a trial), a finalist goes on for the other half.
        (3.5, 0.44, True, [(5, 4), (10, 2)]),
        (4.0, 0.44, True, [(5, 5), (10, 2)]),
        (3.0, 0.44, True, [(5, 4), (10, 1)]),  # two finalists need 4 short trials: 3.0 > 2.56
        (6.0, 0.44, True, [(5, 6), (10, 3)]),  # at most the best half of six go on
        # a decaying schedule is compressed into a third of the run; a finalist restarts (1 run)
        (4.0, 0.44, False, [(3, 5), (10, 2)]),
        (3.5, 0.44, False, [(3, 6), (10, 1)]),
        # a big dataset: the range test is ~free
        (3.5, 0.01, True, [(5, 4), (10, 2)]),
        (3.0, 0.01, False, [(3, 6), (10, 1)]),
    ],
)
def test_plan_matches_the_closed_form(budget: float, overhead: float, continued: bool,
                                      expected: list[tuple[int, int]]) -> None:
    plan = plan_halving(6, 10, budget, overhead=overhead, continued=continued)
    assert sizes(plan) == expected
    assert plan.cost_runs + overhead <= budget + 1e-9


def test_costs_per_rung() -> None:
    plan = plan_halving(6, 10, 3.5, overhead=0.44, continued=True)
    assert (plan.start_epoch(0), plan.trial_epochs(0)) == (0, 5)
    assert (plan.start_epoch(1), plan.trial_epochs(1)) == (5, 5)
    assert plan.cost_runs == pytest.approx((4 * 5 + 2 * 5) / 10)
    restarted = plan_halving(6, 10, 4.0, overhead=0.44, continued=False)
    assert restarted.start_epoch(1) == 0 and restarted.trial_epochs(1) == 10
    assert Plan.from_json(plan.to_json()) == plan


def test_short_epochs_is_a_third_within_bounds() -> None:
    assert [short_epochs(e) for e in (2, 3, 5, 10, 30)] == [1, 1, 2, 3, 10]
    assert [short_epochs(e, 0.5) for e in (2, 3, 5, 10, 30)] == [1, 2, 3, 5, 15]


def test_one_epoch_protocol_is_one_rung_of_full_runs() -> None:
    plan = plan_halving(6, 1, 3.5, overhead=0.5)
    assert sizes(plan) == [(1, 3)]


def test_fewer_ladder_points_cap_the_plan() -> None:
    assert sizes(plan_halving(3, 10, 10.0)) == [(5, 3), (10, 2)]


def test_too_small_budget_says_what_it_needs() -> None:
    with pytest.raises(ConfigError, match="too small.*need 1.94"):
        plan_halving(6, 10, 1.5, overhead=0.44)
    with pytest.raises(ConfigError, match="budget must be a positive"):
        plan_halving(6, 10, float("nan"))
    with pytest.raises(ConfigError):
        Plan((Rung(3, 2), Rung(5, 1)), 10, True)  # last rung is not the full protocol


def test_rank_prefers_accuracy_then_loss_then_lower_lr_and_puts_collapsed_last() -> None:
    outcomes = [
        Outcome(0.1, 0.95, 0.20),
        Outcome(0.3, 0.97, None, collapsed=True),  # best accuracy, but collapsed
        Outcome(0.05, 0.95, 0.15),  # ties 0.1 on accuracy, lower loss
        Outcome(0.02, 0.95, 0.15),  # exact tie with 0.05: the lower LR wins
        Outcome(0.2, 0.96, None),  # the best accuracy leads even without a finite loss
    ]
    assert rank(outcomes) == [4, 3, 2, 0, 1]


def test_promote_never_advances_collapsed_trials() -> None:
    outcomes = [Outcome(0.1, 0.9, 0.3), Outcome(1.0, 0.99, None, collapsed=True), Outcome(0.2, 0.8, 0.5)]
    assert promote(outcomes, 2) == [0, 2]
    assert promote(outcomes, 5) == [0, 2]
    assert promote([Outcome(1.0, 0.1, None, collapsed=True)], 1) == []
    with pytest.raises(ConfigError):
        promote(outcomes, -1)


def test_rank_sum_needs_both_accuracy_and_loss() -> None:
    """On a small validation set a one-image accuracy lead is noise: the trial second on
    accuracy but first on loss beats one first on accuracy and last on loss."""
    outcomes = [
        Outcome(0.01, 0.920, 0.40),  # acc rank 1, loss rank 3 -> 4
        Outcome(0.02, 0.913, 0.25),  # acc rank 2, loss rank 1 -> 3
        Outcome(0.03, 0.900, 0.30),  # acc rank 3, loss rank 2 -> 5
        Outcome(0.04, 0.990, 0.10, collapsed=True),
    ]
    assert promote(outcomes, 4) == [0, 1, 2]  # by accuracy
    assert promote(outcomes, 4, by="rank_sum") == [1, 0, 2]
    assert promote(outcomes, 1, by="rank_sum") == [1]


def test_rank_sum_ties_go_to_the_lower_loss_then_lower_lr() -> None:
    split = [Outcome(0.1, 0.95, 0.30), Outcome(0.2, 0.94, 0.20)]  # the two metrics disagree
    assert promote(split, 2, by="rank_sum") == [1, 0]
    same = [Outcome(0.2, 0.94, 0.20), Outcome(0.1, 0.94, 0.20)]  # identical scores: safer LR
    assert promote(same, 2, by="rank_sum") == [1, 0]
    assert promote([Outcome(0.1, 0.9, None), Outcome(0.2, 0.8, 0.5)], 2, by="rank_sum") == [1, 0]
    with pytest.raises(ConfigError, match="unknown ranking"):
        promote(split, 1, by="loss")
