"""The 2-D candidate set and its halving: pure grid maths, gradual unfreezing, budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lrscout.errors import ConfigError
from lrscout.finetuning import Candidate, GroupTrial, candidate_grid, ratio_candidates, select_groups, train_groups
from lrscout.finetuning.run import _head_count, head_lr_candidates
from lrscout.finetuning.select2d import DEFAULT_RATIOS, plan_grid
from lrscout.results import FindResult
from lrscout.selection.candidates import candidate_lrs
from lrscout.task import Task


def test_ratio_candidates() -> None:
    assert ratio_candidates() == DEFAULT_RATIOS == (0.1, 0.3, 1.0)
    assert ratio_candidates((0.01, 5.0)) == (0.01, 0.1, 1.0)
    assert ratio_candidates((0.002, 0.2)) == (0.002, 0.02, 0.2, 1.0)  # 1.0 always competes
    assert ratio_candidates((3.0, 8.0)) == (1.0,)
    with pytest.raises(ConfigError):
        ratio_candidates((0.0, 1.0))


def test_candidate_grid_is_ratio_major_and_sorted() -> None:
    grid = candidate_grid((3e-3, 1e-3), (1.0, 0.1))
    assert grid == (Candidate(1e-3, 0.1), Candidate(3e-3, 0.1), Candidate(1e-3, 1.0), Candidate(3e-3, 1.0))
    with pytest.raises(ConfigError):
        candidate_grid((), (1.0,))
    with pytest.raises(ConfigError):
        candidate_grid((-1.0,), (1.0,))


@pytest.mark.parametrize(
    "n, epochs, rungs, cost",
    [
        (18, 3, [(1, 18), (2, 6), (3, 2)], 18 / 3 + 6 * 2 / 3 + 2),
        (18, 10, [(3, 18), (7, 6), (10, 2)], (18 * 3 + 6 * 7 + 2 * 10) / 10),
        (9, 2, [(1, 9), (2, 3)], 9 / 2 + 3),
        (3, 3, [(1, 3), (3, 2)], 1 + 2),  # two finalists at least
        (6, 3, [(1, 6), (3, 2)], 2 + 2),  # a middle rung would keep both: skipped
        (12, 3, [(1, 12), (2, 4), (3, 2)], 4 + 4 * 2 / 3 + 2),
        (2, 3, [(3, 2)], 2),
        (4, 1, [(1, 4)], 4),
        (1, 5, [(5, 1)], 1),
    ],
)
def test_plan_grid_rungs_and_cost(n: int, epochs: int, rungs: list, cost: float) -> None:
    plan = plan_grid(n, epochs)
    assert [(r.length, r.size) for r in plan.rungs] == rungs and not plan.continued
    assert plan.cost_runs == pytest.approx(cost)


def test_budget_thins_the_head_ladder() -> None:
    assert _head_count(3, 3, None, 0.5) == 6
    assert _head_count(3, 3, 12.5, 0.5) == 6
    assert _head_count(3, 3, 9.2, 0.5) == 4  # 12 candidates cost 8.67
    with pytest.raises(ConfigError, match="too small"):
        _head_count(3, 3, 2.0, 0.5)


def test_head_lr_candidates_use_select_ladder() -> None:
    result = FindResult(lr=1e-3, interval=(3e-4, 3e-3), suggestions={"steep": 8e-4}, history_lr=(1e-4, 1e-3, 1e-2),
                        history_loss=(2.0, 1.0, 3.0), smoothed=(2.0, 1.0, 3.0), onset=2e-2, rule="descent",
                        stopped_early=False)
    ladder = head_lr_candidates(result, 3)
    assert ladder == candidate_lrs(3e-4, 3e-3, steep=8e-4, onset=2e-2, min_loss=1e-3, max_count=3)
    assert len(ladder) == 3 and ladder == tuple(sorted(ladder))
    assert head_lr_candidates(result, 1) == (1e-3,)


def test_group_trial_json_round_trip() -> None:
    trial = GroupTrial(2, 1e-3, 0.3, 1, 3, 0.9, 0.31, False, (0.8, 0.85, 0.9), None, 1.5)
    assert GroupTrial.from_json(trial.to_json()) == trial


@pytest.fixture(scope="module")
def digits_task(digits_ckpt: Path) -> Task:
    return Task(dataset="digits", limit=400, optimizer="adam", weights=str(digits_ckpt))


def test_gradual_unfreezing_trains_the_head_first(digits_task: Task, monkeypatch: pytest.MonkeyPatch) -> None:
    conv0 = digits_task.build_model().conv.weight.detach().clone()
    built: list[torch.nn.Module] = []
    real_build = Task.build_model

    def spy_build(self: Task, info=None, seed=None):  # type: ignore[no-untyped-def]
        built.append(real_build(self, info, seed))
        return built[-1]

    monkeypatch.setattr(Task, "build_model", spy_build)
    seen: list[bool] = []  # after each step: is the first conv still the pretrained one?

    def record(step: int, lr: float, loss: float) -> None:
        seen.append(torch.equal(built[-1].conv.weight, conv0))

    run = train_groups(digits_task, 3e-3, 0.3, 2, schedule="constant", freeze_epochs=1, on_step=record)
    steps = len(digits_task.splits().loader("train", digits_task.batch_size))
    assert seen[:steps] == [True] * steps  # the head alone for epoch 1
    assert not any(seen[steps:])  # everything after
    assert [g["name"] for g in run.groups] == ["head", "backbone"]
    assert run.groups[1]["lr"] == pytest.approx(3e-3 * 0.3)
    assert all(p.requires_grad for p in run.model.parameters())


def test_freeze_epochs_must_leave_training_time(digits_task: Task) -> None:
    with pytest.raises(ConfigError, match="freeze_epochs"):
        train_groups(digits_task, 1e-3, 0.3, 2, freeze_epochs=2)


def test_select_groups_halves_and_returns_the_winner_run(digits_task: Task) -> None:
    grid = candidate_grid((1e-3, 1e-2), (0.1, 1.0))
    sel = select_groups(digits_task, grid, 2, schedule="constant")
    assert [r.size for r in sel.plan.rungs] == [4, 2]
    assert [t.rung for t in sel.trials] == [0, 0, 0, 0, 1, 1]
    assert {t.ratio for t in sel.trials if t.rung == 0} == {0.1, 1.0}
    finalists = [t for t in sel.trials if t.rung == 1]
    assert sel.best in finalists and sel.best.val_acc == max(t.val_acc for t in finalists)
    assert sel.run.fit.final_val_acc == sel.best.val_acc and len(sel.run.fit.epochs) == 2
