"""Datasets and models by name, on real offline data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrscout.data import load_dataset
from lrscout.errors import ConfigError, DataError
from lrscout.models import SimpleCNN, build_model
from lrscout.optim import OPTIMIZERS, build_optimizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def test_digits_splits_are_disjoint_normalised_and_seeded() -> None:
    s = load_dataset("digits")
    assert s.info.channels == 1 and s.info.num_classes == 10 and s.info.image_size == (28, 28)
    n = len(s.train) + len(s.val) + len(s.test)  # type: ignore[arg-type]
    assert n == 1797
    x = s.train.tensors[0]
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-2
    again = load_dataset("digits")
    assert torch.equal(again.val.tensors[0], s.val.tensors[0])


def test_splits_do_not_depend_on_the_thread_count_they_were_loaded_under() -> None:
    """Trials in a spawned worker load the data on one thread; the driver may have loaded
    it on several. The normalised tensors must be bitwise the same either way."""
    before = torch.get_num_threads()
    try:
        for limit in (300, 1000):  # sizes where float32 reductions differ by thread count
            loaded = []
            for threads in (1, 2, 3):
                torch.set_num_threads(threads)
                loaded.append(load_dataset("digits", seed=0, limit=limit))
            for other in loaded[1:]:
                assert other.info == loaded[0].info
                assert torch.equal(other.train.tensors[0], loaded[0].train.tensors[0])
                assert torch.equal(other.val.tensors[0], loaded[0].val.tensors[0])
    finally:
        torch.set_num_threads(before)


def test_loader_batches_are_seeded() -> None:
    s = load_dataset("digits", limit=200)
    a = [y for _, y in s.loader("train", 32, seed=3)]
    b = [y for _, y in s.loader("train", 32, seed=3)]
    c = [y for _, y in s.loader("train", 32, seed=4)]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))
    assert sum(len(y) for y in a) == len(s.train)


@pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="shared MNIST files not present")
def test_mnist_through_torchvision_on_shared_files() -> None:
    s = load_dataset("mnist", data_dir=SHARED, limit=600)
    assert s.info.image_size == (28, 28) and s.info.num_classes == 10
    assert len(s.train) + len(s.val) == 600
    assert s.test is not None and len(s.test) == 150
    model = SimpleCNN(1, 10, (28, 28))
    x, _ = next(iter(s.loader("train", 16)))
    assert model(x).shape == (16, 10)


@pytest.mark.skipif(not (SHARED / "CIFAR10-subset").is_dir(), reason="shared CIFAR subset not present")
def test_imagefolder_on_a_small_tree(tmp_path: Path) -> None:
    src = SHARED / "CIFAR10-subset" / "train"
    for cls in sorted(p.name for p in src.iterdir())[:2]:
        (tmp_path / cls).mkdir()
        for f in sorted((src / cls).iterdir())[:15]:
            (tmp_path / cls / f.name).write_bytes(f.read_bytes())
    s = load_dataset("imagefolder", data_dir=tmp_path)
    assert s.info.channels == 3 and s.info.num_classes == 2 and s.info.image_size == (32, 32)
    assert s.test is None


def test_missing_and_empty_and_single_class_data(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nope")
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "only").mkdir()
    with pytest.raises(DataError):
        load_dataset("imagefolder", data_dir=tmp_path / "only")
    from PIL import Image

    for i in range(12):
        Image.new("L", (8, 8), color=i * 10).save(tmp_path / "only" / f"{i}.png")
    with pytest.raises(DataError, match="one class"):
        load_dataset("imagefolder", data_dir=tmp_path)


def test_unknown_names_list_the_choices() -> None:
    with pytest.raises(ConfigError, match="digits"):
        load_dataset("imagenet")
    with pytest.raises(ConfigError, match="simplecnn"):
        build_model("vgg99", 1, 10)
    with pytest.raises(ConfigError, match="adam"):
        build_optimizer("adamax", [torch.zeros(1, requires_grad=True)])


def test_simplecnn_is_the_classic_architecture() -> None:
    m = SimpleCNN(1, 10, (28, 28))
    assert m.conv.in_channels == 1 and m.conv.out_channels == 10 and m.conv.kernel_size == (5, 5)
    assert m.fc1.in_features == 1440 and m.fc1.out_features == 50 and m.fc2.out_features == 10
    colour = build_model("simplecnn", 3, 7, (32, 32))
    assert colour(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_resnet18_and_timm_adapt_channels() -> None:
    r = build_model("resnet18", 1, 10, (28, 28))
    assert r(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    pytest.importorskip("timm")
    t = build_model("timm:resnet10t", 1, 4, (28, 28))
    assert t(torch.zeros(2, 1, 28, 28)).shape == (2, 4)


def test_optimizer_registry_builds_each_classic() -> None:
    p = [torch.nn.Parameter(torch.zeros(2))]
    for name in ("sgd", "sgdm", "nesterov", "adam", "adamw", "rmsprop"):
        opt = build_optimizer(name, p)
        assert opt.param_groups[0]["lr"] == OPTIMIZERS[name].default_lr
    assert build_optimizer("sgdm", p, 0.3).param_groups[0]["momentum"] == 0.9


def test_digits_mnist_draws_the_digits_in_a_20x20_box() -> None:
    s = load_dataset("digits-mnist")
    plain = load_dataset("digits")
    assert s.info.image_size == (28, 28) and len(s.train) == len(plain.train)
    assert torch.equal(s.train.tensors[1], plain.train.tensors[1])  # same images, same order
    x = s.train.tensors[0]
    border = torch.cat([x[..., :4, :].flatten(), x[..., -4:, :].flatten(), x[..., :, :4].flatten()])
    assert float(border.max() - border.min()) == 0.0  # a blank 4-pixel frame, as in MNIST
    assert float(border[0]) < float(x.mean())  # the background is the darkest value


def test_random_affine_is_seeded_and_keeps_shapes() -> None:
    from lrscout.data import random_affine

    x = load_dataset("digits", limit=100).train.tensors[0][:16]
    a = random_affine(x, torch.Generator().manual_seed(3))
    b = random_affine(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, x, atol=1e-3)
    same = random_affine(x, torch.Generator().manual_seed(3), degrees=0.0, scale=0.0, shift=0.0)
    assert torch.allclose(same, x, atol=1e-5)  # the identity transform resamples on the pixel grid


def test_augmented_loader_keeps_batches_and_labels_and_repeats() -> None:
    s = load_dataset("digits", limit=200)
    plain = list(s.loader("train", 32, seed=1))
    aug = list(s.loader("train", 32, seed=1, augment=True))
    again = list(s.loader("train", 32, seed=1, augment=True))
    assert [torch.equal(p[1], a[1]) for p, a in zip(plain, aug)] == [True] * len(plain)
    assert all(not torch.allclose(p[0], a[0]) for p, a in zip(plain, aug))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(aug, again))
    state = torch.get_rng_state()
    list(s.loader("train", 32, seed=1))
    after_plain = torch.get_rng_state()
    torch.set_rng_state(state)
    list(s.loader("train", 32, seed=1, augment=True))
    assert torch.equal(after_plain, torch.get_rng_state())  # augmenting draws nothing from the global RNG
