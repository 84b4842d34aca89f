"""The Ray backend (local Ray, 2 CPUs) chooses exactly what the local backend chooses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

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
    # the chosen finalist's network comes back from the worker that trained it, as the local one's
    assert on_ray.model is not None and local.model is not None
    assert all(torch.equal(a, b) for a, b in zip(on_ray.model.state_dict().values(), local.model.state_dict().values()))
    assert (tmp_path / "run" / "model.pt").is_file()


def test_finetune_on_ray_from_the_cli_gives_the_local_choice(run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``lrscout finetune --backend ray``: the same head LR, ratio and every score as a local run."""
    import json

    import torch

    from lrscout.finetuning import finetune
    from lrscout.models import SimpleCNN

    weights = tmp_path / "w.pt"
    torch.manual_seed(1)
    torch.save(SimpleCNN().state_dict(), weights)  # any weights: the machinery is what is tested
    task = Task(dataset="digits", limit=300, batch_size=32, optimizer="adam", weights=str(weights))
    local = finetune(task, epochs=3, num_iter=20, budget=5.0)
    monkeypatch.chdir(tmp_path)  # a relative --out: Ray workers start elsewhere, yet find the checkpoints
    code, out, err = run_cli("finetune", "--json", "--backend", "ray", "--dataset", "digits", "--limit", "300",
                             "--batch-size", "32", "--model", "simplecnn", "--optimizer", "adam", "--weights",
                             str(weights), "--epochs", "3", "--num-iter", "20", "--budget", "5", "--out", "run")
    assert code == 0, err
    on_ray = json.loads(out)
    assert (on_ray["head_lr"], on_ray["backbone_ratio"]) == (local.head_lr, local.backbone_ratio)
    assert [(t["candidate"], t["rung"], t["val_acc"], t["val_loss"]) for t in on_ray["trials"]] == [
        (t.candidate, t.rung, t.val_acc, t.val_loss) for t in local.trials]
    assert on_ray["val_acc"] == local.val_acc and on_ray["test_acc"] == local.test_acc
    assert len(list((tmp_path / "run" / "trials").glob("*.json"))) == len(local.trials)
