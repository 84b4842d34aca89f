"""One trial: exact continuation from a checkpoint, the compressed schedule, collapse."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrscout.errors import ConfigError
from lrscout.schedules import schedule_for
from lrscout.selection.trial import TrialResult, TrialSpec, compressed_scheduler, run_trial
from lrscout.task import Task

TASK = Task(optimizer="adam", limit=300, batch_size=32)


def spe() -> int:
    return len(TASK.splits().loader("train", TASK.batch_size))


@pytest.mark.parametrize("kind, params", [("constant", {}), ("plateau", {"patience": 0})])
def test_continued_trial_equals_an_uninterrupted_run_bit_for_bit(tmp_path: Path, kind: str, params: dict) -> None:  # type: ignore[type-arg]
    n = spe()
    full = schedule_for(3e-3, kind, 4, n, **params).to_json()
    whole = run_trial(TASK, TrialSpec("whole", 0, 3e-3, 0, 4 * n, full), tmp_path)
    short = run_trial(TASK, TrialSpec("short", 0, 3e-3, 0, 2 * n, full, checkpoint=True), tmp_path)
    assert (tmp_path / "short.pt").exists()
    rest = run_trial(TASK, TrialSpec("rest", 0, 3e-3, 1, 4 * n, full, start_step=2 * n, parent="short"), tmp_path)
    assert short.history + rest.history == whole.history  # every epoch's accuracy and loss, exactly
    assert (short.steps_trained, rest.steps_trained) == (2 * n, 2 * n)
    # without the checkpoint the prefix is retrained: same numbers, full cost
    again = run_trial(TASK, TrialSpec("again", 0, 3e-3, 1, 4 * n, full, start_step=2 * n, parent="gone"), tmp_path)
    assert again.history == rest.history and again.steps_trained == 4 * n


@pytest.mark.parametrize("augment", [False, True])
def test_a_trial_continued_from_inside_an_epoch_ends_like_an_uninterrupted_run(tmp_path: Path,
                                                                             augment: bool) -> None:
    """A one-epoch protocol halved in steps: the short trial stops mid-epoch (validated
    there), the finalist goes on from its checkpoint over the rest of the same batches
    (and the same augmentation draws) and ends exactly where an uninterrupted run ends."""
    task = Task(optimizer="adam", limit=300, batch_size=32, augment=augment)
    n = len(task.train_loader())
    half = n // 2 + 1  # not an epoch boundary
    full = schedule_for(3e-3, "constant", 2, n).to_json()
    whole = run_trial(task, TrialSpec("whole", 0, 3e-3, 0, 2 * n, full), tmp_path)
    short = run_trial(task, TrialSpec("short", 0, 3e-3, 0, half, full, checkpoint=True), tmp_path)
    assert [e.step for e in short.history] == [half] and short.steps_trained == half
    rest = run_trial(task, TrialSpec("rest", 0, 3e-3, 1, 2 * n, full, start_step=half, parent="short"), tmp_path)
    assert [e.step for e in rest.history] == [n, 2 * n] and rest.steps_trained == 2 * n - half
    assert (rest.val_acc, rest.val_loss) == (whole.val_acc, whole.val_loss)
    assert rest.history[-1] == whole.history[-1]
    # the first epoch's record differs only in its training loss (measured over fewer batches)
    assert (rest.history[0].val_acc, rest.history[0].val_loss) == (whole.history[0].val_acc, whole.history[0].val_loss)


def test_trial_spec_checks_its_steps() -> None:
    full = schedule_for(0.1, "constant", 2, 10).to_json()
    assert TrialSpec("t", 0, 0.1, 0, 5, full).epochs == 0.5 and not TrialSpec("t", 0, 0.1, 0, 5, full).full
    assert TrialSpec("t", 0, 0.1, 1, 20, full, start_step=5).full
    with pytest.raises(ConfigError, match="start step"):
        TrialSpec("t", 0, 0.1, 1, 5, full, start_step=5)


def test_compressed_schedule_follows_the_full_plan_at_scaled_steps() -> None:
    full = schedule_for(0.1, "step", epochs=9, steps_per_epoch=10, step_size=3, gamma=0.5)  # halves at 30, 60
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = compressed_scheduler(opt, full, steps=30)  # 30 steps stand for 90
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
    result = run_trial(task, TrialSpec("boom", 0, 50.0, 0, 2 * len(task.train_loader()), full), tmp_path)
    assert result.collapsed and result.note
    assert TrialResult.from_json(result.to_json()) == result


def test_every_candidate_starts_from_the_same_weights(tmp_path: Path) -> None:
    """Different LRs, one epoch of 1e-12: the models are the task's seeded init, so equal."""
    full = schedule_for(1e-12, "constant", 1, spe()).to_json()
    a = run_trial(TASK, TrialSpec("a", 0, 1e-12, 0, spe(), full), tmp_path)
    b = run_trial(TASK, TrialSpec("b", 1, 1e-12, 0, spe(), full), tmp_path)
    assert a.history == b.history
