"""Backends run jobs and hand results back in order; the process pool equals the loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrscout.backends import LocalBackend, get_backend
from lrscout.errors import ConfigError, DataError
from lrscout.schedules import schedule_for
from lrscout.selection.trial import TrialSpec, run_payload
from lrscout.task import Task

TASK = Task(optimizer="adam", limit=300, batch_size=32)


def payloads(tmp: Path) -> list[dict]:  # type: ignore[type-arg]
    spe = len(TASK.splits().loader("train", 32))
    out = []
    for i, lr in enumerate((3e-4, 3e-3, 3e-2)):
        spec = TrialSpec(f"t{i}", i, lr, 0, spe, schedule_for(lr, "constant", 1, spe).to_json())
        out.append({"task": TASK.to_json(), "trial": spec.to_json(), "checkpoint_dir": str(tmp), "threads": 1})
    return out


def test_sequential_map_keeps_order_and_reports_each_result() -> None:
    seen: list[int] = []
    with LocalBackend() as b:
        assert b.map(lambda p: {"y": 2 * p["x"]}, [{"x": 1}, {"x": 2}], on_result=lambda i, r: seen.append(i)) == [
            {"y": 2}, {"y": 4}]
    assert seen == [0, 1]


def test_process_pool_gives_the_sequential_results(tmp_path: Path) -> None:
    jobs = payloads(tmp_path)
    with LocalBackend() as b:
        sequential = b.map(run_payload, jobs)
    seen: list[int] = []
    with LocalBackend(workers=2) as b:
        pooled = b.map(run_payload, jobs, on_result=lambda i, r: seen.append(i))
        with pytest.raises(DataError):  # a worker's exception comes back to the caller
            b.map(run_payload, [{**jobs[0], "task": {**jobs[0]["task"], "batch_size": 16}}])
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in sequential]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in pooled] == strip
    assert sorted(seen) == [0, 1, 2]


def test_backend_registry() -> None:
    assert get_backend("local", workers=3).workers == 3  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="unknown backend 'slurm'; choose one of: local, ray"):
        get_backend("slurm")
    with pytest.raises(ConfigError, match="need backend 'ray'"):
        get_backend("local", ray_address="auto")
    with pytest.raises(ConfigError):
        LocalBackend(workers=0)
