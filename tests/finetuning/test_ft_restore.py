"""The range test's bitwise restore with frozen parameters and several groups, and the
backbone-ratio sweep (head LR fixed, backbone swept, everything restored)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import lrscout
from lrscout.errors import ConfigError
from lrscout.models.groups import freeze_backbone, param_groups
from lrscout.finetuning.sweep import find_ratio

from statecheck import assert_same, full_state


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3),
    )


def batches(n: int = 6, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def frozen_three_groups() -> tuple[nn.Module, torch.optim.Optimizer, list]:
    """Layer decay over two conv blocks + head = 3 groups (+ no-decay splits); the first
    conv frozen; Adam warmed up so it has moments for some parameters and not others."""
    data = batches()
    model = bn_net()
    groups = param_groups(model, 1e-2, backbone_ratio=0.3, layer_decay=0.5, weight_decay=1e-4)
    assert len({g["name"].split("/")[0] for g in groups}) >= 3
    opt = torch.optim.AdamW(groups)
    model[0].weight.requires_grad_(False)
    for x, y in data[:3]:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    return model, opt, data


def test_find_restores_bitwise_with_frozen_params_and_three_groups() -> None:
    model, opt, data = frozen_three_groups()
    before = full_state(model, opt)
    result = lrscout.find(model, data, opt, start_lr=1e-5, end_lr=1.0, num_iter=20)
    assert len(result.history_lr) > 5
    assert result.config["group_ratios"][0] == 1.0 and len(result.config["group_ratios"]) == len(opt.param_groups)
    assert_same(before, full_state(model, opt))


def test_find_on_a_frozen_backbone_then_training_matches_clone() -> None:
    model, opt, data = frozen_three_groups()
    frozen = freeze_backbone(model)
    clone = copy.deepcopy(model)
    clone_opt = torch.optim.AdamW(param_groups(clone, 1e-2, backbone_ratio=0.3, layer_decay=0.5, weight_decay=1e-4))
    clone_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    lrscout.find(model, data, opt, start_lr=1e-5, end_lr=1.0, num_iter=15)
    assert all(not p.requires_grad for p in frozen)
    for m, o in ((model, opt), (clone, clone_opt)):
        m.train()
        for x, y in data:
            o.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    assert_same(model.state_dict(), clone.state_dict())


def test_ratio_sweep_fixes_the_head_and_restores() -> None:
    model, opt, data = frozen_three_groups()
    before = full_state(model, opt)
    head_lr = opt.param_groups[0]["lr"]
    ratios = [g["lr"] / head_lr for g in opt.param_groups]
    seen: list[list[float]] = []
    orig_step = opt.step

    def spy_step(*a: object, **k: object) -> object:
        seen.append([g["lr"] for g in opt.param_groups])
        return orig_step(*a, **k)

    opt.step = spy_step  # type: ignore[method-assign]
    result = find_ratio(model, data, opt, start_ratio=1e-3, end_ratio=1.0, num_iter=12, diverge_factor=1e9)
    del opt.step
    heads = [i for i, g in enumerate(opt.param_groups) if g["name"].startswith("head")]
    top = max(r for i, r in enumerate(ratios) if i not in heads)  # the block nearest the head
    expected = head_lr * 1e-3 * (1.0 / 1e-3) ** (np.arange(12) / 11)
    for step, lrs in enumerate(seen):
        for i, lr in enumerate(lrs):
            want = head_lr if i in heads else expected[step] * ratios[i] / top
            assert lr == pytest.approx(want, rel=1e-12)
    assert result.config["head_lr"] == head_lr
    assert result.config["ratio"] == pytest.approx(result.lr / head_lr)
    assert result.config["optimizer"] == "AdamW"
    assert_same(before, full_state(model, opt))


def test_ratio_sweep_needs_named_groups() -> None:
    model = bn_net()
    with pytest.raises(ConfigError, match="param_groups"):
        find_ratio(model, batches(), torch.optim.SGD(model.parameters(), lr=0.1), num_iter=10)
