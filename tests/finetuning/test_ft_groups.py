"""Parameter groups: LRs by the formula, weight decay never on norms and biases, every
parameter exactly once, freezing."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models as tvm

import lrscout
from lrscout.errors import ConfigError
from lrscout.models.groups import backbone_blocks, freeze_backbone, param_groups, unfreeze
from lrscout.models import SimpleCNN


def ids(params: list[nn.Parameter]) -> set[int]:
    return {id(p) for p in params}


def test_head_and_backbone_groups() -> None:
    model = SimpleCNN()
    groups = lrscout.param_groups(model, 0.2, backbone_ratio=0.1)
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [("head", 0.2, 0.0), ("backbone", pytest.approx(0.02), 0.0)]
    assert ids(groups[0]["params"]) == ids(list(model.fc2.parameters()))
    assert ids(groups[1]["params"]) == ids([model.conv.weight, model.conv.bias, model.fc1.weight, model.fc1.bias])
    opt = torch.optim.SGD(groups, lr=123.0)  # explicit group LRs win over the default
    assert [g["lr"] for g in opt.param_groups] == [0.2, pytest.approx(0.02)]
    assert [g["name"] for g in opt.param_groups] == ["head", "backbone"]


def test_no_weight_decay_on_norms_and_biases() -> None:
    model = tvm.resnet18(num_classes=10)
    groups = param_groups(model, 0.1, 0.5, weight_decay=5e-4)
    assert [g["name"] for g in groups] == ["head", "head/no_decay", "backbone", "backbone/no_decay"]
    names = {id(p): n for n, p in model.named_parameters()}
    for g in groups:
        for p in g["params"]:
            decays = not (p.ndim <= 1)
            assert (g["weight_decay"] == 5e-4) == decays, names[id(p)]
    every = [id(p) for g in groups for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters())  # each exactly once


def test_layer_decay_formula() -> None:
    model = tvm.resnet18(num_classes=10)
    blocks = [name for name, _ in backbone_blocks(model)]
    assert blocks == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]
    groups = param_groups(model, 1.0, backbone_ratio=0.5, layer_decay=0.8)
    lrs = {g["name"]: g["lr"] for g in groups}
    n = len(blocks)
    assert lrs["head"] == 1.0
    for i, block in enumerate(blocks):
        assert lrs[f"backbone:{block}"] == pytest.approx(0.5 * 0.8 ** (n - 1 - i), rel=1e-12)


def test_blocks_descend_through_a_lone_wrapper() -> None:
    inner = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv2d(2, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    model = nn.Sequential(nn.Identity(), inner)
    model(torch.randn(1, 1, 8, 8))
    assert [n for n, _ in backbone_blocks(model)] == ["1.0", "1.1", "1.2"]


def test_timm_blocks_follow_group_matcher() -> None:
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=3)
    blocks = [n for n, _ in backbone_blocks(vit)]
    assert blocks[1:13] == [f"blocks.{i}" for i in range(12)]
    groups = param_groups(vit, 1.0, backbone_ratio=0.9, layer_decay=0.9)
    assert groups[0]["name"] == "head" and groups[-1]["lr"] == pytest.approx(0.9)  # final norm: nearest the head


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"head_lr": 0.0}, "head_lr"),
        ({"head_lr": float("nan")}, "head_lr"),
        ({"head_lr": 0.1, "backbone_ratio": -1.0}, "backbone_ratio"),
        ({"head_lr": 0.1, "layer_decay": 1.5}, "layer_decay"),
        ({"head_lr": 0.1, "weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_bad_values_raise_with_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        param_groups(SimpleCNN(), **kwargs)


def test_zero_ratio_is_a_frozen_backbone_by_lr() -> None:
    groups = param_groups(SimpleCNN(), 0.1, backbone_ratio=0.0)
    assert [g["lr"] for g in groups] == [0.1, 0.0]


def test_freeze_then_unfreeze_trains_head_only_then_all() -> None:
    torch.manual_seed(0)
    model = SimpleCNN()
    opt = torch.optim.SGD(param_groups(model, 0.1, 0.1), lr=0.1)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    frozen = freeze_backbone(model)
    assert len(frozen) == 4 and all(p.requires_grad for p in model.fc2.parameters())
    conv, head = model.conv.weight.clone(), model.fc2.weight.clone()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert torch.equal(model.conv.weight, conv) and not torch.equal(model.fc2.weight, head)
    unfreeze(frozen)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert not torch.equal(model.conv.weight, conv)
