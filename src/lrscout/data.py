"""Dataset registry: real image data as in-memory train / validation / test splits.

Every dataset is loaded with torchvision's own loaders (``MNIST``, ``FashionMNIST``,
``KMNIST``, ``USPS``, ``CIFAR10``, ``ImageFolder``) or scikit-learn's bundled digits, then
held as normalised float tensors: the small vision sets lrscout tunes on fit in memory, and
batching straight from tensors makes the many short trial runs of ``select`` cheap.

The validation split is always carved from the training data with a seeded permutation;
the test split is the dataset's own test set (or a held-out slice for digits), never used
to choose anything.

Example::

    splits = load_dataset("digits", seed=0)
    train_loader = splits.loader("train", batch_size=64, seed=0)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from .errors import DataError, unknown_name

#: Where ``--data-dir`` points when not given: $LRSCOUT_DATA_DIR, else ./data.
DEFAULT_DATA_DIR = "data"


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the images."""

    name: str
    channels: int
    num_classes: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class DataSplits:
    """Normalised tensors for train / val / test plus the data's shape info."""

    info: DataInfo
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset | None

    def loader(self, split: str, batch_size: int, *, seed: int = 0, shuffle: bool | None = None,
               augment: bool = False) -> DataLoader[Any]:
        """A DataLoader that fetches whole batches by index (fast on in-memory tensors).

        Training batches are shuffled with a generator seeded by ``seed`` so that two
        runs with the same seed see the same batches. ``augment`` passes each batch
        through :func:`random_affine` with its own generator (seeded from ``seed``, so
        augmented runs repeat too, and the global RNG is left alone).
        """
        if batch_size < 1:
            raise DataError(f"batch size must be >= 1, got {batch_size}")
        ds = getattr(self, split)
        if ds is None:
            raise DataError(f"dataset {self.info.name!r} has no {split} split")
        shuffle = (split == "train") if shuffle is None else shuffle
        if shuffle:
            gen = torch.Generator().manual_seed(seed)
            sampler: RandomSampler | SequentialSampler = RandomSampler(ds, generator=gen)
        else:
            sampler = SequentialSampler(ds)
        batches = BatchSampler(sampler, batch_size=batch_size, drop_last=False)
        if augment:
            return DataLoader(ds, sampler=batches, batch_size=None, collate_fn=_Augment(seed))  # type: ignore[arg-type]  # a whole batch: batch_size=None
        return DataLoader(ds, sampler=batches, batch_size=None)


def random_affine(x: torch.Tensor, generator: torch.Generator, degrees: float = 15.0, scale: float = 0.2,
                  shift: float = 0.15) -> torch.Tensor:
    """Each image of a batch ``(N, C, H, W)`` rotated by up to ±``degrees``, scaled by up to
    ±``scale`` and shifted by up to ±``shift`` of the frame (the classic digit augmentation;
    zeros fill in, which is the background after normalisation only for zero-mean data:
    apply it before normalising, or accept a faint border)."""
    n = len(x)
    angle = (torch.rand(n, generator=generator) - 0.5) * math.radians(2 * degrees)
    factor = 1 + (torch.rand(n, generator=generator) - 0.5) * 2 * scale
    offset = (torch.rand(n, 2, generator=generator) - 0.5) * 2 * shift
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, align_corners=False)


class _Augment:
    """collate_fn for whole-batch loading: ``(x, y)`` -> ``(random_affine(x), y)``."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed + 7919)

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        return random_affine(x, self.generator), y


def _data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir or os.environ.get("LRSCOUT_DATA_DIR") or DEFAULT_DATA_DIR)


def _split_train_val(
    x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    n = len(y)
    n_val = max(1, int(round(n * val_fraction)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _limit(x: torch.Tensor, y: torch.Tensor, limit: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if limit is None or limit >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 1))[:limit]
    return x[idx], y[idx]


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of ``(N, C, H, W)`` images, as float32.

    Summed in float64 by numpy on one thread: torch splits a float32 reduction by its
    thread count, so the statistics (and every trial after them) would change in the last
    bits with the threads the data happened to be loaded under.
    """
    a = x.detach().cpu().numpy().astype(np.float64).transpose(1, 0, 2, 3).reshape(x.shape[1], -1)
    mean = a.mean(axis=1)
    std = np.maximum(a.std(axis=1, ddof=1), 1e-6)
    return torch.from_numpy(mean).float(), torch.from_numpy(std).float()


def _finish(
    name: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None,
    *,
    val_fraction: float,
    seed: int,
    limit: int | None,
) -> DataSplits:
    """Scale to [0,1] floats, split val from train, normalise with train statistics."""
    x, y = _limit(*train, limit, seed)
    if len(y) == 0:
        raise DataError(f"dataset {name!r} is empty")
    classes = torch.unique(y)
    if len(classes) < 2:
        raise DataError(f"dataset {name!r} has only one class; a classifier needs at least two")
    (xtr, ytr), (xva, yva) = _split_train_val(x, y, val_fraction, seed)
    mean, std = channel_stats(xtr)

    def norm(t: torch.Tensor) -> torch.Tensor:
        return ((t - mean[None, :, None, None]) / std[None, :, None, None]).contiguous()

    info = DataInfo(
        name=name,
        channels=int(x.shape[1]),
        num_classes=int(y.max().item()) + 1,
        image_size=(int(x.shape[2]), int(x.shape[3])),
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )
    test_ds = None
    if test is not None:
        xte, yte = _limit(*test, None if limit is None else max(limit // 4, 1), seed)
        test_ds = TensorDataset(norm(xte), yte.long())
    return DataSplits(info, TensorDataset(norm(xtr), ytr.long()), TensorDataset(norm(xva), yva.long()), test_ds)


def _sklearn_digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 of sklearn's bundled 8x8 digits (no download ever) in [0, 1], resized
    bilinearly to ``size`` x ``size``, in sklearn's order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x, torch.tensor(bunch.target, dtype=torch.long)


def digits_mnist_style() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits drawn the way MNIST was: scaled to 20x20 and centred in a 28x28
    frame, values in [0, 1] (the ``digits-mnist`` dataset before splitting and
    normalising). A backbone trained on these, augmented, transfers to MNIST."""
    x, y = _sklearn_digits(20)
    return torch.nn.functional.pad(x, (4, 4, 4, 4)), y


def _held_out(x: torch.Tensor, y: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The digits' fixed test slice (297 images, ~1/6) and the rest."""
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    n_test = 297
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def _digits(data_dir: Path, download: bool) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """sklearn's bundled 8x8 digits, upsampled to fill MNIST's 28x28 frame."""
    return _held_out(*_sklearn_digits(28))


def _digits_mnist(data_dir: Path, download: bool) -> tuple[Any, ...]:
    """The same digits drawn MNIST's way (:func:`digits_mnist_style`); ``digits`` fills the frame."""
    return _held_out(*digits_mnist_style())


def _torchvision_grey(cls_name: str) -> Callable[[Path, bool], tuple[Any, ...]]:
    def load(data_dir: Path, download: bool) -> tuple[Any, ...]:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        try:
            train = cls(str(data_dir), train=True, download=download)
            test = cls(str(data_dir), train=False, download=download)
        except RuntimeError as exc:
            if "not found" not in str(exc):  # torchvision: "Dataset not found. You can use download=True"
                raise _damaged(f"{cls_name} files under {data_dir / cls_name / 'raw'}", exc) from exc
            raise DataError(
                f"{cls_name} not found under {data_dir}: point data_dir at the folder that holds "
                f"{cls_name}/raw, or allow download", argument=("data_dir", "download")
            ) from exc
        except _DECODE_ERRORS as exc:  # an IDX header or size that does not add up (AssertionError, ...)
            raise _damaged(f"{cls_name} files under {data_dir / cls_name / 'raw'}", exc) from exc
        return _grey_tensors(train), _grey_tensors(test)

    return load


#: What reading a damaged data file raises: torchvision's IDX reader asserts, PIL raises
#: OSError (UnidentifiedImageError) or SyntaxError, bz2 / gzip OSError or EOFError.
_DECODE_ERRORS = (AssertionError, ValueError, IndexError, OSError, EOFError, SyntaxError, RuntimeError)


def _damaged(what: str, exc: BaseException) -> DataError:
    """The one-line error for data that exists but cannot be decoded."""
    detail = " ".join(str(exc).split())[:200]
    return DataError(f"{what} are truncated or corrupt ({type(exc).__name__}{': ' + detail if detail else ''})")


def _grey_tensors(ds: object) -> tuple[torch.Tensor, torch.Tensor]:
    data = getattr(ds, "data")
    targets = getattr(ds, "targets")
    x = torch.as_tensor(np.asarray(data))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    else:  # USPS stores floats in [0, 255]
        x = x.float() / max(float(x.max()), 1.0)
    return x[:, None], torch.as_tensor(np.asarray(targets), dtype=torch.long)


def _usps(data_dir: Path, download: bool) -> tuple[Any, ...]:
    import torchvision.datasets as tvd

    root = data_dir / "USPS" if (data_dir / "USPS").is_dir() else data_dir
    files = [root / tvd.USPS.split_list[split][1] for split in ("train", "test")]
    if not download and not all(f.is_file() for f in files):
        raise DataError(f"USPS not found under {data_dir} (no {' or '.join(f.name for f in files)}); set data_dir "
                        "or allow download", argument=("data_dir", "download"))
    try:
        train = tvd.USPS(str(root), train=True, download=download)
        test = tvd.USPS(str(root), train=False, download=download)
    except _DECODE_ERRORS as exc:
        raise _damaged(f"USPS files under {root}", exc) from exc
    return _grey_tensors(train), _grey_tensors(test)


def _image_folder_tensors(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every image of an ImageFolder tree once (torchvision's loader), at one size."""
    import torchvision.datasets as tvd
    import torchvision.transforms as T
    from PIL import Image

    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    try:
        probe = tvd.ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"no images found under {root} (expected {root}/<class>/*.png)") from exc
    if len(probe) == 0:
        raise DataError(f"no images found under {root}")
    try:
        with Image.open(probe.samples[0][0]) as first:
            mode = "L" if first.mode in ("L", "1", "I;16", "I") else "RGB"
            size = (first.height, first.width)
    except _DECODE_ERRORS as exc:
        raise _image_error(probe.samples[0][0], exc) from exc
    tf = T.Compose([T.Resize(size), T.ToTensor()])
    ds = tvd.ImageFolder(str(root), transform=tf, loader=lambda p: Image.open(p).convert(mode))
    xs, ys = [], []
    for i, (path, _) in enumerate(ds.samples):
        try:
            x, y = ds[i]
        except _DECODE_ERRORS as exc:
            raise _image_error(path, exc) from exc
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long)


def _image_error(path: str, exc: BaseException) -> DataError:
    return DataError(f"image {path} is truncated or corrupt ({type(exc).__name__})")


def _imagefolder(data_dir: Path, download: bool) -> tuple[Any, ...]:
    """``root/class/*.png``; with ``root/train`` and ``root/test`` (or ``val``) used as splits."""
    if download:
        raise DataError("imagefolder data cannot be downloaded; point data_dir at your images", argument="data_dir")
    if not data_dir.exists():
        raise DataError(f"data dir {data_dir} does not exist")
    if (data_dir / "train").is_dir():
        test_dir = next((data_dir / d for d in ("test", "val") if (data_dir / d).is_dir()), None)
        train = _image_folder_tensors(data_dir / "train")
        return train, (_image_folder_tensors(test_dir) if test_dir else None)
    return _image_folder_tensors(data_dir), None


def _cifar10(data_dir: Path, download: bool) -> tuple[Any, ...]:
    """torchvision's CIFAR10 if its batches are there (or --download), else an ImageFolder
    tree such as ``CIFAR10-subset/{train,test}`` under the data dir."""
    import torchvision.datasets as tvd

    if download or (data_dir / "cifar-10-batches-py").is_dir():
        train = tvd.CIFAR10(str(data_dir), train=True, download=download)
        test = tvd.CIFAR10(str(data_dir), train=False, download=download)

        def tensors(ds: tvd.CIFAR10) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.as_tensor(ds.data).permute(0, 3, 1, 2).float() / 255.0
            return x, torch.as_tensor(ds.targets, dtype=torch.long)

        return tensors(train), tensors(test)
    for sub in ("CIFAR10-subset", "cifar10"):
        if (data_dir / sub / "train").is_dir():
            return _imagefolder(data_dir / sub, False)
    raise DataError(
        f"CIFAR-10 not found under {data_dir} (no cifar-10-batches-py or CIFAR10-subset/train); "
        "set data_dir or allow download", argument=("data_dir", "download")
    )


#: name -> loader(data_dir, download) -> ((x_train, y_train), (x_test, y_test) | None)
DATASETS: dict[str, Callable[[Path, bool], tuple[Any, ...]]] = {
    "digits": _digits,
    "digits-mnist": _digits_mnist,
    "mnist": _torchvision_grey("MNIST"),
    "fashion-mnist": _torchvision_grey("FashionMNIST"),
    "kmnist": _torchvision_grey("KMNIST"),
    "usps": _usps,
    "cifar10": _cifar10,
    "imagefolder": _imagefolder,
}


#: Datasets that ship with a package (scikit-learn): no data dir, never a download.
BUNDLED = frozenset({"digits", "digits-mnist"})


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_fraction: float = 0.15,
    seed: int = 0,
    limit: int | None = None,
) -> DataSplits:
    """Load a registered dataset as normalised in-memory splits.

    ``limit`` keeps a seeded random subset of the training images (tests, quick runs);
    ``val_fraction`` of what remains becomes the validation split.
    """
    if name not in DATASETS:
        raise unknown_name("dataset", name, list(DATASETS))
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if limit is not None and limit < 10:
        raise DataError(f"limit must be >= 10 images, got {limit}")
    root = _data_dir(data_dir)
    if name not in BUNDLED and not download and not root.exists():
        raise DataError(f"data_dir {root} does not exist (set data_dir, or allow download)",
                        argument=("data_dir", "download"))
    train, test = DATASETS[name](root, download)
    return _finish(name, train, test, val_fraction=val_fraction, seed=seed, limit=limit)
