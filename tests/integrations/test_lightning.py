"""Lightning callbacks: the range test at fit start and the divergence guard.

Tiny MLP on Gaussian blobs, CPU, a few dozen steps per fit. Both packages are tested
where installed (``lightning.pytorch`` and ``pytorch_lightning``): a Trainer accepts only
its own package's callbacks.
"""

from __future__ import annotations

import importlib
import math
import sys
import types
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrscout.errors import ConfigError, MissingDependencyError
from lrscout.results import FindResult

PACKAGES = {"lightning": "lightning.pytorch", "pytorch_lightning": "pytorch_lightning"}


def blobs(n: int = 256, seed: int = 0) -> torch.utils.data.TensorDataset:
    """Three well separated Gaussian classes in 16 dimensions."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 16, generator=g) * 2
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.TensorDataset(centers[y] + torch.randn(n, 16, generator=g), y)


def loader() -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(blobs(), batch_size=32, shuffle=True)


def make_module_class(pl: types.ModuleType) -> type:
    class Net(pl.LightningModule):  # type: ignore[misc,name-defined]
        """An MLP that logs from training_step and records the LR of every step."""

        def __init__(self, lr: float = 0.01, head_ratio: float | None = None, step_lr: bool = False) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
            self.head = nn.Linear(32, 3)
            self.seen: list[list[float]] = []

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.head(self.body(x)), y)
            self.log("train_loss", loss)  # must not break the range test
            return loss

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            self.seen.append([float(g["lr"]) for g in self.trainer.optimizers[0].param_groups])

        def configure_optimizers(self) -> Any:
            lr = self.hparams.lr
            if self.hparams.head_ratio is None:
                optimizer = torch.optim.SGD(self.parameters(), lr=lr)
            else:
                optimizer = torch.optim.SGD([
                    {"params": self.body.parameters(), "lr": lr},
                    {"params": self.head.parameters(), "lr": lr * self.hparams.head_ratio},
                ])
            if not self.hparams.step_lr:
                return optimizer
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.5)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    return Net


@pytest.fixture(params=list(PACKAGES))
def framework(request: pytest.FixtureRequest) -> tuple[types.ModuleType, types.ModuleType, type]:
    """(the Lightning package, lrscout's callbacks for it, a LightningModule class)."""
    pl = pytest.importorskip(PACKAGES[request.param])
    callbacks = importlib.import_module(f"lrscout.integrations.{request.param}")
    return pl, callbacks, make_module_class(pl)


def fit(pl: types.ModuleType, net_cls: type, callbacks: list[Any], steps: int, **hparams: Any) -> Any:
    pl.seed_everything(0, verbose=False)
    module = net_cls(**hparams)
    trainer = pl.Trainer(
        max_steps=steps, accelerator="cpu", enable_progress_bar=False, logger=False,
        enable_checkpointing=False, enable_model_summary=False, callbacks=callbacks,
    )
    trainer.fit(module, loader())
    return module


def test_fit_trains_at_the_lr_found_and_the_test_leaves_no_trace(framework: tuple) -> None:
    pl, cbs, net_cls = framework
    finder = cbs.LRFinder(num_iter=40)
    module = fit(pl, net_cls, [finder], steps=12)
    result = finder.result
    assert isinstance(result, FindResult) and len(result.history_lr) >= 20
    assert result.interval[0] <= result.lr <= result.interval[1]
    assert module.seen == [[result.lr]] * 12  # every training step ran at exactly the LR found
    assert module.hparams.lr == result.lr     # so configure_optimizers would rebuild it at that LR
    # Bitwise restore: the same fit without the callback, started at result.lr, ends with
    # the same weights (same initial weights, batch order and RNG draws).
    plain = fit(pl, net_cls, [], steps=12, lr=result.lr)
    for name, value in module.state_dict().items():
        assert torch.equal(value, plain.state_dict()[name]), name


def test_group_ratios_and_scheduler_follow_the_lr_found(framework: tuple) -> None:
    pl, cbs, net_cls = framework
    finder = cbs.LRFinder(num_iter=30)
    module = fit(pl, net_cls, [finder], steps=3, lr=1e-3, head_ratio=10.0, step_lr=True)
    lr = finder.result.lr
    for body, head in module.seen:
        assert body == pytest.approx(lr, rel=1e-12) and head == pytest.approx(10 * lr, rel=1e-12)
    scheduler = module.trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.base_lrs == pytest.approx([lr, 10 * lr], rel=1e-12)  # StepLR's next decay scales from them


def test_guard_rolls_back_a_run_started_far_too_high(framework: tuple) -> None:
    pl, cbs, net_cls = framework
    guard = cbs.DivergenceGuard()
    # lr 50 on this MLP blows up on the first update on any CPU (the loss jumps by orders
    # of magnitude); each rollback divides it by 10, and from 0.5 down it trains.
    module = fit(pl, net_cls, [guard], steps=60, lr=50.0)
    assert guard.recoveries >= 1
    assert all(e["action"] == "rollback" and e["lr_after"] == pytest.approx(e["lr_before"] / 10) for e in guard.events)
    assert module.seen[-1][0] <= 5.0
    x, y = blobs().tensors
    with torch.no_grad():
        final = float(F.cross_entropy(module.head(module.body(x)), y))
    assert math.isfinite(final) and final < math.log(3)  # finite, and better than chance


def test_bad_settings_fail_at_construction(framework: tuple) -> None:
    _, cbs, _ = framework
    with pytest.raises(ConfigError, match="start_lr"):
        cbs.LRFinder(start_lr=0.0)
    with pytest.raises(ConfigError, match="factor"):
        cbs.DivergenceGuard(factor=1.0)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lrscout.integrations.lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "lrscout.integrations.lightning")
    with pytest.raises(MissingDependencyError, match=r"pip install 'lrscout\[lightning\]'"):
        importlib.import_module("lrscout.integrations.lightning")
