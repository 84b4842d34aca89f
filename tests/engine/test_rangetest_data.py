"""The range test and its data: the stop rule needs enough points, and the loaders' own
generators are restored so the user's next epoch sees the batches it would have seen."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lrscout
from lrscout.curve import MIN_STOP_POINTS
from lrscout.errors import CurveError
from lrscout.task import Task


def random_data(n: int = 96, seed: int = 0) -> TensorDataset:
    """Random inputs, random labels: what one batch teaches says nothing about the next."""
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 20, generator=g), torch.randint(0, 4, (n,), generator=g))


def scripted(values: list[float]):  # type: ignore[no-untyped-def]
    """A criterion whose loss at call i is ``values[i]`` (with a gradient, so steps run)."""
    calls = {"n": 0}

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        v = values[min(calls["n"], len(values) - 1)]
        calls["n"] += 1
        return out.sum() * 0.0 + v

    return loss


def test_a_low_first_point_does_not_stop_the_sweep() -> None:
    # one lucky batch, then the normal level: the 4x rule on a 2-point average would fire
    model = nn.Linear(20, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.zeros(2, 20), torch.zeros(2, dtype=torch.long))]
    result = lrscout.find(model, data, opt, scripted([0.1] + [2.3] * 40), start_lr=1e-4, end_lr=1e-2,
                          num_iter=30)
    assert not result.stopped_early and len(result.history_loss) == 30


def test_the_rise_rule_still_stops_a_blow_up_after_the_first_points() -> None:
    model = nn.Linear(20, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.zeros(2, 20), torch.zeros(2, dtype=torch.long))]
    values = [2.3] * 15 + [1e4] * 20
    result = lrscout.find(model, data, opt, scripted(values), start_lr=1e-4, end_lr=1.0, num_iter=30)
    assert result.stopped_early and "diverged" in (result.stop_reason or "")
    assert len(result.history_loss) == 16  # the first blown-up point stops it
    # a loss that blows up inside the first points (and goes on growing, as blow-ups do)
    # stops a few points after MIN_STOP_POINTS
    growing = [2.3] * 3 + [10.0 * 2.0**i for i in range(40)]
    result = lrscout.find(model, data, opt, scripted(growing), start_lr=1e-4, end_lr=1.0, num_iter=40)
    assert result.stopped_early and MIN_STOP_POINTS < len(result.history_loss) <= MIN_STOP_POINTS + 5


def test_nan_still_stops_at_once() -> None:
    model = nn.Linear(20, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.zeros(2, 20), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(CurveError, match="only 1 usable points.*loss became nan"):
        lrscout.find(model, data, opt, scripted([2.3, math.nan, 2.3]), start_lr=1e-4, end_lr=1.0, num_iter=30)


def test_a_model_that_just_stepped_on_the_first_batch() -> None:
    """The user trained on the loader's first batch, then asks for an LR: that batch's loss is
    low, the next ones are not. The sweep must run on (it used to stop at point 2)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    loader = DataLoader(random_data(), batch_size=16)
    x, y = next(iter(loader))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        first, second = (float(nn.functional.cross_entropy(model(a), b)) for a, b in list(loader)[:2])
    beta = 0.98
    two_point_average = (beta * (1 - beta) * first + (1 - beta) * second) / (1 - beta**2)
    assert two_point_average > 4 * first  # the case: the old rule fired here
    sgd = torch.optim.SGD(model.parameters(), lr=0.01)
    result = lrscout.find(model, loader, sgd, start_lr=1e-5, end_lr=1e-2, num_iter=40)
    assert not result.stopped_early and len(result.history_loss) == 40
    assert result.history_loss[0] == pytest.approx(first, rel=1e-4)


def _epoch(loader: DataLoader) -> list[torch.Tensor]:
    return [y.clone() for _, y in loader]


@pytest.mark.parametrize("kind", ["generator", "sampler", "lrscout-augmented"])
def test_find_restores_the_loaders_shuffle_generator(kind: str) -> None:
    """After find, the next epoch of the user's loader is the epoch it would have been."""
    if kind == "lrscout-augmented":
        task = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=64, seed=3, augment=True)
        make = task.train_loader
        model = task.build_model(task.splits().info)
    else:
        ds = TensorDataset(torch.randn(96, 1, 8, 8), torch.arange(96))
        if kind == "generator":
            def make() -> DataLoader:
                return DataLoader(ds, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(7))
        else:
            def make() -> DataLoader:
                sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(7))
                return DataLoader(ds, batch_size=16, sampler=sampler)
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 96))
    used, untouched = make(), make()
    _epoch(used)
    _epoch(untouched)  # both one epoch in, as after some training
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    lrscout.find(model, used, opt, start_lr=1e-5, end_lr=1e-2, num_iter=9)
    after, expected = _epoch(used), _epoch(untouched)
    assert all(torch.equal(a, b) for a, b in zip(after, expected, strict=True))
    if kind == "lrscout-augmented":  # the augmentation's own generator is rewound too
        xa = next(iter(used))[0]
        xb = next(iter(untouched))[0]
        assert torch.equal(xa, xb)


def test_the_result_records_the_optimizer_steps_it_took() -> None:
    """What the sweep cost: the steps run, whatever the history holds."""
    model = nn.Linear(20, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.zeros(2, 20), torch.zeros(2, dtype=torch.long))]
    full = lrscout.find(model, data, opt, scripted([2.3] * 40), start_lr=1e-4, end_lr=1e-2, num_iter=30)
    assert full.config["steps_run"] == 30 == len(full.history_lr)
    # a divergence caught at its last point: that point is recorded, and no step more was run
    blown = lrscout.find(model, data, opt, scripted([2.3] * 29 + [1e4]), start_lr=1e-4, end_lr=1.0, num_iter=30)
    assert blown.stopped_early and blown.config["steps_run"] == 30 == len(blown.history_lr)
    # a NaN is not recorded, but its step was run
    nan = lrscout.find(model, data, opt, scripted([2.3] * 20 + [math.nan]), start_lr=1e-4, end_lr=1.0, num_iter=30)
    assert nan.stopped_early and nan.config["steps_run"] == 21 == len(nan.history_lr) + 1
    # validation-loss mode records a point every val_every steps and pays for every step
    val = [(torch.zeros(2, 20), torch.zeros(2, dtype=torch.long))]
    sparse = lrscout.find(model, data, opt, scripted([2.3] * 200), start_lr=1e-4, end_lr=1e-2, num_iter=30,
                          val_data=val, val_every=5)
    assert sparse.config["steps_run"] == 30 > len(sparse.history_lr)
