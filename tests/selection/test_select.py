"""select(): the choice, its bookkeeping, files, JSON schema, determinism and resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lrscout.errors import ConfigError
from lrscout.selection import SelectResult, TrialResult, select
from lrscout.selection.halving import Outcome, promote, rank, robust_rank
from lrscout.selection.candidates import window_start
from lrscout.selection.selection import _trace, candidates_for, find_cost_steps
from lrscout.task import Task

from killswitch import Killed, die_after

from .conftest import KWARGS, TASK


def comparable(result: SelectResult) -> dict[str, Any]:
    """The JSON without wall-clock times."""
    data = result.to_json()
    data.pop("seconds")
    data["find"].pop("seconds")
    for t in data["trials"]:
        t.pop("seconds")
    return data


def _outcome(t: TrialResult) -> Outcome:
    return Outcome(t.spec.lr, t.val_acc, t.val_loss, t.collapsed)


def test_choice_is_the_best_finalist_and_the_books_add_up(small_select: SelectResult) -> None:
    r = small_select
    plan = r.plan
    assert [(g.length, g.size) for g in plan.rungs] == [(16, 4), (32, 2)]  # steps: 8 an epoch
    ladder = candidates_for(r.find)
    assert [c.lr for c in r.candidates] == pytest.approx(ladder[window_start(len(ladder), 4):])
    finalists = [t for t in r.trials if t.spec.full]
    assert len(finalists) == 2 and all(t.spec.parent == f"r0-c{t.spec.candidate}" for t in finalists)
    # the robust choice over the finalists' late evaluations (their parents' included)
    traces = [_trace(t, [list(r.trials)], r.plan.length) for t in finalists]
    assert [e[0] for e in traces[0].evals] == [8, 16, 24, 32]  # one a epoch, the short run's first two
    best = finalists[robust_rank(traces, len(TASK.splits().val))[0]]
    assert (r.lr, r.score, r.val_loss) == (best.spec.lr, best.val_acc, best.val_loss)
    # the finalists are the best two of rung 0
    rung0 = [t for t in r.trials if t.spec.rung == 0]
    top2 = {rung0[i].spec.candidate for i in rank([_outcome(t) for t in rung0])[:2]}
    assert {t.spec.candidate for t in finalists} == top2
    # cost: range test + 4 two-epoch trials + 2 continued for two more epochs, in 4-epoch runs
    steps = find_cost_steps(r.find)
    assert r.cost_runs == pytest.approx(steps / (4 * 8) + (4 * 2 + 2 * 2) / 4)
    assert r.config["find_cost_runs"] == pytest.approx(steps / 32)
    assert r.schedule.lr == r.lr and r.schedule.kind == "constant" and r.schedule.epochs == 4
    assert r.schedule.steps_per_epoch == 8
    for c in r.candidates:  # the table shows each candidate at the last rung it reached
        assert c.steps_run == (32 if c.lr in {t.spec.lr for t in finalists} else 16)


def test_same_seed_same_choice_and_json_round_trip(small_select: SelectResult, tmp_path: Path) -> None:
    again = select(TASK, **KWARGS, out_dir=tmp_path)
    assert comparable(again) == comparable(small_select)
    data = json.loads((tmp_path / "select.json").read_text())
    assert data["version"] == 2
    assert isinstance(data["lr"], float) and 0 <= data["score"] <= 1 and data["cost_runs"] > 0
    assert {"lr", "score", "steps_run"} <= set(data["candidates"][0])
    assert {"kind", "lr", "epochs", "steps_per_epoch", "params", "version"} <= set(data["schedule"])
    back = SelectResult.from_json(data)
    assert comparable(back) == comparable(again)
    assert back.lr == again.lr and back.candidates == again.candidates and back.schedule == again.schedule
    # the directory: results, range test, one file per trial; no checkpoints or temp files left
    names = {p.name for p in tmp_path.iterdir()}
    assert {"select.json", "report.html", "find.json", "select-state.json", "trials"} <= names
    assert len(list((tmp_path / "trials").glob("*.json"))) == len(again.trials) == 6
    assert [p.name for p in tmp_path.rglob("*.pt")] == ["model.pt"] and not list(tmp_path.rglob(".*.tmp"))
    assert again.plot().get_xscale() == "log"
    assert back.model is None and again.model is not None  # the network is not part of the JSON


def test_the_choice_comes_with_the_chosen_runs_trained_model(small_select: SelectResult, tmp_path: Path) -> None:
    """The chosen finalist trained the whole protocol at the chosen LR: its network comes back
    (in memory and as DIR/model.pt), scoring on validation exactly what the choice was made on,
    and a rerun into the finished directory gives it back from model.pt."""
    from lrscout.training.loop import evaluate
    from lrscout.training.run import load_checkpoint

    val = TASK.val_loader()
    assert small_select.model is not None and evaluate(small_select.model, val)[1] == small_select.score
    first = select(TASK, **KWARGS, out_dir=tmp_path)
    saved = load_checkpoint(tmp_path / "model.pt")
    assert saved["lr"] == first.lr and saved["val_acc"] == first.score and saved["epoch"] == 4
    model = TASK.build_model()
    model.load_state_dict(saved["model"])
    assert evaluate(model, val)[1] == first.score
    from lrscout.models.pretrained import read_checkpoint  # what --weights reads

    assert read_checkpoint(tmp_path / "model.pt").keys() == saved["model"].keys()
    again = select(TASK, **KWARGS, out_dir=tmp_path)  # nothing left to train, no checkpoint left
    assert again.model is not None and evaluate(again.model, val)[1] == first.score and again.notes == first.notes
    (tmp_path / "model.pt").unlink()
    third = select(TASK, **KWARGS, out_dir=tmp_path)
    assert third.model is None and third.notes[-1].startswith("the chosen run's weights did not come back")



def test_a_killed_selection_resumes_without_rerunning_finished_trials(small_select: SelectResult,
                                                                      tmp_path: Path) -> None:
    ran: list[str] = []

    with pytest.raises(Killed):  # killed in rung 0, after three trials
        select(TASK, **KWARGS, out_dir=tmp_path, on_trial=die_after(ran, 3))
    assert len(list((tmp_path / "trials").glob("*.json"))) == 3
    ran.clear()
    with pytest.raises(Killed):  # killed again in rung 1, after the first finalist
        select(TASK, **KWARGS, out_dir=tmp_path, on_trial=die_after(ran, 2))
    assert ran[0] == [t.spec.trial_id for t in small_select.trials if t.spec.rung == 0][-1]
    assert ran[1].startswith("r1-")
    ran.clear()
    resumed = select(TASK, **KWARGS, out_dir=tmp_path, on_trial=lambda t: ran.append(t.spec.trial_id))
    assert len(ran) == 1 and ran[0].startswith("r1-")  # only the missing finalist ran
    assert comparable(resumed) == comparable(small_select)  # and the result is the uninterrupted one


def test_other_settings_in_the_same_directory_are_refused(tmp_path: Path) -> None:
    select(TASK, **{**KWARGS, "budget": 3.5}, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="other settings.*budget"):
        select(TASK, **KWARGS, out_dir=tmp_path)


def test_compressed_schedule_plan_restarts_its_finalists() -> None:
    r = select(TASK, schedule="cosine", epochs=4, budget=4.0, find_kwargs={"num_iter": 20})
    assert not r.plan.continued
    assert [(g.length, g.size) for g in r.plan.rungs] == [(10, 4), (32, 2)]  # a third of the run, compressed
    short = [t for t in r.trials if t.spec.rung == 0]
    final = [t for t in r.trials if t.spec.rung == 1]
    assert all(t.spec.compress and t.spec.steps == 10 for t in short)
    assert final and all(not t.spec.compress and t.spec.parent is None and t.steps_trained == 32 for t in final)
    assert r.schedule.kind == "cosine" and r.schedule.params["warmup_steps"] == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"schedule": "nope"}, "unknown schedule"),
        ({"schedule": "step", "schedule_params": {"size": 2}}, "unknown parameter"),
        ({"epochs": 0}, "epochs must be"),
        ({"backend": "nope"}, "unknown backend"),
        ({"workers": 2, "backend": "ray"}, "local backend"),
        ({"budget": 0.5}, "too small"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        select(TASK, **{**KWARGS, **kwargs}, out_dir=tmp_path)


def test_lr_free_optimizers_have_nothing_to_select() -> None:
    with pytest.raises(ConfigError, match="sets its own step size"):
        select(dataclasses.replace(TASK, optimizer="prodigy"), **KWARGS)


def test_trials_run_on_a_fixed_thread_count_whatever_the_caller_uses(small_select: SelectResult) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        again = select(TASK, **KWARGS)
        assert torch.get_num_threads() == 2  # the caller's setting is put back
    finally:
        torch.set_num_threads(before)
    assert comparable(again) == comparable(small_select)
    with pytest.raises(ConfigError, match="threads"):
        select(TASK, **KWARGS, threads=0)


def _scaled(f: Any, factor: float) -> Any:
    """The range test ``f`` as if read ``factor`` times too high."""
    return dataclasses.replace(
        f, lr=f.lr * factor, interval=(f.interval[0] * factor, f.interval[1] * factor),
        onset=None if f.onset is None else f.onset * factor,
        suggestions={k: (None if v is None else v * factor) for k, v in f.suggestions.items()},
        history_lr=[x * factor for x in f.history_lr],
    )


def test_collapsing_short_runs_send_the_search_down_the_ladder(small_select: SelectResult) -> None:
    """A range test read a decade too high: the budget's top candidates all collapse, so
    rung 0 goes on down the ladder until it has as many healthy runs as the finalists."""
    high = _scaled(small_select.find, 10)
    ladder = candidates_for(high)
    r = select(TASK, **KWARGS, find_result=high)
    rung0 = [t for t in r.trials if t.spec.rung == 0]
    planned = ladder[window_start(len(ladder), r.plan.rungs[0].size):]
    assert [t.spec.lr for t in rung0][-len(planned):] == pytest.approx(planned)
    assert len(rung0) > len(planned)  # candidates were added from below
    healthy = sum(not t.collapsed for t in rung0)
    # no more than needed, unless the ladder's bottom was reached first (a run at chance that
    # learned only the class frequencies is collapsed: on this 45-image split that is 0.48)
    assert healthy == r.plan.rungs[1].size or (0 < healthy < r.plan.rungs[1].size
                                                 and rung0[0].spec.lr == pytest.approx(ladder[0]))
    assert not rung0[0].collapsed  # the descent stopped at the run that made up the number
    assert r.lr in {t.spec.lr for t in rung0 if not t.collapsed}
    assert r.cost_runs > r.plan.cost_runs + r.config["find_cost_runs"] - 1e-9
    assert any("more candidate(s) from below" in n for n in r.notes)
    assert not any("from below" in n for n in small_select.notes)


def test_a_one_epoch_protocol_is_selected_within_the_default_budget(tmp_path: Path) -> None:
    """Digits, one epoch of batch 128: 10 optimizer steps in all. The range test shrinks to
    20 steps of 32 images (half a run), and the rest of the budget buys two verified
    finalists: two candidates train the first 5 steps and both go on for the other 5 from
    their checkpoints: 2.5 runs with the sweep, and an LR compared at full length."""
    task = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=128)
    r = select(task, epochs=1, out_dir=tmp_path)
    assert r.plan.continued and [(g.length, g.size) for g in r.plan.rungs] == [(5, 2), (10, 2)]
    assert r.config["range_test"] == {"steps": 20, "batch_size": 32}
    assert r.find.config["task"]["batch_size"] == 32 and len(r.find.history_lr) <= 20
    assert r.cost_runs <= 2.5 + 1e-9
    assert r.config["find_cost_runs"] == pytest.approx(find_cost_steps(r.find) * 32 / (10 * 128))
    final = [t for t in r.trials if t.spec.full]
    assert len(final) == 2 and r.lr in {t.spec.lr for t in final}
    assert all(t.spec.start_step == 5 and t.spec.parent == f"r0-c{t.spec.candidate}" for t in final)
    assert any(not t.collapsed for t in final) and r.score > 0.3  # ten steps of a healthy LR learn something
    # a short sweep's ladder, 1/3 decade apart; the pair is its 3rd and 4th points from the top
    ladder = candidates_for(r.find, fine=True)
    assert r.config["ladder"] == pytest.approx(ladder)
    assert all(b / a == pytest.approx(10 ** (1 / 3), rel=0.15) for a, b in zip(ladder, ladder[1:]))
    rung0 = [t for t in r.trials if t.spec.rung == 0]
    assert r.config["verified"] and not r.config["horizon"]
    assert [t.spec.candidate for t in rung0][-2:] == [len(ladder) - 4, len(ladder) - 3]
    # the choice is the better finalist at full length (robust rank over the late evaluations)
    traces = [_trace(t, [list(r.trials)], r.plan.length) for t in final]
    best = final[robust_rank(traces, len(task.splits().val))[0]]
    assert r.lr == best.spec.lr


def test_the_descent_down_the_ladder_keeps_to_the_budget(tmp_path: Path) -> None:
    """The default budget's verified pair (digits, one epoch of batch 128: 2.45 runs with the
    range test) after a range test read a decade too high: the pair's upper LR collapses in
    its short run, so the next LR down is added. Once one short run is healthy, a second
    finalist no longer fits the budget, so the added LR trains its short run only (or, when it
    is the first healthy one, goes on alone): one finalist, below the collapsed LRs, within
    the budget, and a note that says why only one was verified."""
    task = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=128)
    base = select(task, epochs=1, out_dir=tmp_path / "base")
    r = select(task, epochs=1, out_dir=tmp_path / "high", find_result=_scaled(base.find, 10))
    rung0 = [t for t in r.trials if t.spec.rung == 0]
    planned, added = rung0[-2:], rung0[:-2]  # added candidates come first
    assert any(t.collapsed for t in planned) and added
    assert all(t.spec.lr < min(p.spec.lr for p in planned) for t in added)  # from below the pair
    final = [t for t in r.trials if t.spec.full]
    assert len(final) == 1 and final[0].spec.lr < min(t.spec.lr for t in planned if t.collapsed)
    assert r.cost_runs <= 2.5 + 1e-9
    assert any("1 of the 2 planned finalists" in n for n in r.notes)
    assert r.lr in {t.spec.lr for t in rung0 if not t.collapsed}


def test_a_budget_that_buys_no_verified_trial_is_refused_before_any_work(tmp_path: Path) -> None:
    task = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=128)
    with pytest.raises(ConfigError, match=r"budget 1 runs is too small.*use budget >= 1.9"):
        select(task, epochs=1, budget=1.0, out_dir=tmp_path / "sel")
    assert not (tmp_path / "sel").exists()  # nothing was run or written


def test_the_range_test_is_charged_the_steps_it_ran(small_select: SelectResult) -> None:
    find = small_select.find
    ran = find.config["steps_run"]
    assert find_cost_steps(find) == ran and ran >= len(find.history_lr)
    # results without the record (an older lrscout, or built elsewhere) are counted by points:
    # a divergence caught at a recorded point costs those points, a NaN one step more
    old = {k: v for k, v in find.config.items() if k != "steps_run"}
    diverged = dataclasses.replace(find, config=old, stopped_early=True, stop_reason="loss diverged (...)")
    nan = dataclasses.replace(find, config=old, stopped_early=True, stop_reason="loss became nan at lr=1")
    assert find_cost_steps(diverged) == len(find.history_lr)
    assert find_cost_steps(nan) == len(find.history_lr) + 1


@pytest.mark.parametrize("fn", ["cliff", "late_cliff"])
def test_with_one_healthy_short_run_a_lower_lr_is_tried_as_a_fallback_within_the_budget(fn: str,
                                                                                        tmp_path: Path) -> None:
    """The verified pair's upper candidate (0.215) diverges in its short run, the lower (0.1)
    does not. Two finalists no longer fit the budget, so the next LR down (0.0464) trains
    its short run only, paid for by the second finalist the collapse freed: the better of the
    two healthy short runs goes on alone, and the other is kept to fall back on. When the
    finalist then diverges in the second half (``late_cliff``), the choice is that lower LR."""
    import lrscout
    from tests.selection import cliff_objective as co

    objective = lrscout.objective(getattr(co, fn), co.STEPS_PER_EPOCH, resumable=True, name=fn)
    r = select(objective, epochs=co.EPOCHS, find_result=co.short_sweep(), out_dir=tmp_path)
    assert r.config["verified"] and [(g.length, g.size) for g in r.plan.rungs] == [(20, 2), (40, 2)]
    rung0 = sorted((t.spec.lr, t.collapsed) for t in r.trials if t.spec.rung == 0)
    assert [lr for lr, _ in rung0] == pytest.approx([0.0464, 0.1, 0.215], rel=0.01)
    assert [c for _, c in rung0] == [False, False, True]
    final = [t for t in r.trials if t.spec.full]
    assert [t.spec.lr for t in final] == pytest.approx([0.1], rel=0.01)  # the better short run (nearer 0.07)
    # the sweep 0.5, two half runs, 0.215's first epoch (it stopped there), one second half (or
    # its first epoch, where late_cliff stops it): within the budget of 2.5
    assert r.cost_runs == pytest.approx(0.5 + 2 * 0.5 + 0.1 + (0.5 if fn == "cliff" else 0.1))
    assert any("1 of the 2 planned finalists" in n for n in r.notes)
    if fn == "cliff":
        assert r.lr == final[0].spec.lr
    else:
        assert final[0].collapsed and r.lr == pytest.approx(0.0464, rel=0.01)
        assert any("best candidate below them" in n for n in r.notes)
