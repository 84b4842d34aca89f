"""End to end: a digits-pretrained SimpleCNN fine-tuned on an MNIST slice beats training from
scratch at equal epochs; per-group LRs protect the backbone from the LR the new head wants,
and the 2-D selection measures its choice against one LR for all groups."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import pytest
import torch

import lrscout
from lrscout.data import load_dataset
from lrscout.finetuning import FinetuneResult, train_groups
from lrscout.selection.halving import promote
from lrscout.task import Task
from lrscout.training import evaluate

EPOCHS = 3
LIMIT = 1000  # 850 train / 150 validation images: the small setting of the benchmark


def mnist_task(data_dir: Path, weights: Path | None) -> Task:
    return Task(dataset="mnist", data_dir=str(data_dir), limit=LIMIT, optimizer="adam",
                weights=str(weights) if weights else None)


def full_test_acc(task: Task, out_dir: Path) -> float:
    """Accuracy of ``out_dir/last.pt`` on all 10,000 MNIST test images (the task's own test
    slice has 250: too few to tell runs apart)."""
    full = load_dataset("mnist", data_dir=task.data_dir)
    assert full.test is not None
    x, y = full.test.tensors
    info = task.splits().info
    x = (x * full.info.std[0] + full.info.mean[0] - info.mean[0]) / info.std[0]
    model = task.build_model()
    model.load_state_dict(torch.load(out_dir / "last.pt", weights_only=True)["model"])
    return evaluate(model, [(x[i : i + 2000], y[i : i + 2000]) for i in range(0, len(y), 2000)])[1]


SEEDS = range(8)  # the benchmark's seeds: one seed cannot tell a 0.5-point effect from noise
ARMS = {"scratch": {"backbone_ratio": 1.0}, "one_lr": {"backbone_ratio": 1.0}, "discriminative": {}}
Runs = dict[tuple[str, int], tuple[FinetuneResult, Path, float]]


@pytest.fixture(scope="module")
def runs(mnist_dir: Path, digits_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Every arm for every seed: a complete ``lrscout.finetune`` run (~3 s each)."""
    torch.set_num_threads(1)
    out: Runs = {}
    for seed in SEEDS:
        for name, kwargs in ARMS.items():
            path = tmp_path_factory.mktemp(f"{name}{seed}")
            task = dataclasses.replace(mnist_task(mnist_dir, None if name == "scratch" else digits_ckpt), seed=seed)
            result = lrscout.finetune(task, EPOCHS, out_dir=path, **kwargs)
            out[name, seed] = (result, path, full_test_acc(task, path))
    return out


def paired(runs: Runs, a: str, b: str) -> list[float]:
    return [runs[a, s][2] - runs[b, s][2] for s in SEEDS]


def test_finetune_beats_scratch_at_equal_epochs(runs: Runs) -> None:
    for result, _, _ in runs.values():
        assert len(result.train.epochs) == EPOCHS and result.test_acc is not None
    for arm in ("one_lr", "discriminative"):
        diffs = paired(runs, arm, "scratch")
        assert statistics.mean(diffs) > 0.02 and min(diffs) > 0  # measured: +3.6 / +4.3 points, every seed


def test_selected_discriminative_lrs_do_no_worse_than_one_lr(runs: Runs) -> None:
    """Head LR and backbone ratio chosen together against one LR chosen for every group, paired
    by seed (same head initialisation and batches). The gain is within the noise of 8 seeds
    and depends on the CPU's float kernels: +0.7 points (7 of 8 seeds) with AVX2 kernels,
    +0.2 (3 of 8) with ATEN_CPU_CAPABILITY=default, worst seed -1.0. What holds on every CPU
    is that the search costs nothing: no worse on average, no seed far worse."""
    diffs = paired(runs, "discriminative", "one_lr")
    assert statistics.mean(diffs) > -0.005
    assert min(diffs) > -0.025
    assert any(runs["discriminative", s][0].backbone_ratio < 1 for s in SEEDS)


def test_selection_measures_its_choice_against_one_lr(runs: Runs) -> None:
    disc = runs["discriminative", 0][0]
    first = disc.rung_trials(0)
    heads = {t.head_lr for t in first}
    assert {t.ratio for t in first} == {0.1, 0.3, 1.0} and len(first) == 3 * len(heads)
    last = disc.rung_trials(len(disc.plan.rungs) - 1)
    outcomes = [t.outcome() for t in last]
    assert last[promote(outcomes, 1, by="rank_sum")[0]].val_acc == disc.val_acc
    assert {g["name"]: g["lr"] for g in disc.groups} == pytest.approx(
        {"head": disc.head_lr, "backbone": disc.head_lr * disc.backbone_ratio})


def test_backbone_ratio_protects_the_backbone_at_a_high_head_lr(mnist_dir: Path, digits_ckpt: Path) -> None:
    """At a head LR of 0.1 (what a fresh head tolerates), one LR for every group wrecks the
    pretrained backbone; a backbone at a tenth of it keeps it (seed 0: 92.7 % vs 88.7 %)."""
    task = mnist_task(mnist_dir, digits_ckpt)
    shared = train_groups(task, 0.1, 1.0, EPOCHS).fit.final_val_acc
    discriminative = train_groups(task, 0.1, 0.1, EPOCHS).fit.final_val_acc
    assert discriminative > shared + 0.02


def test_files_json_and_reloadable_checkpoint(runs: Runs, mnist_dir: Path, digits_ckpt: Path) -> None:
    result, path, _ = runs["discriminative", 0]
    names = {p.name for p in path.iterdir()}
    assert {"finetune.json", "finetune.png", "find.json", "find.png", "train.json", "train.png", "last.pt",
            "report.html"} <= names
    page = (path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "data:image/png;base64," in page and "<script" not in page
    data = json.loads((path / "finetune.json").read_text())
    assert data["version"] == 1 and data["backbone_lr"] == pytest.approx(data["head_lr"] * data["backbone_ratio"])
    again = FinetuneResult.from_json(data)
    assert again.to_json() == data
    assert (path / "finetune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.glob(".*.tmp"))
    # last.pt holds the chosen run's weights under "model": --weights accepts it (fresh head)
    task = mnist_task(mnist_dir, digits_ckpt)
    model = task.build_model()
    model.load_state_dict(torch.load(path / "last.pt", weights_only=True)["model"])
    _, acc = evaluate(model, task.splits().loader("test", 256))
    assert acc == pytest.approx(result.test_acc)
    reloaded = Task(dataset="mnist", data_dir=str(mnist_dir), limit=LIMIT, weights=str(path / "last.pt")).build_model()
    assert torch.equal(reloaded.conv.weight, model.conv.weight)


def test_given_lrs_skip_the_search(mnist_dir: Path, digits_ckpt: Path) -> None:
    result = lrscout.finetune(mnist_task(mnist_dir, digits_ckpt), 1, head_lr=0.01, backbone_ratio=0.3)
    assert result.find is None and len(result.trials) == 1 and result.train.lr_source == "given"
    assert (result.head_lr, result.backbone_ratio) == (0.01, 0.3)
