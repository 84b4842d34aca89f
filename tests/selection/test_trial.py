"""One trial: exact continuation from a checkpoint, the compressed schedule, collapse."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrscout.schedules import schedule_for
from lrscout.selection.trial import TrialResult, TrialSpec, compressed_scheduler, run_trial
from lrscout.task import Task

TASK = Task(optimizer="adam", limit=300, batch_size=32)


def spe() -> int:
    return len(TASK.splits().loader("train", TASK.batch_size))


@pytest.mark.parametrize("kind, params", [("constant", {}), ("plateau", {"patience": 0})])
def test_continued_trial_equals_an_uninterrupted_run_bit_for_bit(tmp_path: Path, kind: str, params: dict) -> None:  # type: ignore[type-arg]
    full = schedule_for(3e-3, kind, 4, spe(), **params).to_json()
    whole = run_trial(TASK, TrialSpec("whole", 0, 3e-3, 0, 4, full), tmp_path)
    short = run_trial(TASK, TrialSpec("short", 0, 3e-3, 0, 2, full, checkpoint=True), tmp_path)
    assert (tmp_path / "short.pt").exists()
    rest = run_trial(TASK, TrialSpec("rest", 0, 3e-3, 1, 4, full, start_epoch=2, parent="short"), tmp_path)
    assert short.history + rest.history == whole.history  # every epoch's accuracy and loss, exactly
    assert (short.epochs_trained, rest.epochs_trained) == (2, 2)
    # without the checkpoint the prefix is retrained: same numbers, full cost
    again = run_trial(TASK, TrialSpec("again", 0, 3e-3, 1, 4, full, start_epoch=2, parent="gone"), tmp_path)
    assert again.history == rest.history and again.epochs_trained == 4


def test_compressed_schedule_follows_the_full_plan_at_scaled_steps() -> None:
    full = schedule_for(0.1, "step", epochs=9, steps_per_epoch=10, step_size=3, gamma=0.5)  # halves at 30, 60
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = compressed_scheduler(opt, full, epochs=3)  # 30 steps stand for 90
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1] * 10 + [0.05] * 10 + [0.025] * 10)
    assert lrs == pytest.approx([full.lr_at(t * 3) for t in range(30)])


def test_diverging_trial_is_collapsed_and_round_trips(tmp_path: Path) -> None:
    task = Task(optimizer="sgd", limit=300, batch_size=32)
    full = schedule_for(50.0, "constant", 2, len(task.splits().loader("train", 32))).to_json()
    result = run_trial(task, TrialSpec("boom", 0, 50.0, 0, 2, full), tmp_path)
    assert result.collapsed and result.note
    assert TrialResult.from_json(result.to_json()) == result


def test_every_candidate_starts_from_the_same_weights(tmp_path: Path) -> None:
    """Different LRs, one epoch of 1e-12: the models are the task's seeded init, so equal."""
    full = schedule_for(1e-12, "constant", 1, spe()).to_json()
    a = run_trial(TASK, TrialSpec("a", 0, 1e-12, 0, 1, full), tmp_path)
    b = run_trial(TASK, TrialSpec("b", 1, 1e-12, 0, 1, full), tmp_path)
    assert a.history == b.history
