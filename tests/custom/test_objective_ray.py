"""The digits objective on Ray chooses what it chooses in process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.tune")

from lrscout.backends.ray import RayBackend  # noqa: E402
from lrscout.selection import select  # noqa: E402

from .objective_by_hand import make_objective  # noqa: E402

KWARGS: dict[str, Any] = {"schedule": "cosine", "epochs": 4, "budget": 4.0}
ROOT = Path(__file__).resolve().parents[2]


def test_objective_on_ray_gives_the_in_process_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = select(make_objective(), **KWARGS)
    # Ray workers import lrscout and the objective's functions by module name, as a cluster would
    path = [str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    with RayBackend(num_cpus=2) as ray_backend:
        mine = select(make_objective(), **KWARGS, backend=ray_backend, out_dir=tmp_path)
    assert [(t.spec.trial_id, t.spec.lr, t.val_acc, t.val_loss, t.steps_trained) for t in mine.trials] == [
        (t.spec.trial_id, t.spec.lr, t.val_acc, t.val_loss, t.steps_trained) for t in here.trials]
    assert (mine.lr, mine.score, mine.cost_runs) == (here.lr, here.score, here.cost_runs)
