"""The range test: exact restore, sweep shape, group ratios, stop rules, result JSON."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

import lrscout
from lrscout.errors import ConfigError
from lrscout.results import FindResult

from statecheck import assert_same, full_state


def bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    )


def batches(n: int = 6, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def two_group_adam(model: nn.Module) -> torch.optim.Optimizer:
    params = list(model.parameters())
    return torch.optim.Adam([{"params": params[:2], "lr": 1e-3}, {"params": params[2:], "lr": 1e-2}])


def warm_up(model: nn.Module, opt: torch.optim.Optimizer, data: list) -> None:
    """Give the optimizer real state (Adam moments, step counts) and the model grads."""
    for x, y in data[:3]:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.fixture()
def setup() -> tuple[nn.Module, torch.optim.Optimizer, list]:
    data = batches()
    model = bn_model()
    opt = two_group_adam(model)
    warm_up(model, opt, data)
    model.eval()  # a non-default mode must survive too
    return model, opt, data


def test_restores_everything_bitwise(setup: tuple) -> None:
    model, opt, data = setup
    before = full_state(model, opt)
    result = lrscout.find(model, data, opt, start_lr=1e-5, end_lr=1.0, num_iter=20)
    assert len(result.history_lr) > 5
    assert_same(before, full_state(model, opt))


def test_restore_then_training_matches_untouched_clone(setup: tuple) -> None:
    """Training on after find gives exactly the weights an untouched copy reaches."""
    model, opt, data = setup
    clone = copy.deepcopy(model)
    clone_opt = two_group_adam(clone)
    clone_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    lrscout.find(model, data, opt, start_lr=1e-5, end_lr=1.0, num_iter=15)
    for m, o in ((model, opt), (clone, clone_opt)):
        m.train()
        torch.manual_seed(5)
        warm_up(m, o, data)
    assert_same(model.state_dict(), clone.state_dict())


def test_restores_when_loss_goes_nan(setup: tuple) -> None:
    model, opt, data = setup
    before = full_state(model, opt)
    calls = {"n": 0}

    def nan_after_10(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * float("nan") if calls["n"] > 10 else loss

    result = lrscout.find(model, data, opt, nan_after_10, start_lr=1e-5, end_lr=1.0, num_iter=30)
    assert result.stopped_early and "nan" in (result.stop_reason or "")
    assert len(result.history_loss) == 10
    assert all(np.isfinite(result.history_loss))
    assert_same(before, full_state(model, opt))


def test_restores_on_keyboard_interrupt(setup: tuple) -> None:
    model, opt, data = setup
    before = full_state(model, opt)

    def interrupt(i: int, lr: float, loss: float) -> None:
        if i == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lrscout.find(model, data, opt, start_lr=1e-5, end_lr=1.0, num_iter=30, progress=interrupt)
    assert_same(before, full_state(model, opt))


def test_exponential_sweep_and_group_ratios_kept() -> None:
    model = bn_model()
    opt = two_group_adam(model)
    seen: list[tuple[float, float]] = []

    orig_step = opt.step

    def spy_step(*a: object, **k: object) -> object:
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]))
        return orig_step(*a, **k)

    opt.step = spy_step  # type: ignore[method-assign]
    result = lrscout.find(model, batches(3), opt, start_lr=1e-4, end_lr=1e-1, num_iter=10, diverge_factor=1e9)
    expected = 1e-4 * (1e-1 / 1e-4) ** (np.arange(10) / 9)
    np.testing.assert_allclose([s[0] for s in seen], expected, rtol=1e-12)
    np.testing.assert_allclose([s[1] / s[0] for s in seen], 10.0, rtol=1e-12)
    np.testing.assert_allclose(result.history_lr, expected, rtol=1e-12)
    assert result.config["group_ratios"] == [1.0, 10.0]
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[1]["lr"] == 1e-2


def test_linear_mode_and_loader_cycling() -> None:
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lrscout.find(model, batches(2), opt, start_lr=1e-3, end_lr=1e-2, num_iter=12, mode="linear")
    assert len(result.history_lr) == 12  # 2 batches cycled 6 times
    np.testing.assert_allclose(result.history_lr, np.linspace(1e-3, 1e-2, 12), rtol=1e-12)


def test_gradient_accumulation_one_point_per_step() -> None:
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lrscout.find(model, batches(4), opt, start_lr=1e-4, end_lr=1e-2, num_iter=8, accumulation_steps=3)
    assert len(result.history_loss) == 8


def test_validation_mode_records_every_k_steps() -> None:
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lrscout.find(model, batches(4), opt, val_data=batches(2, seed=9), start_lr=1e-4, end_lr=1e-2,
                          num_iter=20, val_every=5)
    assert len(result.history_loss) == 5  # steps 0, 5, 10, 15 and the last
    assert result.config["val_every"] == 5


def test_bf16_autocast_on_cpu() -> None:
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lrscout.find(model, batches(4), opt, start_lr=1e-4, end_lr=1e-1, num_iter=10, amp="bf16")
    assert all(np.isfinite(result.history_loss))


@pytest.mark.parametrize(
    "kwargs",
    [dict(start_lr=1.0, end_lr=0.1), dict(num_iter=3), dict(mode="cubic"), dict(amp="fp8"), dict(accumulation_steps=0)],
)
def test_bad_arguments_raise_config_error(kwargs: dict) -> None:
    model = bn_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ConfigError):
        lrscout.find(model, batches(2), opt, **kwargs)


def test_result_json_round_trip(setup: tuple) -> None:
    model, opt, data = setup
    result = lrscout.find(model, data, opt, start_lr=1e-5, end_lr=1.0, num_iter=20)
    text = json.dumps(result.to_json(), allow_nan=False)
    again = FindResult.from_json(json.loads(text))
    assert again == result
    lo, hi = result.interval
    assert lo <= result.lr <= hi
