"""finetune runs on select's driver: per-trial files, and a killed run resumes to the same choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lrscout.errors import ConfigError
from lrscout.finetuning import FinetuneResult, finetune
from lrscout.task import Task

from killswitch import Killed, die_after

#: digits, 300 images in batches of 32 (8 steps an epoch), 3 epochs; a 20-step range test
#: and a budget of 5 runs buy 2 head LRs x 3 ratios: 6 one-epoch trials, then 2 full runs.
KWARGS: dict[str, Any] = {"epochs": 3, "num_iter": 20, "budget": 5.0}


@pytest.fixture(scope="module")
def task(digits_ckpt: Path) -> Task:
    return Task(dataset="digits", limit=300, batch_size=32, optimizer="adam", weights=str(digits_ckpt))


@pytest.fixture(scope="module")
def uninterrupted(task: Task) -> FinetuneResult:
    return finetune(task, **KWARGS)


def comparable(result: FinetuneResult) -> dict[str, Any]:
    """The JSON without wall-clock times."""
    data = result.to_json()
    data.pop("seconds")
    data["train"].pop("seconds")
    for e in data["train"]["epochs"]:
        e.pop("seconds")
    if data["train"]["find"] is not None:
        data["train"]["find"].pop("seconds")
    for key in ("find", "ratio_find"):
        if data[key] is not None:
            data[key].pop("seconds")
    for t in data["trials"]:
        t.pop("seconds")
    return data



def test_trials_are_group_trials_of_the_plan(uninterrupted: FinetuneResult) -> None:
    r = uninterrupted
    assert [(g.length, g.size) for g in r.plan.rungs] == [(1, 6), (3, 2)]
    assert len(r.candidates) == 6 and {c.ratio for c in r.candidates} == {0.1, 0.3, 1.0}
    assert [t.rung for t in r.trials] == [0] * 6 + [1] * 2
    finalists = [t for t in r.trials if t.rung == 1]
    best = r.trials[[i for i, t in enumerate(r.trials) if t.rung == 1 and t.candidate == r.best][0]]
    assert best in finalists and (best.head_lr, best.ratio) == (r.head_lr, r.backbone_ratio)
    assert r.train.final_val_acc == best.val_acc and len(r.train.epochs) == 3  # the winner's run, not a retrain
    assert len(r.train.fit.step_lr) == 3 * 8 and r.train.lr == r.head_lr


def test_a_killed_finetune_resumes_to_the_uninterrupted_choice(task: Task, uninterrupted: FinetuneResult,
                                                               tmp_path: Path) -> None:
    ran: list[str] = []

    with pytest.raises(Killed):  # killed in rung 0, after two trials
        finetune(task, **KWARGS, out_dir=tmp_path, on_trial=die_after(ran, 2))
    assert (tmp_path / "find.json").exists() and len(list((tmp_path / "trials").glob("*.json"))) == 2
    ran.clear()
    with pytest.raises(Killed):  # killed again in the last rung, after the first finalist
        finetune(task, **KWARGS, out_dir=tmp_path, on_trial=die_after(ran, 5))
    assert [r[:3] for r in ran] == ["r0-"] * 4 + ["r1-"]
    ran.clear()
    resumed = finetune(task, **KWARGS, out_dir=tmp_path, on_trial=lambda t: ran.append(t.spec.trial_id))
    assert len(ran) == 1 and ran[0].startswith("r1-")  # only the missing finalist ran
    assert (resumed.head_lr, resumed.backbone_ratio) == (uninterrupted.head_lr, uninterrupted.backbone_ratio)
    assert comparable(resumed) == comparable(uninterrupted)  # every score, the range test, the chosen run
    names = {p.name for p in tmp_path.iterdir()}
    assert {"finetune.json", "finetune-state.json", "find.json", "report.html", "last.pt", "trials"} <= names
    assert not list(tmp_path.rglob("*.pt.*")) and not list((tmp_path / "trials").glob("*.pt"))
    saved = json.loads((tmp_path / "trials" / "r0-c0.json").read_text())
    assert saved["spec"]["kind"] == "groups" and set(saved["spec"]["params"]) == {"ratio", "layer_decay",
                                                                                   "freeze_epochs"}


def test_other_settings_in_the_same_directory_are_refused(task: Task, tmp_path: Path) -> None:
    finetune(task, epochs=1, head_lr=3e-3, backbone_ratio=0.3, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="other settings.*backbone_ratio"):
        finetune(task, epochs=1, head_lr=3e-3, backbone_ratio=0.1, out_dir=tmp_path)


def test_local_pool_gives_the_in_process_choice(task: Task, uninterrupted: FinetuneResult) -> None:
    pooled = finetune(task, **KWARGS, workers=2)
    assert comparable(pooled) == comparable(uninterrupted)
