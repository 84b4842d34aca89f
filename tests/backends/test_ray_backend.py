"""The Ray backend (local Ray, 2 CPUs) chooses exactly what the local backend chooses."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from lrscout.backends.ray import RayBackend  # noqa: E402
from lrscout.selection import select  # noqa: E402
from lrscout.task import Task  # noqa: E402

TASK = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=300)
KWARGS = {"epochs": 4, "budget": 4.0, "find_kwargs": {"num_iter": 20}}


def test_ray_backend_gives_the_local_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = select(TASK, **KWARGS)  # type: ignore[arg-type]
    seen: list[str] = []
    monkeypatch.chdir(tmp_path)  # a relative --out: Ray workers start elsewhere, yet find the checkpoints
    with RayBackend(num_cpus=2) as ray_backend:
        on_ray = select(TASK, **KWARGS, backend=ray_backend, out_dir="run",  # type: ignore[arg-type]
                        on_trial=lambda t: seen.append(t.spec.trial_id))
    assert on_ray.lr == local.lr and on_ray.score == local.score
    assert [(c.lr, c.score, c.steps_run) for c in on_ray.candidates] == [
        (c.lr, c.score, c.steps_run) for c in local.candidates]
    assert [t.history for t in on_ray.trials] == [t.history for t in local.trials]
    assert sorted(seen) == sorted(t.spec.trial_id for t in local.trials)  # streamed back as each finished
    assert len(list((tmp_path / "run" / "trials").glob("*.json"))) == len(local.trials)
    finalists = [t for t in on_ray.trials if t.spec.rung == 1]
    assert finalists and all(t.steps_trained == 16 for t in finalists)  # 2 epochs of 8 steps: continued from rung 0's checkpoints
