"""compare(): one range test per optimizer, a selection per combination, LR-free entries, ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrscout.errors import ConfigError
from lrscout.selection import CompareResult, compare
from lrscout.selection.halving import rank

from .conftest import TASK


def test_compare_ranks_every_combination_and_writes_its_files(tmp_path: Path) -> None:
    pytest.importorskip("prodigyopt")
    result = compare(TASK, optimizers="sgd,prodigy", schedules="constant,cosine", epochs=4, budget=4.0,
                     find_kwargs={"num_iter": 20}, out_dir=tmp_path)
    labels = [(e.optimizer, e.schedule, e.lr_free) for e in result.entries]
    assert sorted(labels) == [("prodigy", "constant", True), ("sgd", "constant", False), ("sgd", "cosine", False)]
    assert rank([e.outcome for e in result.entries]) == [0, 1, 2]  # stored best first
    free = next(e for e in result.entries if e.lr_free)
    assert free.lr == 1.0 and free.cost_runs == 1.0 and free.select is None and free.trial is not None
    sgd = [e for e in result.entries if e.optimizer == "sgd"]
    assert sgd[0].select is not None and sgd[1].select is not None
    assert sgd[0].select.find == sgd[1].select.find  # one range test for both schedules
    find_cost = sgd[0].select.config["find_cost_runs"]
    expected = find_cost + sum(e.cost_runs - (0 if e.lr_free else find_cost) for e in result.entries)
    assert result.cost_runs == pytest.approx(expected)
    data = json.loads((tmp_path / "compare.json").read_text())
    assert data["version"] == 1 and data["best"]["optimizer"] == result.best.optimizer
    assert CompareResult.from_json(data).entries == result.entries
    for sub in ("sgd-constant", "sgd-cosine"):
        assert (tmp_path / sub / "select.json").exists() and (tmp_path / sub / "report.html").exists()
        assert (tmp_path / sub / "model.pt").exists()  # each entry's chosen network, on disk only
    assert all(e.select.model is None for e in sgd)
    assert (tmp_path / "find" / "sgd.json").exists() and (tmp_path / "report.html").exists()
    # resumable: a rerun loads everything and trains nothing
    ran: list[str] = []
    again = compare(TASK, optimizers="sgd,prodigy", schedules="constant,cosine", epochs=4, budget=4.0,
                    find_kwargs={"num_iter": 20}, out_dir=tmp_path, on_trial=lambda t: ran.append(t.spec.trial_id))
    assert ran == [] and [e.score for e in again.entries] == [e.score for e in result.entries]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"optimizers": "sgd,nope"}, "unknown optimizer"), ({"schedules": "cosine,nope"}, "unknown schedule"),
     ({"optimizers": ""}, "at least one optimizer")],
)
def test_bad_names_fail_before_training(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compare(TASK, **kwargs)  # type: ignore[arg-type]
