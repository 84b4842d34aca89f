"""``train(resume=True)`` / ``lrscout train --resume DIR``: an interrupted run continued from its
last.pt ends bitwise where the uninterrupted run ends; a folder holding a run is refused
without ``force``, and ``force`` leaves no file of the older run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import lrscout
from lrscout.errors import ConfigError
from lrscout.task import Task
from lrscout.training import resume_train

# momentum (optimizer state), onecycle (scheduler state), augmentation (its own generator),
# shuffled batches (the sampler's generator) and the guard (on by default): all must resume
TASK = Task(dataset="digits", model="simplecnn", optimizer="sgdm", batch_size=32, limit=400, augment=True)
RUN: dict[str, Any] = {"lr": 0.05, "schedule": "onecycle", "epochs": 4}
SPE = 11  # 340 training images in batches of 32


class Interrupted(Exception):
    pass


def interrupt_at(phase: str, done: int):  # type: ignore[no-untyped-def]
    def progress(p: str, d: int, total: int, info: str) -> None:
        if p == phase and d == done:
            raise Interrupted

    return progress


def metric_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.Tensor]:
    torch.set_num_threads(1)  # as the tests (module fixtures run before the autouse one)
    out = tmp_path_factory.mktemp("whole")
    lrscout.train(TASK, **RUN, out_dir=out)
    return out, torch.get_rng_state()


def assert_same_run(resumed: Path, whole: Path) -> None:
    a, b = torch.load(resumed / "last.pt"), torch.load(whole / "last.pt")
    assert a["epoch"] == b["epoch"] == RUN["epochs"]
    for key, value in b["model"].items():
        assert torch.equal(a["model"][key], value), key  # bitwise
    for pid, st in b["optimizer"]["state"].items():
        assert torch.equal(a["optimizer"]["state"][pid]["momentum_buffer"], st["momentum_buffer"])
    assert a["scheduler"] == b["scheduler"]
    assert metric_rows(resumed / "metrics.csv") == metric_rows(whole / "metrics.csv")
    ra, rb = (json.loads((d / "train.json").read_text()) for d in (resumed, whole))
    assert ra["finished"] and ra["steps"] == rb["steps"] and ra["best_epoch"] == rb["best_epoch"]
    assert [e["val_acc"] for e in ra["epochs"]] == [e["val_acc"] for e in rb["epochs"]]


@pytest.mark.parametrize("where", [("epoch", 2), ("train", 2 * SPE + 5)], ids=["after-epoch-2", "inside-epoch-3"])
def test_a_resumed_run_ends_bitwise_where_the_uninterrupted_one_does(
        uninterrupted: tuple[Path, torch.Tensor], tmp_path: Path, where: tuple[str, int]) -> None:
    whole, rng_after_whole = uninterrupted
    with pytest.raises(Interrupted):
        lrscout.train(TASK, **RUN, out_dir=tmp_path, progress=interrupt_at(*where))
    assert torch.load(tmp_path / "last.pt")["epoch"] == 2
    torch.manual_seed(12345)  # whatever the process did in between
    seen: list[tuple[str, int]] = []
    result = lrscout.train(TASK, **RUN, out_dir=tmp_path, resume=True,
                           progress=lambda p, d, t, i: seen.append((p, d)))
    assert seen[0] == ("train", 2 * SPE + 1)  # the first step of epoch 3; no range test, no replay
    assert [e.epoch for e in result.epochs] == [1, 2, 3, 4] and len(result.fit.step_loss) == 4 * SPE
    assert_same_run(tmp_path, whole)
    assert torch.equal(torch.get_rng_state(), rng_after_whole)  # the random streams went on as in one run


def test_resume_train_reads_the_settings_from_the_folder_and_the_cli_resumes(
        uninterrupted: tuple[Path, torch.Tensor], tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    whole, _ = uninterrupted
    with pytest.raises(Interrupted):
        lrscout.train(TASK, **RUN, out_dir=tmp_path / "api", progress=interrupt_at("epoch", 1))
    resume_train(tmp_path / "api")
    assert_same_run(tmp_path / "api", whole)

    with pytest.raises(Interrupted):
        lrscout.train(TASK, **RUN, out_dir=tmp_path / "cli", progress=interrupt_at("epoch", 3))
    code, _, err = run_cli("train", "--resume", str(tmp_path / "cli"), "--json")
    assert code == 0, err
    assert_same_run(tmp_path / "cli", whole)


def test_a_folder_holding_a_run_is_refused_before_any_work(tmp_path: Path) -> None:
    small = {"lr": 0.1, "schedule": "constant", "epochs": 1}
    lrscout.train(TASK, **small, out_dir=tmp_path, tensorboard=True)
    calls: list[str] = []
    with pytest.raises(ConfigError, match="holds another training run.*resume.*force"):
        lrscout.train(TASK, lr="find", out_dir=tmp_path, progress=lambda *a: calls.append(a[0]))
    assert calls == []  # not even the range test
    with pytest.raises(ConfigError, match="finished run"):
        lrscout.train(TASK, **small, out_dir=tmp_path, tensorboard=True, resume=True)
    with pytest.raises(ConfigError, match="other settings.*epochs"):
        lrscout.train(TASK, **{**small, "epochs": 2}, out_dir=tmp_path, tensorboard=True, resume=True)
    with pytest.raises(ConfigError, match="no last.pt"):
        lrscout.train(TASK, **small, out_dir=tmp_path / "empty", resume=True)
    with pytest.raises(ConfigError, match="exclude each other"):
        lrscout.train(TASK, **small, out_dir=tmp_path, resume=True, force=True)


def test_force_leaves_no_file_of_the_older_run(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    lrscout.train(TASK, lr=0.1, schedule="constant", epochs=1, out_dir=tmp_path, tensorboard=True)
    (tmp_path / "notes.txt").write_text("the user's own file")
    assert {"train.png", "last.pt", "best.pt", "tb"} <= {p.name for p in tmp_path.iterdir()}
    # the replacing run is interrupted in its first epoch: nothing of the old run may stand
    with pytest.raises(Interrupted):
        lrscout.train(TASK, lr=0.1, schedule="cosine", epochs=2, out_dir=tmp_path, force=True,
                      progress=interrupt_at("train", 3))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lrscout.lock") == ["notes.txt"]
    code, _, err = run_cli("train", "--lr", "0.1", "--epochs", "1", "--limit", "400", "--out", str(tmp_path))
    assert code == 0, err  # the interrupted start wrote nothing, so the folder is free again
    code, _, err = run_cli("train", "--lr", "0.1", "--epochs", "1", "--limit", "400", "--out", str(tmp_path))
    assert code == 2 and "holds another training run" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("train", "--lr", "0.1", "--epochs", "1", "--limit", "400", "--out", str(tmp_path),
                           "--force")
    assert code == 0, err
