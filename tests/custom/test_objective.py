"""The objective form (lrscout.objective): select over calls of the user's training function
chooses what the named task chooses, at the same cost, on step-counted trials."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import lrscout
from lrscout.errors import ConfigError
from lrscout.schedules import schedule_for
from lrscout.selection import SelectResult, select
from lrscout.selection.objectives import Trial

from . import objective_by_hand as by_hand
from .objective_by_hand import NAMED, STEPS_PER_EPOCH, make_objective, train_digits, train_digits_resumable

FIND: dict[str, Any] = {"find_kwargs": {"num_iter": 20}}
COSINE: dict[str, Any] = {"schedule": "cosine", "epochs": 4, "budget": 4.0}
CONSTANT: dict[str, Any] = {"schedule": "constant", "epochs": 4, "budget": 4.0}
HERE = Path(__file__).resolve().parent


def steps(result: SelectResult) -> list[tuple[str, float, int, tuple[int, ...], str | None]]:
    """Each trial's id, LR, cost in steps, the protocol steps of its reports, its parent."""
    return [(t.spec.trial_id, t.spec.lr, t.steps_trained, tuple(e.step for e in t.history), t.spec.parent)
            for t in result.trials]


def assert_same_choice(mine: SelectResult, named: SelectResult) -> None:
    assert mine.config["candidate_lrs"] == named.config["candidate_lrs"]
    assert mine.plan == named.plan
    assert steps(mine) == steps(named)
    assert abs(mine.score - named.score) <= 0.005  # within half a point of the named form's choice
    assert mine.cost_runs == pytest.approx(named.cost_runs)
    assert mine.config["find_cost_runs"] == pytest.approx(named.config["find_cost_runs"])


@pytest.fixture(scope="module")
def named_cosine() -> SelectResult:
    return select(NAMED, **COSINE, **FIND)


@pytest.fixture(scope="module")
def named_constant() -> SelectResult:
    return select(NAMED, **CONSTANT, **FIND)


def test_a_plain_loop_selects_like_the_named_task_at_the_same_cost(named_cosine: SelectResult,
                                                                   tmp_path: Path) -> None:
    mine = select(make_objective(), **COSINE, find_result=named_cosine.find, out_dir=tmp_path)
    assert_same_choice(mine, named_cosine)
    assert not mine.plan.continued and mine.plan.rungs[0].length == 10  # cosine: compressed restarts
    # a short trial of 10 steps (8 a epoch) reports after epoch 1 and inside epoch 2
    assert [e.step for e in mine.trials[0].history] == [8, 10]
    saved = json.loads((tmp_path / "select.json").read_text())
    assert saved["config"]["task"] == {"kind": "objective", "name": "digits-loop",
                                       "function": f"{by_hand.__name__}:train_digits", "steps_per_epoch": 8,
                                       "resumable": False, "metric": NAMED.metric.to_json()}
    assert "digits-loop" in (tmp_path / "report.html").read_text()
    # the named task's choice brings its trained network; the objective's training is the user's own
    assert named_cosine.model is not None and mine.model is None and not (tmp_path / "model.pt").exists()


def test_its_own_range_test_is_run_and_counted(named_cosine: SelectResult) -> None:
    mine = select(make_objective(), **COSINE)
    assert mine.find.interval == named_cosine.find.interval  # the same 20-step sweep on the same model
    assert_same_choice(mine, named_cosine)
    assert mine.config["range_test"] == {"function": f"{by_hand.__name__}:range_test"}


def test_constant_schedule_restarts_unless_the_objective_can_resume(named_constant: SelectResult) -> None:
    restarted = select(make_objective(), **CONSTANT, find_result=named_constant.find)
    assert named_constant.plan.continued and not restarted.plan.continued
    assert all(t.spec.parent is None for t in restarted.trials)
    resumable = lrscout.objective(train_digits_resumable, STEPS_PER_EPOCH, resumable=True, name="digits-resume")
    resumed = select(resumable, **CONSTANT, find_result=named_constant.find)
    assert_same_choice(resumed, named_constant)
    final = [t for t in resumed.trials if t.spec.rung == 1]
    assert final and all(t.spec.parent and t.steps_trained == 16 for t in final)  # continued, not retrained


def test_two_worker_processes_give_the_in_process_result(named_cosine: SelectResult) -> None:
    mine = select(make_objective(), **COSINE, find_result=named_cosine.find, workers=2)
    here = select(make_objective(), **COSINE, find_result=named_cosine.find)
    assert [(t.spec.trial_id, t.val_acc, t.val_loss) for t in mine.trials] == [
        (t.spec.trial_id, t.val_acc, t.val_loss) for t in here.trials]
    assert (mine.lr, mine.score) == (here.lr, here.score)


def test_resume_runs_nothing_again_and_refuses_another_objective(named_cosine: SelectResult,
                                                                 tmp_path: Path) -> None:
    first = select(make_objective(), **COSINE, find_result=named_cosine.find, out_dir=tmp_path)
    ran: list[str] = []
    again = select(make_objective(), **COSINE, find_result=named_cosine.find, out_dir=tmp_path,
                   on_trial=lambda t: ran.append(t.spec.trial_id))
    assert not ran and (again.lr, again.score) == (first.lr, first.score)
    other = lrscout.objective(train_digits_resumable, STEPS_PER_EPOCH, name="digits-loop")
    with pytest.raises(ConfigError, match="another task.*train_digits, not .*train_digits_resumable"):
        select(other, **COSINE, find_result=named_cosine.find, out_dir=tmp_path)


def test_trial_helpers_stop_inside_an_epoch_and_go_on_where_the_parent_stopped() -> None:
    loader = list(range(STEPS_PER_EPOCH))  # batch i of every epoch is the number i
    full = schedule_for(0.1, "constant", 4, STEPS_PER_EPOCH)
    short = Trial(0.1, 12, STEPS_PER_EPOCH, full)
    assert list(short.epochs()) == [0, 1] and short.expected_reports == 2
    assert [list(short.batches(loader)) for _ in short.epochs()] == [list(range(8)), [0, 1, 2, 3]]
    going_on = Trial(0.1, 20, STEPS_PER_EPOCH, full, start_step=12)
    assert list(going_on.epochs()) == [1, 2]
    assert [list(going_on.batches(loader)) for _ in going_on.epochs()] == [[4, 5, 6, 7], [0, 1, 2, 3]]
    assert going_on.batches_drawn == 8


def test_compressed_schedule_follows_the_full_plan() -> None:
    full = schedule_for(0.1, "cosine", 4, STEPS_PER_EPOCH)
    trial = Trial(0.1, 8, STEPS_PER_EPOCH, full, compress=True)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = trial.scheduler(optimizer)
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([full.lr_at(4 * t) for t in range(8)])  # step t of 8 = step 4t of 32


# -- bad objectives: one clear line ------------------------------------------------------------

def full_epochs(trial: Trial) -> None:
    """Ignores trial.batches: trains whole epochs past the end of a short trial."""
    model = NAMED.build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.lr)
    scheduler = trial.scheduler(optimizer)
    for _ in trial.epochs():
        for x, y in NAMED.train_loader():
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
            scheduler.step()
        trial.report(0.5)


def wrong_length(trial: Trial) -> None:
    """States 8 steps an epoch, iterates a loader of 9 batches."""
    for _ in trial.epochs():
        for _ in trial.batches(range(STEPS_PER_EPOCH + 1)):
            pass
        trial.report(0.5)


def forgets_to_save(trial: Trial) -> None:
    for _ in trial.epochs():
        for _ in trial.batches(range(STEPS_PER_EPOCH)):
            pass
        trial.report(0.5)


@pytest.mark.parametrize(("fn", "resumable", "match"), [
    (by_hand.report_twice, False, "reported more than the 2 time"),
    (by_hand.report_once, False, r"reported 1 time\(s\) for the 2 epoch"),
    (by_hand.report_text, False, "a score of type str, not a number"),
    (full_epochs, False, r"reached step 16, not trial.steps \(10\)"),
    (wrong_length, False, "the loader gives 9 batches an epoch, the objective states steps_per_epoch=8"),
    (forgets_to_save, True, r"must call trial.save\(state\)"),
])
def test_a_bad_objective_gets_one_clear_line(named_cosine: SelectResult, fn: Any, resumable: bool,
                                             match: str) -> None:
    settings = {**COSINE, "schedule": "constant" if resumable else "cosine"}  # constant: continued trials
    with pytest.raises(ConfigError, match=match) as info:
        select(lrscout.objective(fn, STEPS_PER_EPOCH, resumable=resumable), **settings,
               find_result=named_cosine.find)
    assert "\n" not in str(info.value)


def test_refusals_before_any_work(named_cosine: SelectResult) -> None:
    plain = lrscout.objective(train_digits, STEPS_PER_EPOCH)
    with pytest.raises(ConfigError, match="find_result=lrscout.find.*range_test=FUNCTION"):
        select(plain, **COSINE)
    with pytest.raises(ConfigError, match="num_iter set lrscout's range test on a task"):
        select(make_objective(), **COSINE, **FIND)
    closure = lrscout.objective(lambda trial: train_digits(trial), STEPS_PER_EPOCH)
    with pytest.raises(ConfigError, match="cannot be sent to worker processes.*module-level") as info:
        select(closure, **COSINE, find_result=named_cosine.find, workers=2)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="steps_per_epoch must be an int >= 1"):
        lrscout.objective(train_digits, 0)
    with pytest.raises(ConfigError, match="train needs a training task.*goes to select only"):
        lrscout.train(make_objective(), lr=0.1, epochs=1)


def test_a_run_that_diverges_at_every_lr_is_collapsed_not_an_error(named_cosine: SelectResult,
                                                                      tmp_path: Path) -> None:
    result = select(lrscout.objective(by_hand.report_nan, STEPS_PER_EPOCH), **COSINE,
                    find_result=named_cosine.find, out_dir=tmp_path)
    assert all(t.collapsed and t.note == "the reported accuracy is nan" for t in result.trials)
    assert math.isnan(result.score) and any("every candidate collapsed" in n for n in result.notes)
    saved = json.loads((tmp_path / "select.json").read_text())  # strict JSON: a NaN score as text
    assert saved["score"] == "nan" and math.isnan(float(saved["trials"][0]["val_acc"]))


# -- the command line --------------------------------------------------------------------------

def test_cli_select_runs_an_objective_factory(run_cli: Any, named_cosine: SelectResult, tmp_path: Path) -> None:
    code, stdout, err = run_cli("select", "--task", f"{HERE / 'objective_by_hand.py'}:make_objective",
                                "--schedule", "cosine", "--epochs", "4", "--budget", "4", "--out", str(tmp_path))
    assert code == 0, err
    saved = json.loads((tmp_path / "select.json").read_text())
    assert saved["lr"] == named_cosine.lr and saved["cost_runs"] == pytest.approx(named_cosine.cost_runs)
    assert (tmp_path / "report.html").exists() and "chosen LR" in stdout


@pytest.mark.parametrize(("args", "match"), [
    (["select", "--task", "{file}:make_objective_without_range_test"], "range_test=FUNCTION"),
    (["select", "--task", "{file}:make_objective", "--num-iter", "20"], "--num-iter set lrscout's range test"),
    (["train", "--task", "{file}:make_objective"], "returned an objective (lrscout.objective), which only select"),
    (["find", "--task", "{file}:make_objective"], "which only select runs"),
])
def test_cli_bad_objective_use_exits_2_with_one_line(run_cli: Any, tmp_path: Path, args: list[str],
                                                     match: str) -> None:
    code, _, err = run_cli(*[a.format(file=HERE / "objective_by_hand.py") for a in args], "--out", str(tmp_path))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and match in lines[0], err
