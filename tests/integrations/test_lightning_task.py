"""select on a LightningModule + LightningDataModule through lightning_task.

Tiny MLP on Gaussian blobs, CPU; ``select`` at two epochs and a small budget.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lrscout
from lrscout.errors import ConfigError

pl = pytest.importorskip("lightning.pytorch")
from lrscout.integrations._lightning import configured_optimizer  # noqa: E402
from lrscout.integrations.lightning import lightning_task  # noqa: E402


def blobs(n: int, seed: int) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 16, generator=g) * 2
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.TensorDataset(centers[y] + 1.5 * torch.randn(n, 16, generator=g), y)


class BlobsData(pl.LightningDataModule):
    def setup(self, stage: str) -> None:
        self.train, self.val = blobs(256, 1), blobs(128, 2)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.train, batch_size=16, shuffle=True,
                                           generator=torch.Generator().manual_seed(0))

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.val, batch_size=64)


class LitMLP(pl.LightningModule):
    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return {"loss": loss}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log_dict({"val_loss": F.cross_entropy(logits, y), "val_err": (logits.argmax(1) != y).float().mean()})

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 10)}


def test_select_runs_on_a_lightning_module_and_datamodule(tmp_path: Any) -> None:
    task = lightning_task(LitMLP, BlobsData, metric="val_err", higher_is_better=False, name="lit-blobs")
    assert isinstance(task, lrscout.TrainingTask)
    optimizer = task.build_optimizer(task.build_model().parameters(), 0.05)
    assert type(optimizer) is torch.optim.SGD and optimizer.defaults["momentum"] == 0.9
    assert optimizer.param_groups[0]["lr"] == 0.05  # configure_optimizers's optimizer, at lrscout's LR
    pickle.loads(pickle.dumps(task))  # it can travel to pool and Ray workers
    result = lrscout.select(task, epochs=3, budget=3.0, find_kwargs={"num_iter": 60}, out_dir=tmp_path / "select")
    assert result.candidates and math.isfinite(result.lr) and result.lr > 0
    assert 0.0 <= result.score < 0.2  # validation error of the choice, from validation_step's log
    assert (tmp_path / "select" / "select.json").is_file()


def test_the_metric_must_be_logged() -> None:
    task = lightning_task(LitMLP, BlobsData, metric="val_acc")
    with pytest.raises(ConfigError, match="val_err, val_loss"):
        task.evaluate(task.build_model())


def test_every_form_of_configure_optimizers_gives_its_one_optimizer() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    opt = torch.optim.Adam(params, lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5)
    for form in (opt, [opt], (opt,), ([opt], [sched]), {"optimizer": opt, "lr_scheduler": sched},
                 [{"optimizer": opt, "lr_scheduler": {"scheduler": sched}}]):
        assert configured_optimizer(form) is opt
    other = torch.optim.SGD(params, lr=0.1)
    with pytest.raises(ConfigError, match="2 optimizers"):
        configured_optimizer([opt, other])
    with pytest.raises(ConfigError, match="not an optimizer"):
        configured_optimizer(None)
