"""Pretrained models: head detection and replacement, checkpoints, the input adapter, and
the torchvision / timm paths with their downloads replaced by local state dicts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from lrscout.data import DataInfo
from lrscout.errors import ConfigError, DataError
from lrscout.models.pretrained import (
    Adapted,
    InputAdapter,
    InputSpec,
    find_head,
    load_pretrained,
    read_checkpoint,
    replace_head,
    torchvision_input,
    torchvision_weights,
)
from lrscout.models import SimpleCNN
from lrscout.task import Task

GREY = DataInfo("grey", 1, 10, (28, 28), (0.13,), (0.31,))


@pytest.mark.parametrize(
    "build, head",
    [
        (lambda: SimpleCNN(), "fc2"),
        (lambda: tvm.resnet18(), "fc"),
        (lambda: tvm.mobilenet_v3_small(), "classifier.3"),
        (lambda: nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), "3"),
    ],
)
def test_find_head(build, head: str) -> None:  # type: ignore[no-untyped-def]
    assert find_head(build()) == head


def test_find_head_uses_timm_get_classifier() -> None:
    timm = pytest.importorskip("timm")
    assert find_head(timm.create_model("resnet18", pretrained=False, num_classes=4)) == "fc"
    assert find_head(timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=4)) == "head"


def test_find_head_without_linear_raises() -> None:
    with pytest.raises(ConfigError, match="no Linear classifier"):
        find_head(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_replace_head_keeps_body_and_fits_classes() -> None:
    torch.manual_seed(0)
    model = tvm.resnet18(num_classes=1000)
    body = model.layer4[1].conv2.weight.clone()
    assert replace_head(model, 7) == "fc"
    assert model.fc.out_features == 7 and model.fc.in_features == 512
    assert torch.equal(model.layer4[1].conv2.weight, body)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_read_checkpoint_formats(tmp_path: Path) -> None:
    state = SimpleCNN().state_dict()
    plain, wrapped, ddp = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    torch.save(state, plain)
    torch.save({"model": state, "optimizer": {}, "epoch": 3}, wrapped)
    torch.save({"module." + k: v for k, v in state.items()}, ddp)
    for path in (plain, wrapped, ddp):
        got = read_checkpoint(path)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)


def test_read_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"epoch": 3}, tmp_path / "nostate.pt")
    with pytest.raises(DataError, match="no state dict"):
        read_checkpoint(tmp_path / "nostate.pt")


def test_local_weights_load_body_and_reinit_head(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = SimpleCNN(num_classes=10)
    torch.save(source.state_dict(), tmp_path / "w.pt")
    info = DataInfo("five", 1, 5, (28, 28), (0.1,), (0.3,))
    torch.manual_seed(2)
    model = load_pretrained("simplecnn", info, weights=tmp_path / "w.pt")
    assert isinstance(model, SimpleCNN)  # same input: no adapter
    assert torch.equal(model.conv.weight, source.conv.weight) and torch.equal(model.fc1.weight, source.fc1.weight)
    assert model.fc2.out_features == 5


def test_local_weights_of_another_architecture_raise(tmp_path: Path) -> None:
    torch.save(tvm.resnet18().state_dict(), tmp_path / "r.pt")
    with pytest.raises(DataError, match="do not fit"):
        load_pretrained("simplecnn", GREY, weights=tmp_path / "r.pt")


def test_rgb_checkpoint_on_grey_data_repeats_channels(tmp_path: Path) -> None:
    torch.save(SimpleCNN(in_channels=3).state_dict(), tmp_path / "rgb.pt")
    model = load_pretrained("simplecnn", GREY, weights=tmp_path / "rgb.pt")
    assert isinstance(model, Adapted) and model.adapter.channels == 3 and not model.adapter.renormalise
    assert find_head(model) == "net.fc2"
    assert model(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    assert all(k.startswith("net.") for k in model.state_dict())  # adapter buffers stay out


def test_input_adapter_maths() -> None:
    spec = InputSpec(3, (56, 56), (0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    adapter = InputAdapter(GREY, spec)
    raw = torch.rand(2, 1, 28, 28)
    x = (raw - 0.13) / 0.31
    out = adapter(x)
    assert out.shape == (2, 3, 56, 56)
    up = nn.functional.interpolate(raw, size=(56, 56), mode="bilinear", align_corners=False)
    for c, (m, s) in enumerate(zip(spec.mean, spec.std)):  # type: ignore[arg-type]
        torch.testing.assert_close(out[:, c : c + 1], (up - m) / s, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="only greyscale"):
        InputAdapter(DataInfo("rgb", 3, 10, (8, 8), (0.0,) * 3, (1.0,) * 3), InputSpec(1))


def test_exactly_one_source_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        load_pretrained("resnet18", GREY)
    with pytest.raises(ConfigError, match="exactly one"):
        load_pretrained("resnet18", GREY, pretrained=True, weights=tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="no published"):
        load_pretrained("simplecnn", GREY, pretrained=True)
    with pytest.raises(ConfigError, match="not both"):
        Task(pretrained=True, weights="x.pt")


def test_torchvision_weights_resolved_without_download() -> None:
    weights = torchvision_weights("resnet18")
    assert weights is tvm.ResNet18_Weights.DEFAULT
    spec = torchvision_input(weights)
    assert spec == InputSpec(3, (224, 224), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    with pytest.raises(ConfigError, match="no pretrained weights"):
        torchvision_weights("no_such_net")


def test_torchvision_pretrained_path_with_download_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real torchvision path, its one download swapped for a local ImageNet-shaped dict."""
    import torchvision.models._api as api

    torch.manual_seed(3)
    imagenet_like = tvm.resnet18(num_classes=1000).state_dict()
    urls: list[str] = []

    def fake_download(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        urls.append(url)
        return imagenet_like

    monkeypatch.setattr(api, "load_state_dict_from_url", fake_download)
    model = load_pretrained("resnet18", GREY, pretrained=True)
    assert urls == [tvm.ResNet18_Weights.DEFAULT.url]
    assert isinstance(model, Adapted) and model.adapter.size == (224, 224) and model.adapter.renormalise
    assert model.net.fc.out_features == 10
    assert torch.equal(model.net.conv1.weight, imagenet_like["conv1.weight"])
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_timm_pretrained_path_with_download_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    timm = pytest.importorskip("timm")
    calls: list[dict[str, object]] = []
    real_create = timm.create_model

    def offline_create(name: str, **kwargs: object) -> nn.Module:
        calls.append(dict(kwargs, name=name))
        return real_create(name, **{**kwargs, "pretrained": False})

    monkeypatch.setattr(timm, "create_model", offline_create)
    model = load_pretrained("timm:resnet18", GREY, pretrained=True)
    assert calls == [{"name": "resnet18", "pretrained": True, "num_classes": 10}]
    assert isinstance(model, Adapted) and model.adapter.size == (224, 224)
    assert model.net.get_classifier().out_features == 10
    with pytest.raises(ConfigError, match="unknown timm model"):
        load_pretrained("timm:no_such_net", GREY, pretrained=True)


def test_task_builds_seeded_pretrained_models(digits_ckpt: Path) -> None:
    task = Task(dataset="digits", limit=200, weights=str(digits_ckpt))
    a, b = task.build_model(), task.build_model()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    c = task.build_model(seed=1)
    assert torch.equal(a.conv.weight, c.conv.weight) and not torch.equal(a.fc2.weight, c.fc2.weight)
