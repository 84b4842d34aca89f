"""Pure schedule functions: closed-form tables, named points, properties, torch parity."""

from __future__ import annotations

import math

import pytest
import torch

from lrscout.errors import ConfigError
from lrscout.schedules import (
    constant,
    cosine,
    cosine_decay,
    join,
    linear_warmup,
    multistep,
    onecycle,
    step,
)


def test_constant_is_exactly_one() -> None:
    f = constant()
    assert all(f(t) == 1.0 for t in (0, 1, 10, 10**9))


def test_step_matches_classic_steplr_table() -> None:
    # StepLR(step_size=10, gamma=0.1): 1 for 0..9, 0.1 for 10..19, 0.01 for 20..29, ...
    f = step(step_size=10, gamma=0.1)
    table = {0: 1.0, 9: 1.0, 10: 0.1, 19: 0.1, 20: 0.01, 29: 0.01, 30: 1e-3, 45: 1e-4}
    for t, want in table.items():
        assert f(t) == pytest.approx(want, rel=1e-12), t


def test_multistep_table_unsorted_and_repeated_milestones() -> None:
    f = multistep([6, 3], gamma=0.5)
    assert [f(t) for t in range(8)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    g = multistep([4, 4], gamma=0.1)  # a repeated milestone decays twice, as MultiStepLR
    assert g(3) == 1.0 and g(4) == pytest.approx(0.01, rel=1e-12)
    assert multistep([])(100) == 1.0


def test_linear_warmup_starts_near_zero_and_reaches_one_at_w() -> None:
    f = linear_warmup(4)
    assert [f(t) for t in range(6)] == [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]


def test_cosine_named_points_after_warmup() -> None:
    eta, warm, total = 0.1, 10, 110
    f = cosine(total, warmup_steps=warm, eta_min_ratio=eta)
    assert f(warm) == 1.0
    assert f(warm + (total - warm) // 2) == pytest.approx((1 + eta) / 2, rel=1e-12)
    assert f(total) == pytest.approx(eta, rel=1e-12)
    assert f(10 * total) == pytest.approx(eta, rel=1e-12)
    ramp = [f(t) for t in range(warm + 1)]
    decay = [f(t) for t in range(warm, total + 1)]
    assert 0 < ramp[0] < 0.1 and all(a < b for a, b in zip(ramp, ramp[1:]))
    assert all(a > b for a, b in zip(decay, decay[1:]))


def test_cosine_is_a_join_of_warmup_and_decay() -> None:
    f = cosine(50, warmup_steps=5, eta_min_ratio=0.2)
    g = join([linear_warmup(5), cosine_decay(45, 0.2)], [5])
    assert [f(t) for t in range(60)] == [g(t) for t in range(60)]
    h = cosine(50)  # no warmup: the decay alone
    assert [h(t) for t in range(60)] == [cosine_decay(50)(t) for t in range(60)]


def test_join_counts_steps_from_each_piece_start() -> None:
    f = join([constant(), step(2, 0.5), constant()], [3, 7])
    assert [f(t) for t in range(9)] == [1, 1, 1, 1, 1, 0.5, 0.5, 1, 1]


def _torch_onecycle(total: int, **kwargs: object) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total, **kwargs)
    seen = []
    for _ in range(total):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return seen


@pytest.mark.parametrize(
    ("total", "pct_start", "anneal"),
    [(100, 0.3, "cos"), (37, 0.3, "cos"), (37, 0.25, "linear"), (10, 0.15, "cos"), (1, 0.3, "cos"),
     (20, 0.95, "cos"), (15, 0.0, "linear")],
)  # fmt: skip
def test_onecycle_matches_torch_onecyclelr(total: int, pct_start: float, anneal: str) -> None:
    kwargs = dict(pct_start=pct_start, div_factor=20.0, final_div_factor=1e3)
    want = _torch_onecycle(total, anneal_strategy=anneal, **kwargs)
    f = onecycle(total, anneal=anneal, **kwargs)
    for t, w in enumerate(want):
        assert math.isclose(f(t), w, rel_tol=1e-9), (t, f(t), w)


def test_onecycle_named_points() -> None:
    f = onecycle(100)  # peak at pct_start * T - 1 = 29, as PyTorch
    assert f(0) == pytest.approx(1 / 25, rel=1e-12)
    assert f(29) == 1.0 and f(28) < 1.0 and f(30) < 1.0
    assert f(99) == pytest.approx(1 / (25 * 1e4), rel=1e-12)
    assert f(150) == f(99)  # held after the last step


def test_onecycle_degenerate_phases_where_torch_divides_by_zero() -> None:
    # pct_start * T == 1: the warm-up phase has no length, the peak is step 0.
    f = onecycle(10, pct_start=0.1)
    assert f(0) == 1.0 and f(9) == pytest.approx(1 / 25e4, rel=1e-12)
    # pct_start == 1: a pure warm-up ending at the peak on the last step.
    g = onecycle(20, pct_start=1.0)
    assert g(0) == pytest.approx(1 / 25, rel=1e-12) and g(19) == 1.0 and g(25) == 1.0


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: step(0), "step_size must be an integer >= 1, got 0"),
        (lambda: step(10, gamma=1.5), "gamma .* got 1.5"),
        (lambda: step(2.5), "step_size .* got 2.5"),
        (lambda: multistep([3, -1]), "milestone .* got -1"),
        (lambda: multistep(5), "milestones must be a sequence"),
        (lambda: linear_warmup(0), "warmup_steps .* got 0"),
        (lambda: cosine(10, warmup_steps=10), "warmup_steps must be < total_steps=10, got 10"),
        (lambda: cosine(10, eta_min_ratio=-0.1), "eta_min_ratio .* got -0.1"),
        (lambda: cosine(0), "total_steps .* got 0"),
        (lambda: onecycle(100, pct_start=1.5), "pct_start .* got 1.5"),
        (lambda: onecycle(100, div_factor=float("nan")), "div_factor .* got nan"),
        (lambda: onecycle(100, anneal="exp"), "anneal must be one of 'cos', 'linear', got 'exp'"),
        (lambda: join([constant()], [3]), "len\\(boundaries\\)"),
        (lambda: join([constant(), constant(), constant()], [5, 5]), "strictly increasing"),
    ],
)
def test_bad_arguments_raise_with_the_value(make: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make()  # type: ignore[operator]


def test_negative_step_raises() -> None:
    with pytest.raises(ConfigError, match="step must be >= 0, got -1"):
        cosine(10)(-1)
