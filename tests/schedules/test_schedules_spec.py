"""ScheduleSpec / schedule_for: validation, planned LRs, JSON, public names, doc examples."""

from __future__ import annotations

import doctest
import importlib
import json
from dataclasses import dataclass

import numpy as np
import pytest

import lrscout.schedules as schedules
from lrscout.errors import ConfigError, DataError
from lrscout.schedules import SCHEDULES, ScheduleSpec, schedule_for


@dataclass(frozen=True)
class _Result:  # stands in for FindResult / SelectResult: anything with a float .lr
    lr: float


def test_public_names() -> None:
    assert set(schedules.__all__) == {
        "SCHEDULES", "Schedule", "ScheduleInfo", "ScheduleSpec", "build_scheduler",
        "constant", "cosine", "cosine_decay", "get_schedule", "join", "linear_warmup",
        "multistep", "onecycle", "schedule_for", "step",
    }  # fmt: skip
    assert all(hasattr(schedules, name) for name in schedules.__all__)


@pytest.mark.parametrize(
    "module",
    ["functions", "registry", "spec", "torch_adapter", "_checks"],
)
def test_doc_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"lrscout.schedules.{module}"))
    assert result.failed == 0


def test_schedule_for_accepts_a_float_or_a_result() -> None:
    a = schedule_for(0.25, "cosine", epochs=3, steps_per_epoch=10)
    b = schedule_for(_Result(0.25), "cosine", epochs=3, steps_per_epoch=10)
    assert a == b and a.lr == 0.25 and a.total_steps == 30
    assert a.params == {"warmup_steps": 1, "eta_min_ratio": 0.0}


def test_constant_spec_is_the_plain_float_lr() -> None:
    spec = schedule_for(0.037, "constant", epochs=2, steps_per_epoch=5)
    assert spec.lrs().tolist() == [0.037] * 10
    assert spec.lr_at(10**6) == 0.037


def test_lrs_cover_every_step_and_onecycle_peaks_at_lr() -> None:
    spec = schedule_for(_Result(0.6), "onecycle", epochs=2, steps_per_epoch=50)
    lrs = spec.lrs()
    assert lrs.shape == (100,) and lrs.dtype == np.float64
    assert lrs.max() == 0.6 and int(lrs.argmax()) == 29
    assert lrs[0] == pytest.approx(0.6 / 25, rel=1e-12)
    assert lrs[-1] == pytest.approx(0.6 / 25e4, rel=1e-12)


def test_cosine_spec_mid_point() -> None:
    spec = schedule_for(1.0, "cosine", 10, 10, warmup_steps=20, eta_min_ratio=0.2)
    assert spec.lr_at(20) == 1.0 and spec.lr_at(60) == pytest.approx(0.6, rel=1e-12)


@pytest.mark.parametrize(
    ("lr", "epochs", "spe", "match"),
    [
        (0.0, 1, 1, "lr must be a finite number > 0, got 0.0"),
        (-0.1, 1, 1, "lr .* got -0.1"),
        (float("nan"), 1, 1, "lr .* got nan"),
        (float("inf"), 1, 1, "lr .* got inf"),
        (_Result(float("nan")), 1, 1, "lr .* got nan"),
        ("0.1", 1, 1, "lr .* got '0.1'"),
        (0.1, 0, 1, "epochs must be an integer >= 1, got 0"),
        (0.1, 2.5, 1, "epochs .* got 2.5"),
        (0.1, 1, 0, "steps_per_epoch must be an integer >= 1, got 0"),
    ],
)
def test_schedule_for_rejects_bad_values(
    lr: object, epochs: object, spe: object, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        schedule_for(lr, "constant", epochs, spe)  # type: ignore[arg-type]


def test_schedule_for_rejects_unknown_kind_and_param() -> None:
    with pytest.raises(ConfigError, match="unknown schedule 'linear'; choose one of"):
        schedule_for(0.1, "linear", 1, 1)
    with pytest.raises(ConfigError, match="'step' got unknown parameter\\(s\\) 'milestones'"):
        schedule_for(0.1, "step", 3, 1, milestones=[1])


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_json_round_trip(kind: str) -> None:
    spec = schedule_for(0.05, kind, epochs=6, steps_per_epoch=7)
    data = json.loads(json.dumps(spec.to_json()))
    assert data["version"] == 1 and data["kind"] == kind
    back = ScheduleSpec.from_json(data)
    assert back == spec
    assert np.array_equal(back.lrs(), spec.lrs())


def test_from_json_rejects_malformed() -> None:
    good = schedule_for(0.05, "step", 6, 7).to_json()
    with pytest.raises(DataError, match="version 2 is not supported"):
        ScheduleSpec.from_json({**good, "version": 2})
    with pytest.raises(DataError, match="missing lr"):
        ScheduleSpec.from_json({k: v for k, v in good.items() if k != "lr"})
    with pytest.raises(ConfigError, match="gamma .* got 2"):
        ScheduleSpec.from_json({**good, "params": {"gamma": 2}})
