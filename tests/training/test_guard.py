"""The divergence guard: detection maths, bitwise rollback, LR cuts that survive schedulers,
the recovery limit, and the guard in a plain user loop."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import lrscout
from lrscout.errors import ConfigError, DivergenceError
from lrscout.schedules import build_scheduler, get_schedule
from lrscout.training import Guard, evaluate
from lrscout.training.detect import growth_threshold, is_growth, is_spike, robust_baseline, spike_threshold

# --- pure detection maths ---------------------------------------------------------------


def test_robust_baseline_ignores_one_outlier() -> None:
    med, sigma = robust_baseline(np.array([1.0, 1.1, 0.9, 1.0, 100.0]))
    assert med == 1.0
    assert sigma == pytest.approx(1.4826 * 0.1)


def test_spike_threshold_closed_form() -> None:
    recent = np.array([0.10, 0.12, 0.08, 0.10, 0.11])
    med, sigma = robust_baseline(recent)
    # late in training: the progress term (3 x (2.3 - 0.1)) dominates
    assert spike_threshold(recent, start=2.3, spike=3.0) == pytest.approx(med + 3.0 * (2.3 - med))
    # before any progress the loss must at least double
    flat = np.array([2.3, 2.3, 2.3])
    assert spike_threshold(flat, start=2.3, spike=3.0) == pytest.approx(4.6)
    # a noisy baseline: six robust sigmas
    noisy = np.array([1.0, 3.0, 1.0, 3.0, 2.0])
    m, s = robust_baseline(noisy)
    assert spike_threshold(noisy, start=2.0, spike=3.0) == pytest.approx(m + 6 * s)


def test_heavy_tailed_late_batches_are_not_spikes_but_blowups_are() -> None:
    recent = np.full(20, 0.02)
    assert not is_spike(0.5, recent, start=2.3, spike=3.0)  # 25x the median: normal late in training
    assert is_spike(30.0, recent, start=2.3, spike=3.0)
    assert not is_spike(math.nan, recent, start=2.3, spike=3.0)  # that is the nan rule's job
    assert not is_spike(30.0, np.array([]), start=2.3, spike=3.0)


def test_growth_rule() -> None:
    # progress from 2.3 to 0.3; giving back half of it (median > 1.3) is growth
    assert growth_threshold(0.3, 2.3, growth=0.5) == pytest.approx(1.3)
    assert is_growth(np.full(20, 1.4), best=0.3, start=2.3, growth=0.5)
    assert not is_growth(np.full(20, 1.2), best=0.3, start=2.3, growth=0.5)
    # no progress yet: 1 + 0.5 * 0.5 = 1.25 x the best level
    assert growth_threshold(2.0, 2.0, growth=0.5) == pytest.approx(2.5)


# --- the guard object -------------------------------------------------------------------


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def data(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n)]


def sgd_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def state_copy(model: nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    return copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())


def test_rollback_is_bitwise_and_training_continues_like_an_untouched_clone() -> None:
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    guard = Guard(model, opt, snapshot_every=4)
    batches = data(40)
    saved = {0: state_copy(model, opt)}
    for i in range(13):
        assert not guard.step(sgd_step(model, opt, *batches[i]))
        saved[guard.steps] = state_copy(model, opt)
    # step 13: the loss "became" NaN
    sgd_step(model, opt, *batches[13])
    assert guard.step(math.nan)
    event = guard.events[-1]
    assert event["kind"] == "nan" and event["action"] == "rollback" and event["step"] == 13
    # snapshots every 4 good steps, confirmed 4 good steps later: the weights of step 8
    assert event["restored_step"] == 8
    want_model, want_opt = saved[8]
    for k, v in model.state_dict().items():
        assert torch.equal(v, want_model[k]), k
    assert torch.equal(opt.state_dict()["state"][0]["momentum_buffer"], want_opt["state"][0]["momentum_buffer"])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)
    assert event["lr_before"] == pytest.approx(0.05) and event["lr_after"] == pytest.approx(0.005)

    # an untouched clone restored by hand from step 8, at the cut LR, trains identically
    clone = small_model(seed=99)
    clone.load_state_dict(want_model)
    clone_opt = torch.optim.SGD(clone.parameters(), lr=0.05, momentum=0.9)
    clone_opt.load_state_dict(want_opt)
    clone_opt.param_groups[0]["lr"] = 0.005
    for x, y in batches[14:24]:
        assert not guard.step(sgd_step(model, opt, x, y))
        sgd_step(clone, clone_opt, x, y)
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kind", ["cosine", "onecycle"])
def test_lr_cut_survives_a_lambda_scheduler(kind: str) -> None:
    model = small_model()
    params = list(model.parameters())
    opt = torch.optim.SGD([{"params": params[:2], "lr": 0.1}, {"params": params[2:], "lr": 0.3}])
    sched = build_scheduler(opt, kind, epochs=2, steps_per_epoch=20)
    multiplier = get_schedule(kind).multiplier({}, epochs=2, steps_per_epoch=20)  # the pure plan
    guard = Guard(model, opt, scheduler=sched)
    batches = data(30)
    for x, y in batches[:10]:
        assert not guard.step(sgd_step(model, opt, x, y))
        sched.step()
    sgd_step(model, opt, *batches[10])
    assert guard.step(math.inf)  # the loop skips sched.step() for this batch
    for x, y in batches[11:20]:
        assert not guard.step(sgd_step(model, opt, x, y))
        sched.step()
        mult = multiplier(sched.last_epoch)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * mult, rel=1e-9)
        assert opt.param_groups[1]["lr"] == pytest.approx(0.03 * mult, rel=1e-9)  # ratio kept


@pytest.mark.filterwarnings("ignore:Detected call of")  # the reference never calls optimizer.step()
def test_lr_cut_survives_torch_onecycle() -> None:
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=40)
    ref_opt = torch.optim.SGD(small_model().parameters(), lr=0.1, momentum=0.9)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.1, total_steps=40)  # the cut plan
    guard = Guard(model, opt, scheduler=sched)
    batches = data(30)
    for x, y in batches[:5]:
        assert not guard.step(sgd_step(model, opt, x, y))
        sched.step()
        ref.step()
    sgd_step(model, opt, *batches[5])
    assert guard.step(math.nan)
    for x, y in batches[6:25]:
        assert not guard.step(sgd_step(model, opt, x, y))
        sched.step()
        ref.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-9)


def test_gives_up_after_max_recoveries_with_good_weights_back() -> None:
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = Guard(model, opt, max_recoveries=2, factor=4.0)
    start = copy.deepcopy(model.state_dict())
    x, y = data(1)[0]
    assert guard.step(math.nan) and guard.step(math.nan)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 16)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(math.nan)
    with pytest.raises(DivergenceError, match="after 2 recoveries"):
        guard.step(math.nan)
    assert [e["action"] for e in guard.events] == ["rollback", "rollback", "stop"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, start[k])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 16)  # the giving-up step does not cut again
    assert math.isfinite(nn.functional.cross_entropy(model(x), y).item())


def test_spike_and_growth_are_detected_from_the_loss_alone() -> None:
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = Guard(model, opt, max_recoveries=5)
    losses = [2.3 * 0.9**i + 0.2 for i in range(40)]
    for v in losses:
        assert not guard.step(v)
    assert guard.step(50.0)
    assert guard.events[-1]["kind"] == "spike"
    # the loss climbs back smoothly to its starting level: no single spike, but growth
    kinds = []
    for v in np.linspace(0.3, 2.3, 60):
        if guard.step(float(v)):
            kinds.append(guard.events[-1]["kind"])
    assert "growth" in kinds and "spike" not in kinds


def test_guard_in_a_plain_user_loop_rescues_a_far_too_high_lr() -> None:
    """The README example: a user's own loop, digits, SGD at lr 5 with onecycle."""
    task = lrscout.Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=600)
    splits = task.splits()
    model = task.build_model(splits.info)
    opt = torch.optim.SGD(model.parameters(), lr=5.0)
    loader = splits.loader("train", 32, seed=0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5.0, total_steps=4 * len(loader))
    guard = lrscout.Guard(model, opt, scheduler=sched)
    for _ in range(4):
        for x, y in loader:
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if not guard.step(loss.item()):
                sched.step()
    assert guard.events and all(e["action"] == "rollback" for e in guard.events)
    assert opt.param_groups[0]["max_lr"] < 5.0
    _, acc = evaluate(model, splits.loader("val", 256))
    assert acc > 0.8
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, message",
    [({"factor": 1.0}, "factor"), ({"max_recoveries": -1}, "max_recoveries"), ({"spike": 0.0}, "spike"),
     ({"growth": -1.0}, "growth"), ({"window": 2}, "window"), ({"snapshot_every": 0}, "snapshot_every")],
)
def test_bad_settings_raise_config_error(kwargs: dict, message: str) -> None:
    model = small_model()
    with pytest.raises(ConfigError, match=message):
        Guard(model, torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)
