"""The hand-written digits task on Ray chooses what the named task chooses locally."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from lrscout.backends.ray import RayBackend  # noqa: E402
from lrscout.selection import select  # noqa: E402

from .digits_by_hand import NAMED, make_task  # noqa: E402

KWARGS = {"epochs": 4, "budget": 4.0, "find_kwargs": {"num_iter": 20}}
TESTS = str(Path(__file__).resolve().parents[1])


def test_hand_written_task_on_ray_gives_the_named_local_choice(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    named = select(NAMED, **KWARGS)  # type: ignore[arg-type]
    # Ray workers import the task's functions by module name, as a cluster would
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    with RayBackend(num_cpus=2) as ray_backend:
        mine = select(make_task(), **KWARGS, backend=ray_backend, out_dir=tmp_path)  # type: ignore[arg-type]
    assert [(t.spec.trial_id, t.spec.lr, t.val_acc, t.val_loss) for t in mine.trials] == [
        (t.spec.trial_id, t.spec.lr, t.val_acc, t.val_loss) for t in named.trials]
    assert (mine.lr, mine.score) == (named.lr, named.score)
