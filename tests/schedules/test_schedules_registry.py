"""Registry of schedule kinds: names, errors listing choices, epoch-based defaults."""

from __future__ import annotations

import pytest

from lrscout.errors import ConfigError
from lrscout.schedules import SCHEDULES, get_schedule

KINDS = ("constant", "step", "multistep", "cosine", "onecycle", "plateau")


def test_registry_names() -> None:
    assert set(SCHEDULES) == set(KINDS)
    assert [k for k in KINDS if not SCHEDULES[k].per_batch] == ["plateau"]
    with pytest.raises(TypeError):
        SCHEDULES["x"] = SCHEDULES["step"]  # type: ignore[index]


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ConfigError) as info:
        get_schedule("cosin")
    msg = str(info.value)
    assert "unknown schedule 'cosin'" in msg
    assert "constant, cosine, multistep, onecycle, plateau, step" in msg


def test_lookup_is_case_insensitive() -> None:
    assert get_schedule(" Cosine ") is SCHEDULES["cosine"]


@pytest.mark.parametrize(
    ("kind", "epochs", "spe", "want"),
    [
        ("step", 30, 100, {"step_size": 10, "gamma": 0.1}),
        ("step", 2, 100, {"step_size": 1, "gamma": 0.1}),
        ("multistep", 100, 10, {"milestones": (50, 75), "gamma": 0.1}),
        ("multistep", 10, 10, {"milestones": (5, 7.5), "gamma": 0.1}),
        ("cosine", 10, 100, {"warmup_steps": 50, "eta_min_ratio": 0.0}),
        ("cosine", 1, 20, {"warmup_steps": 1, "eta_min_ratio": 0.0}),
        ("cosine", 1, 39, {"warmup_steps": 1, "eta_min_ratio": 0.0}),
        ("cosine", 1, 19, {"warmup_steps": 0, "eta_min_ratio": 0.0}),
        ("constant", 3, 3, {}),
        ("onecycle", 3, 3,
         {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4, "anneal": "cos"}),
    ],
)  # fmt: skip
def test_defaults(kind: str, epochs: int, spe: int, want: dict[str, object]) -> None:
    assert get_schedule(kind).resolve({}, epochs=epochs, steps_per_epoch=spe) == want


@pytest.mark.parametrize("kind", KINDS)
def test_resolve_is_idempotent(kind: str) -> None:
    info = get_schedule(kind)
    once = info.resolve({}, epochs=12, steps_per_epoch=25)
    assert info.resolve(once, epochs=12, steps_per_epoch=25) == once
    assert set(once) == set(info.params)


def test_epoch_params_become_steps() -> None:
    f = get_schedule("multistep").multiplier(
        {"milestones": [1.5, 3]}, epochs=4, steps_per_epoch=10
    )
    assert [f(t) for t in (14, 15, 29, 30)] == pytest.approx([1, 0.1, 0.1, 0.01], rel=1e-12)
    g = get_schedule("step").multiplier({"step_size": 2}, epochs=6, steps_per_epoch=5)
    assert (g(9), g(10)) == (1.0, 0.1)


def test_unknown_parameter_lists_accepted() -> None:
    with pytest.raises(ConfigError, match="'cosine' got unknown parameter\\(s\\) 'T_max'; "
                       "accepted: warmup_steps, eta_min_ratio"):
        get_schedule("cosine").resolve({"T_max": 5}, epochs=2, steps_per_epoch=10)
    with pytest.raises(ConfigError, match="accepted: none"):
        get_schedule("constant").resolve({"gamma": 0.5}, epochs=2, steps_per_epoch=10)


@pytest.mark.parametrize(
    ("kind", "params", "match"),
    [
        ("plateau", {"factor": 1.0}, "factor .* got 1.0"),
        ("plateau", {"patience": -1}, "patience .* got -1"),
        ("plateau", {"mode": "up"}, "mode must be one of 'min', 'max', got 'up'"),
        ("cosine", {"warmup_steps": 20}, "warmup_steps must be < total steps 20, got 20"),
        ("step", {"step_size": 0}, "step_size \\(epochs\\) .* got 0"),
        ("onecycle", {"anneal": "cosine"}, "anneal .* got 'cosine'"),
    ],
)
def test_bad_values(kind: str, params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        get_schedule(kind).resolve(params, epochs=2, steps_per_epoch=10)
