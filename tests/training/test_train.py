"""``lrscout.train``: files written, result round trip, checkpoints, interrupts, guard stop."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

import lrscout
from lrscout.errors import ConfigError
from lrscout.task import Task
from lrscout.training import TrainResult, evaluate, read_loss_log

TASK = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=400)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_train_writes_every_file_and_the_result_round_trips(tmp_path: Path) -> None:
    result = lrscout.train(TASK, lr=0.1, schedule="cosine", epochs=2, out_dir=tmp_path)
    spe = result.steps_per_epoch
    assert spe == 11  # 400 images - 15% validation = 340 -> 11 batches of 32
    assert result.lr == 0.1 and result.lr_source == "given" and result.find is None
    assert result.schedule["kind"] == "cosine" and result.finished and result.stopped is None
    assert [e.epoch for e in result.epochs] == [1, 2] and not result.events
    assert result.best_val_acc > 0.5

    metrics = rows(tmp_path / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == list(range(2 * spe))
    assert {int(r["epoch"]) for r in metrics} == {1, 2}
    assert [float(r["loss"]) for r in metrics] == pytest.approx(list(result.fit.step_loss))
    assert float(metrics[0]["lr"]) == pytest.approx(result.fit.step_lr[0])
    epochs = rows(tmp_path / "epochs.csv")
    assert [float(r["val_acc"]) for r in epochs] == pytest.approx([e.val_acc for e in result.epochs])

    data = json.loads((tmp_path / "train.json").read_text())
    assert data["version"] == 1 and data["finished"] is True and data["task"]["limit"] == 400
    assert TrainResult.from_json(data).to_json() == data
    assert (tmp_path / "train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))

    best = torch.load(tmp_path / "best.pt")
    assert best["epoch"] == result.best_epoch and best["schedule"]["kind"] == "cosine"
    model = TASK.build_model()
    model.load_state_dict(best["model"])
    _, acc = evaluate(model, TASK.splits().loader("val", 256))
    assert acc == pytest.approx(best["val_acc"])
    assert torch.load(tmp_path / "last.pt")["epoch"] == 2


def test_lr_find_uses_the_range_test_recommendation(tmp_path: Path) -> None:
    seen: list[str] = []
    result = lrscout.train(TASK, lr="find", schedule="onecycle", epochs=1, out_dir=tmp_path,
                           progress=lambda phase, done, total, info: seen.append(phase))
    assert result.find is not None and result.lr_source == "find"
    assert result.lr == result.find.lr == result.schedule["lr"]
    assert seen[0] == "find" and "train" in seen and seen[-1] == "epoch"
    data = json.loads((tmp_path / "train.json").read_text())
    assert data["find"]["lr"] == result.lr
    assert TrainResult.from_json(data).find == result.find


def test_interrupt_leaves_the_files_of_the_last_complete_epoch(tmp_path: Path) -> None:
    def progress(phase: str, done: int, total: int, info: str) -> None:
        if phase == "train" and done == 11 + 5:  # Ctrl-C in the middle of epoch 2
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lrscout.train(TASK, lr=0.1, schedule="constant", epochs=3, out_dir=tmp_path, progress=progress)
    data = json.loads((tmp_path / "train.json").read_text())
    assert data["finished"] is False and [e["epoch"] for e in data["epochs"]] == [1]
    assert len(rows(tmp_path / "metrics.csv")) == 11 and len(rows(tmp_path / "epochs.csv")) == 1
    assert torch.load(tmp_path / "last.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = torch.save
    calls = {"n": 0}

    def dying_save(obj: object, f: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2's last.pt: half the bytes, then the process is gone
            Path(str(f)).write_bytes(b"PK\x03\x04 partial")
            raise KeyboardInterrupt
        real_save(obj, f)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        lrscout.train(TASK, lr=0.1, schedule="constant", epochs=3, out_dir=tmp_path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(tmp_path / "last.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_guard_on_by_default_rescues_a_far_too_high_lr(tmp_path: Path) -> None:
    result = lrscout.train(TASK, lr=5.0, schedule="onecycle", epochs=3, out_dir=tmp_path)
    assert result.events and result.stopped is None
    assert result.lr_scale < 1.0
    assert all(math.isfinite(e.val_loss) for e in result.epochs[-1:])
    assert result.final_val_acc > 0.5
    marked = [r for r in rows(tmp_path / "metrics.csv") if r["event"]]
    assert [int(r["step"]) for r in marked] == [e["step"] for e in result.events]
    assert json.loads((tmp_path / "train.json").read_text())["events"][0]["kind"] in ("nan", "spike", "growth")


def test_guard_stops_after_max_recoveries_with_usable_weights(tmp_path: Path) -> None:
    result = lrscout.train(TASK, lr=1000.0, schedule="constant", epochs=2, out_dir=tmp_path, max_recoveries=0)
    assert result.stopped is not None and "after 0 recoveries" in result.stopped
    assert [e["action"] for e in result.events] == ["stop"]
    assert len(result.epochs) == 1 and result.finished
    last = torch.load(tmp_path / "last.pt")
    assert all(torch.isfinite(v).all() for v in last["model"].values())


def test_tensorboard_log_can_be_diagnosed(tmp_path: Path) -> None:
    lrscout.train(TASK, lr=0.1, schedule="constant", epochs=1, out_dir=tmp_path, tensorboard=True)
    log = read_loss_log(tmp_path / "tb")
    assert log.loss_name == "train/loss" and log.losses.size == 11


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "bogus"}, "unknown schedule 'bogus'"),
        ({"schedule": "cosine", "warmup": 3}, "unknown parameter"),
        ({"lr": "fast"}, "positive number or 'find'"),
        ({"lr": -0.1}, "positive finite"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"tensorboard": True}, "needs an output directory"),
    ],
)
def test_bad_arguments_fail_before_any_training(kwargs: dict, message: str) -> None:
    calls: list[str] = []
    args = {"lr": "find", **kwargs}
    with pytest.raises(ConfigError, match=message):
        lrscout.train(TASK, progress=lambda *a: calls.append(a[0]), **args)
    assert calls == []  # not even the range test ran


def test_public_names() -> None:
    for name in ("train", "Guard", "diagnose", "TrainResult", "Diagnosis", "schedule_for"):
        assert name in lrscout.__all__ and hasattr(lrscout, name)
