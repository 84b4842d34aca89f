"""Torch adapter and ScheduleSpec.build: per-batch LambdaLR, plateau, group ratios, restore."""

from __future__ import annotations

import math

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from lrscout.errors import ConfigError
from lrscout.schedules import build_scheduler, schedule_for

PER_BATCH = ("constant", "step", "multistep", "cosine", "onecycle")
EPOCHS, SPE = 4, 7


def _two_groups(lr0: float = 0.1, lr1: float = 1.0) -> torch.optim.Optimizer:
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    return torch.optim.SGD([{"params": [a], "lr": lr0}, {"params": [b], "lr": lr1}], momentum=0.9)


def _run(opt: torch.optim.Optimizer, sched: object, steps: int) -> list[list[float]]:
    """LRs of every group used at each step, stepping the scheduler once per batch."""
    seen = []
    for _ in range(steps):
        seen.append([float(g["lr"]) for g in opt.param_groups])
        opt.step()
        sched.step()  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize("kind", PER_BATCH)
def test_lambdalr_per_batch_matches_lr_at(kind: str) -> None:
    spec = schedule_for(0.3, kind, EPOCHS, SPE)
    opt = _two_groups()
    sched = spec.build(opt)
    assert isinstance(sched, LambdaLR)
    seen = _run(opt, sched, spec.total_steps)
    assert [s[0] for s in seen] == [spec.lr_at(t) for t in range(spec.total_steps)]
    assert [s[0] for s in seen] == spec.lrs().tolist()


@pytest.mark.parametrize("kind", PER_BATCH)
def test_group_ratios_preserved_through_build(kind: str) -> None:
    opt = _two_groups(0.1, 1.0)
    spec = schedule_for(0.3, kind, EPOCHS, SPE)
    sched = spec.build(opt)
    assert [g["initial_lr"] for g in opt.param_groups] == pytest.approx([0.3, 3.0], rel=1e-12)
    seen = _run(opt, sched, spec.total_steps)
    assert seen[0][0] == spec.lr_at(0)
    for lr0, lr1 in seen:
        assert math.isclose(lr1 / lr0, 10.0, rel_tol=1e-12)


def test_build_uses_initial_lr_left_by_an_earlier_scheduler() -> None:
    opt = _two_groups(0.1, 1.0)
    _run(opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), 3)
    schedule_for(0.2, "constant", 1, 5).build(opt)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.2, 2.0], rel=1e-12)


def test_step_and_multistep_match_torch_schedulers() -> None:
    opt = _two_groups()
    ours = _run(opt, build_scheduler(opt, "step", epochs=9, steps_per_epoch=4, step_size=2), 36)
    opt = _two_groups()
    ref = _run(opt, torch.optim.lr_scheduler.StepLR(opt, step_size=8, gamma=0.1), 36)
    assert all(math.isclose(a, b, rel_tol=1e-12) for x, y in zip(ours, ref) for a, b in zip(x, y))

    opt = _two_groups()
    sched = build_scheduler(opt, "multistep", epochs=8, steps_per_epoch=5, milestones=[3, 6])
    ours = _run(opt, sched, 40)
    opt = _two_groups()
    ref = _run(opt, torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[15, 30]), 40)
    assert all(math.isclose(a, b, rel_tol=1e-12) for x, y in zip(ours, ref) for a, b in zip(x, y))


def test_onecycle_spec_matches_torch_onecyclelr() -> None:
    spec = schedule_for(0.8, "onecycle", epochs=4, steps_per_epoch=10, pct_start=0.25)
    opt = _two_groups()
    ours = _run(opt, spec.build(opt), spec.total_steps)
    opt = _two_groups()
    ref_sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[0.8, 8.0], epochs=4, steps_per_epoch=10, pct_start=0.25
    )
    ref = _run(opt, ref_sched, spec.total_steps)
    for x, y in zip(ours, ref):
        assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(x, y))
    assert max(s[0] for s in ours) == ours[9][0] == 0.8  # the peak: the lr passed in


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def test_constant_schedule_is_bitwise_a_plain_float_lr() -> None:
    torch.manual_seed(1)
    xs, ys = torch.randn(6, 16, 4), torch.randn(6, 16, 1)
    m1, m2 = _model(), _model()
    o1 = torch.optim.SGD(m1.parameters(), lr=0.05, momentum=0.9)
    o2 = torch.optim.SGD(m2.parameters(), lr=123.0, momentum=0.9)
    sched = schedule_for(0.05, "constant", 1, 6).build(o2)
    for x, y in zip(xs, ys):
        for model, opt in ((m1, o1), (m2, o2)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        sched.step()
        assert o2.param_groups[0]["lr"] == 0.05
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_scheduler_state_dict_restores_the_sequence() -> None:
    spec = schedule_for(0.5, "cosine", epochs=3, steps_per_epoch=10)
    opt = _two_groups()
    sched = spec.build(opt)
    _run(opt, sched, 12)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    rest = _run(opt, sched, 18)

    clone = _two_groups()
    clone_sched = spec.build(clone)
    clone.load_state_dict(saved_opt)
    clone_sched.load_state_dict(saved_sched)
    assert _run(clone, clone_sched, 18) == rest


def test_plateau_reduces_lr_on_a_flat_val_loss() -> None:
    spec = schedule_for(0.2, "plateau", epochs=10, steps_per_epoch=5, patience=2, factor=0.5)
    opt = _two_groups()
    sched = spec.build(opt)
    assert isinstance(sched, ReduceLROnPlateau)
    assert spec.lrs().tolist() == [0.2] * 50 and not spec.per_batch
    lrs = []
    for _ in range(6):
        sched.step(1.0)  # once per epoch, validation loss never improves
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == [0.2, 0.2, 0.2]
    assert lrs[3] == pytest.approx(0.1) and lrs[-1] < 0.2
    assert opt.param_groups[1]["lr"] == pytest.approx(10 * lrs[-1])


def test_build_scheduler_errors() -> None:
    opt = _two_groups()
    with pytest.raises(ConfigError, match="'onecycle' got unknown parameter\\(s\\) 'max_lr'"):
        build_scheduler(opt, "onecycle", epochs=2, steps_per_epoch=3, max_lr=1.0)
    with pytest.raises(ConfigError, match="unknown schedule 'cos'; choose one of: constant"):
        build_scheduler(opt, "cos", epochs=2, steps_per_epoch=3)
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1, got 0"):
        build_scheduler(opt, "cosine", epochs=0, steps_per_epoch=3)
    zero = _two_groups(0.0, 1.0)
    with pytest.raises(ConfigError, match="group 0 .* got 0.0"):
        schedule_for(0.1, "constant", 1, 1).build(zero)


def test_tensor_learning_rates_are_updated_in_place() -> None:
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    groups = [{"params": [a], "lr": torch.tensor(0.1)}, {"params": [b], "lr": torch.tensor(1.0)}]
    opt = torch.optim.Adam(groups)
    spec = schedule_for(0.3, "cosine", 2, 10)
    seen = _run(opt, spec.build(opt), spec.total_steps)
    assert all(isinstance(g["lr"], torch.Tensor) for g in opt.param_groups)
    for t, (lr0, lr1) in enumerate(seen):
        assert lr0 == pytest.approx(spec.lr_at(t), rel=1e-6)
        assert lr1 == pytest.approx(10 * lr0, rel=1e-6)
