"""Successive-halving bookkeeping: plans from the closed form, range-test sizing, budget
refusals, ranking, promotion. Lengths are optimizer steps (digits at batch 64: 20 steps an
epoch, so a 10-epoch protocol is 200 steps)."""

from __future__ import annotations

import math

import pytest

from lrscout.errors import ConfigError
import torch

from lrscout.protocol import chance_level, label_stats, prior_loss
from lrscout.selection.halving import (Outcome, Plan, RangeTestPlan, Rung, Trace, check_budget, collapse_note,
                                       plan_halving, plan_range_test, promote, rank, robust_rank, short_length)


def sizes(plan: Plan) -> list[tuple[int, int]]:
    return [(r.length, r.size) for r in plan.rungs]


@pytest.mark.parametrize(
    "budget, overhead, continued, expected",
    [
        # digits: the range test costs ~0.44 runs. A constant LR continues: rung 0 is the
        # first half of the run (0.5 runs a trial), a finalist goes on for the other half.
        (3.5, 0.44, True, [(100, 4), (200, 2)]),
        (4.0, 0.44, True, [(100, 5), (200, 2)]),
        (3.0, 0.44, True, [(100, 4), (200, 1)]),  # two finalists need 4 short trials: 3.0 > 2.56
        (6.0, 0.44, True, [(100, 6), (200, 3)]),  # at most the best half of six go on
        # a decaying schedule is compressed into a third of the run; a finalist restarts (1 run)
        (4.0, 0.44, False, [(66, 4), (200, 2)]),  # 66 steps: a third of 200, rounded down
        (3.5, 0.44, False, [(66, 6), (200, 1)]),
        # a big dataset: the range test is ~free
        (3.5, 0.01, True, [(100, 4), (200, 2)]),
        (3.0, 0.01, False, [(66, 6), (200, 1)]),
    ],
)
def test_plan_matches_the_closed_form(budget: float, overhead: float, continued: bool,
                                      expected: list[tuple[int, int]]) -> None:
    plan = plan_halving(6, 200, budget, overhead=overhead, continued=continued)
    assert sizes(plan) == expected
    assert plan.cost_runs + overhead <= budget + 1e-9


def test_costs_per_rung() -> None:
    plan = plan_halving(6, 200, 3.5, overhead=0.44, continued=True)
    assert (plan.start(0), plan.trial_length(0)) == (0, 100)
    assert (plan.start(1), plan.trial_length(1)) == (100, 100)
    assert plan.cost_runs == pytest.approx((4 * 100 + 2 * 100) / 200)
    restarted = plan_halving(6, 200, 4.0, overhead=0.44, continued=False)
    assert restarted.start(1) == 0 and restarted.trial_length(1) == 200
    assert Plan.from_json(plan.to_json()) == plan


def test_plans_written_in_epochs_still_load() -> None:
    old = {"rungs": [{"epochs": 5, "size": 4}, {"epochs": 10, "size": 2}], "epochs": 10, "continued": True}
    assert Plan.from_json(old) == Plan((Rung(5, 4), Rung(10, 2)), 10, True, unit="epochs")


def test_short_length_is_a_fraction_within_bounds() -> None:
    assert [short_length(n) for n in (2, 3, 5, 10, 30, 200)] == [1, 1, 1, 3, 10, 66]  # rounded down
    assert [short_length(n, 0.5) for n in (2, 3, 5, 10, 30, 133)] == [1, 1, 2, 5, 15, 66]
    # whole epochs (20 steps) for a per-epoch schedule, unless the run is under two epochs
    assert [short_length(n, 0.5, quantum=20) for n in (40, 60, 200, 30)] == [20, 20, 100, 15]
    with pytest.raises(ConfigError, match="nothing to shorten"):
        short_length(1)


@pytest.mark.parametrize(
    "steps, budget, continued, expected",
    [
        # the short protocols on digits (1,275 training images)
        (10, 2.5, True, [(5, 3), (10, 1)]),  # 1 epoch of batch 128: 0.5 run for a 20-step sweep of batch 32
        (10, 2.5, False, [(3, 3), (10, 1)]),  # the same, a decaying schedule: 3 compressed steps a trial
        (133, 2.5, True, [(66, 3), (133, 1)]),  # MNIST 10k, 1 epoch of batch 64
        (20000, 2.5, True, [(10000, 3), (20000, 1)]),  # hundreds of epochs: the sweep is ~free
        (20000, 3.5, True, [(10000, 4), (20000, 2)]),
    ],
)
def test_short_protocols_plan_in_steps(steps: int, budget: float, continued: bool,
                                       expected: list[tuple[int, int]]) -> None:
    sweep = plan_range_test(steps, 128, budget)
    plan = plan_halving(6, steps, budget, overhead=sweep.cost_runs, continued=continued)
    assert sizes(plan) == expected
    assert sweep.cost_runs + plan.cost_runs <= budget + 1e-9


@pytest.mark.parametrize(
    "steps, batch, budget, expected",
    [
        (200, 64, 2.5, RangeTestPlan(100, 64, 0.5)),  # digits 10 epochs: the usual 100-step sweep
        (400, 64, 2.5, RangeTestPlan(100, 64, 0.25)),  # MNIST 10k, 3 epochs
        (120, 64, 2.5, RangeTestPlan(60, 64, 0.5)),  # 6 epochs of digits: a shorter sweep
        (10, 128, 2.5, RangeTestPlan(20, 32, 0.5)),  # 1 epoch of batch 128: 20 steps of 32 images
        (10, 256, 2.5, RangeTestPlan(20, 64, 0.5)),  # 2 epochs of batch 256 (5 steps each)
        (3, 16, 2.5, RangeTestPlan(20, 8, 20 * 8 / (3 * 16))),  # nothing smaller: over its share
    ],
)
def test_range_test_fits_the_budget(steps: int, batch: int, budget: float, expected: RangeTestPlan) -> None:
    got = plan_range_test(steps, batch, budget)
    assert (got.steps, got.batch_size) == (expected.steps, expected.batch_size)
    assert got.start_lr == (None if got.steps > 50 else 1e-5)  # a short sweep skips the tiny LRs
    assert got.cost_runs == pytest.approx(expected.cost_runs)


def test_one_step_protocol_is_one_rung_of_full_runs() -> None:
    plan = plan_halving(6, 1, 3.5, overhead=0.5)
    assert sizes(plan) == [(1, 3)]


def test_fewer_ladder_points_cap_the_plan() -> None:
    assert sizes(plan_halving(3, 200, 10.0)) == [(100, 3), (200, 2)]


def test_too_small_budget_says_what_it_needs() -> None:
    with pytest.raises(ConfigError, match=r"too small.*need 1.94; use budget >= 2"):
        plan_halving(6, 200, 1.5, overhead=0.44)
    with pytest.raises(ConfigError, match="budget must be a positive"):
        plan_halving(6, 200, float("nan"))
    with pytest.raises(ConfigError):
        Plan((Rung(60, 2), Rung(100, 1)), 200, True)  # last rung is not the full protocol


def test_check_budget_refuses_before_work_and_suggests_a_budget() -> None:
    check_budget(10, 2.5, 0.5, continued=True)  # the range test, 2 x 5 steps, 1 x 5 more: 2.0
    check_budget(10, 2.5, 0.5, continued=False)  # 2 x 3 compressed steps + 1 full run: 2.1
    with pytest.raises(ConfigError, match=r"need 4.67; use budget >= 4.7"):
        check_budget(3, 2.5, 20 * 8 / 48, continued=True)  # 3.33 + 2 x 1 step + 2 steps more
    with pytest.raises(ConfigError, match=r"need 3.48; use budget >= 3.5"):
        check_budget(200, 2.5, 0.5, continued=False, min_candidates=6)


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


def test_robust_rank_reads_the_last_quarter_not_the_final_iterate() -> None:
    """Two finalists of a 100-step run: b's last evaluation is its lucky one."""
    a = Trace(0.1, ((25, 0.80, 0.6), (50, 0.90, 0.3), (75, 0.95, 0.15), (100, 0.950, 0.15)), 100)
    b = Trace(0.2, ((25, 0.85, 0.5), (50, 0.91, 0.3), (75, 0.92, 0.25), (100, 0.956, 0.21)), 100)
    assert a.late_acc() == pytest.approx(0.95) and b.late_acc() == pytest.approx(0.938)
    assert robust_rank([a, b], n_val=None) == [0, 1]  # late mean 0.950 beats 0.938
    assert robust_rank([b, a], n_val=225) == [1, 0]


def test_robust_rank_calls_a_gap_under_one_standard_error_a_tie_the_loss_breaks() -> None:
    # 225 validation images at p = 0.95: one standard error is 1.45 points
    hi = Trace(0.3, ((100, 0.960, 0.30),), 100)  # the best accuracy, a worse loss
    lo = Trace(0.1, ((100, 0.950, 0.18),), 100)  # 1.0 point lower: within the noise, better loss
    far = Trace(0.03, ((100, 0.930, 0.10),), 100)  # 3 points lower: outside it, whatever its loss
    dead = Trace(1.0, ((100, 0.99, None),), 100, collapsed=True)
    assert robust_rank([hi, lo, far, dead], n_val=225) == [1, 0, 2, 3]
    assert robust_rank([hi, lo, far, dead], n_val=100_000) == [0, 1, 2, 3]  # a huge split: no band
    assert robust_rank([hi, lo, far, dead], n_val=None) == [0, 1, 2, 3]
    assert robust_rank([dead], n_val=225) == [0] and robust_rank([], n_val=225) == []
    with pytest.raises(ConfigError, match="n_val"):
        robust_rank([hi], n_val=0)


def test_a_trace_without_late_evaluations_uses_its_last_one() -> None:
    t = Trace(0.1, ((10, 0.5, 1.0), (20, 0.7, None)), 100)  # stopped early: nothing in the last quarter
    assert t.late() == ((20, 0.7, None),) and t.late_acc() == 0.7 and t.late_loss() == math.inf


@pytest.mark.parametrize("acc, loss, collapsed", [
    (0.109, 52902.0, True),   # diverged: below the majority class, loss in the thousands
    (0.130, 52902.0, True),   # diverged, a few images above the majority class (the old half-image rule missed it)
    (0.130, 2.29, False),     # loss below a uniform guess: a slow start that has begun to learn
    (0.200, 4000.0, False),   # well above chance: learned something, however unstable
    (0.122, None, True),      # loss not finite
])
def test_collapse_counts_a_diverged_run_a_few_images_above_chance(acc: float, loss: float | None,
                                                                   collapsed: bool) -> None:
    # MNIST-3k validation split: 450 images, the most frequent class 12.2% of them
    note = collapse_note(acc, loss, majority=0.122, n_val=450, num_classes=10)
    assert (note is not None) is collapsed


def test_chance_level_narrows_with_the_validation_size() -> None:
    assert chance_level(0.1, 100) == pytest.approx(0.1 + 2 * math.sqrt(0.09 / 100) + 0.005)
    assert chance_level(0.1, 10_000) < chance_level(0.1, 1_000) < chance_level(0.1, 100)
    assert chance_level(0.1, 10**9) == pytest.approx(0.1, abs=1e-4)


def test_a_run_that_learned_only_the_class_frequencies_collapsed() -> None:
    """USPS-like unbalanced labels: predicting the frequencies scores the majority class with a
    loss below ln 10; the rule compares with the frequencies' own loss, not a uniform guess."""
    counts = [179, 137, 106, 83, 97, 79, 87, 77, 89, 160]  # 1094 validation labels, 16% the largest class
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor(counts))
    majority, n, prior = label_stats(labels)
    assert (majority, n) == (179 / 1094, 1094)
    assert prior == pytest.approx(prior_loss(counts)) and 2.2 < prior < math.log(10)
    dead = dict(majority=majority, n_val=n, num_classes=10)
    assert collapse_note(0.1527, 2.2842, **dead, prior=prior) is not None  # select's returned run in session 13
    assert collapse_note(0.1527, 2.2842, **dead) is None  # judged against ln 10 it looked healthy
    assert collapse_note(0.1527, prior - 0.01, **dead, prior=prior) is None  # below the frequencies: learning
    assert collapse_note(0.60, 2.2842, **dead, prior=prior) is None  # accuracy above chance: learning
    assert prior_loss([5] * 4) == pytest.approx(math.log(4)) and prior_loss([]) == 0.0
