"""task_from: the user's code as a training task, equal to the named task it mirrors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import lrscout
from lrscout.errors import ConfigError
from lrscout.protocol import TrainingTask
from lrscout.selection import SelectResult, select

from .digits_by_hand import NAMED, make_model, make_optimizer, make_task

KWARGS: dict[str, Any] = {"epochs": 4, "budget": 4.0, "find_kwargs": {"num_iter": 20}}


def trials(result: SelectResult) -> list[tuple[str, float, float, float | None, bool]]:
    return [(t.spec.trial_id, t.spec.lr, t.val_acc, t.val_loss, t.collapsed) for t in result.trials]


@pytest.fixture(scope="module")
def named() -> SelectResult:
    return select(NAMED, **KWARGS)


def test_both_tasks_implement_the_protocol() -> None:
    assert isinstance(NAMED, TrainingTask) and isinstance(make_task(), TrainingTask)
    assert make_task().classification and NAMED.metric.name == "accuracy"


def test_hand_written_task_selects_exactly_like_the_named_one(named: SelectResult, tmp_path: Path) -> None:
    mine = select(make_task(), **KWARGS, out_dir=tmp_path)
    assert trials(mine) == trials(named)  # same trials, same scores, bit for bit
    assert (mine.lr, mine.score, mine.cost_runs) == (named.lr, named.score, pytest.approx(named.cost_runs))
    saved = json.loads((tmp_path / "select.json").read_text())
    assert saved["lr"] == named.lr and saved["config"]["task"]["name"] == "digits-by-hand"
    assert (tmp_path / "report.html").exists()


def test_hand_written_task_on_two_worker_processes(named: SelectResult) -> None:
    mine = select(make_task(), **KWARGS, workers=2)
    assert trials(mine) == trials(named) and mine.lr == named.lr


def test_the_range_test_of_a_user_task_is_sized_to_the_budget_like_the_named_ones() -> None:
    """10 epochs of 8 steps at budget 2.5: a 40-step sweep (a fifth of the budget), not
    the usual 100 steps (1.25 runs); the same sweep, trials and choice as the named task."""
    named = select(NAMED, epochs=10)
    mine = select(make_task(), epochs=10)
    assert len(mine.find.history_lr) <= 40 and mine.config["find_cost_runs"] <= 0.5 + 1e-9
    assert mine.find.history_lr == named.find.history_lr
    assert trials(mine) == trials(named) and mine.cost_runs <= 2.5 + 1e-9


def test_a_user_task_too_short_for_a_sweep_at_its_batch_is_refused_with_a_budget_that_would_do() -> None:
    with pytest.raises(ConfigError, match=r"too small.*use budget >= \d"):
        select(make_task(), epochs=1)  # 8 steps: a 20-step sweep at the user's batch is 2.5 runs


def test_resume_into_a_folder_of_another_task_is_refused(tmp_path: Path) -> None:
    task = make_task()
    select(task, epochs=2, budget=3.0, find_kwargs={"num_iter": 10}, out_dir=tmp_path)
    other = lrscout.task_from(make_model, task.train_data, task.val_data, "adam", batch_size=32, name="digits-adam")
    with pytest.raises(ConfigError, match="another task.*digits-by-hand.*digits-adam"):
        select(other, epochs=2, budget=3.0, find_kwargs={"num_iter": 10}, out_dir=tmp_path)


def test_fingerprint_tells_tasks_apart_and_is_stable() -> None:
    a, b = make_task(), make_task()
    assert a.to_json() == b.to_json() and len(a.to_json()["fingerprint"]) == 16
    assert make_task().with_optimizer("adam").to_json() != a.to_json()
    rng = torch.get_rng_state()
    make_task().fingerprint()
    assert torch.equal(rng, torch.get_rng_state())  # fingerprinting leaves the random streams alone


def test_a_lambda_task_on_the_pool_gets_one_line_saying_what_to_do() -> None:
    splits = NAMED.splits()
    task = lrscout.task_from(lambda: make_model(), splits.train, splits.val, make_optimizer)
    with pytest.raises(ConfigError) as info:
        select(task, **KWARGS, workers=2)
    message = str(info.value)
    assert "\n" not in message and "module-level" in message and "workers=1" in message


# -- any batch structure, any loss, any metric ------------------------------------------------

class DictDigits(Dataset):  # type: ignore[type-arg]
    """The digits as ``{"image": x, "label": y}`` samples."""

    def __init__(self, data: TensorDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, y = self.data[i]
        return {"image": x, "label": y}


def dict_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["image"]), batch["label"])


def error_rate(model: nn.Module, batches: Any) -> float:
    wrong = total = 0
    for b in batches:
        wrong += int((model(b["image"]).argmax(1) != b["label"]).sum())
        total += len(b["label"])
    return wrong / total


def dict_task(**kw: Any) -> Any:
    splits = NAMED.splits()
    args: dict[str, Any] = {"loss_fn": dict_loss, "metric": error_rate, "higher_is_better": False,
                            "batch_size": 32, "name": "dict-digits", **kw}
    return lrscout.task_from(make_model, DictDigits(splits.train), DictDigits(splits.val), make_optimizer, **args)


def test_dict_batches_and_a_lower_is_better_metric_select_the_same_lr(named: SelectResult) -> None:
    mine = select(dict_task(), **KWARGS)
    assert [t.spec.lr for t in mine.trials] == [t.spec.lr for t in named.trials]
    # the error rate is 1 - accuracy, and the ranking follows it downwards
    assert [1 - t.val_acc for t in mine.trials] == pytest.approx([t.val_acc for t in named.trials], abs=1e-9)
    assert mine.lr == named.lr and mine.config["metric"] == {"name": "error_rate", "higher_is_better": False,
                                                             "percent": False}


def test_train_on_a_dict_task_keeps_the_best_epoch_by_the_metric(tmp_path: Path) -> None:
    result = lrscout.train(dict_task(), lr=0.05, schedule="constant", epochs=2, out_dir=tmp_path, guard=False)
    errors = [e.val_acc for e in result.fit.epochs]
    assert result.best_epoch == 1 + errors.index(min(errors))
    assert all(math.isnan(e.train_acc) for e in result.fit.epochs)


def vector_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["image"]), batch["label"], reduction="none")


def nan_metric(model: nn.Module, batches: Any) -> float:
    return math.nan


@pytest.mark.parametrize(("kw", "match"), [
    ({"loss_fn": vector_loss}, r"tensor of shape \(32,\); it must return a scalar"),
    ({"metric": nan_metric}, "metric 'nan_metric' returned NaN"),
])
def test_bad_loss_or_metric_gets_one_clear_line(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        lrscout.train(dict_task(**kw), lr=0.05, schedule="constant", epochs=1, guard=False)
    assert "\n" not in str(info.value)


def test_empty_data_gets_one_clear_line() -> None:
    empty = TensorDataset(torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ConfigError, match="train_data is empty"):
        lrscout.task_from(make_model, empty, NAMED.splits().val, make_optimizer)

    def no_batches() -> list[Any]:
        return []

    task = lrscout.task_from(make_model, no_batches, NAMED.splits().val, make_optimizer)
    with pytest.raises(ConfigError, match="zero batches|steps_per_epoch must be an integer >= 1, got 0"):
        select(task, **KWARGS)


def test_compare_and_finetune_take_a_hand_written_task(tmp_path: Path) -> None:
    result = lrscout.compare(make_task(), optimizers="sgd,adam", epochs=2, budget=3.0,
                             find_kwargs={"num_iter": 10}, out_dir=tmp_path / "cmp")
    assert sorted(e.optimizer for e in result.entries) == ["adam", "sgd"]
    assert result.config["task"]["name"] == "digits-by-hand" and (tmp_path / "cmp" / "report.html").exists()
    tuned = lrscout.finetune(make_task(), 1, head_lr=0.05, backbone_ratio=0.1, out_dir=tmp_path / "ft")
    assert tuned.head_lr == 0.05 and tuned.backbone_ratio == 0.1 and tuned.test_acc is None
    assert 0.0 <= tuned.val_acc <= 1.0


class WithoutBatchSize:
    """A task written to the protocol alone: everything the protocol asks for, no ``batch_size``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "batch_size":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_a_task_without_batch_size_selects_like_the_one_that_states_it(named: SelectResult) -> None:
    bare = WithoutBatchSize(make_task())
    assert isinstance(bare, TrainingTask) and not hasattr(bare, "batch_size")
    mine = select(bare, **KWARGS)  # the range test is counted at the protocol's batch
    assert trials(mine) == trials(named) and mine.lr == named.lr
