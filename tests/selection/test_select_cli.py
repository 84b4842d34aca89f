"""`lrscout select` / `lrscout compare`: exit codes, printed result, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SMALL = ["--limit", "300", "--batch-size", "32", "--epochs", "4", "--num-iter", "20", "--budget", "4"]


def test_select_cli_prints_the_choice_and_writes_json_and_report(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("select", *SMALL, "--out", str(tmp_path))
    assert code == 0, err
    assert "chosen LR" in out and "cost:" in out and "trial r0-c" in err
    data = json.loads((tmp_path / "select.json").read_text())
    assert {"lr", "score", "candidates", "schedule", "cost_runs"} <= set(data)
    assert f"{data['lr']:.4g}" in out
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "model.pt (the chosen run's trained weights)" in " ".join(out.split())
    import torch
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["lr"] == data["lr"] and saved["val_acc"] == data["score"]
    # rerun into the same directory: resumes (nothing to train) and prints the same choice
    code2, out2, err2 = run_cli("select", *SMALL, "--out", str(tmp_path), "--json")
    assert code2 == 0 and json.loads(out2)["lr"] == data["lr"] and "trial" not in err2


def test_select_cli_schedule_parameters(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("select", *SMALL, "--schedule", "step", "-p", "step_size=2", "-p", "gamma=0.5",
                             "--json", "--out", str(tmp_path))
    assert code == 0, err
    assert json.loads(out)["schedule"]["params"] == {"step_size": 2, "gamma": 0.5}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--schedule", "nope"], "unknown schedule"),
        (["--optimizer", "prodigy"], "sets its own step size"),
        (["--backend", "nope"], "unknown backend"),
        (["--param", "step_size"], "not KEY=VALUE"),
        (["--schedule", "step", "--param", "size=3"], "unknown parameter"),
        (["--budget", "0.5"], "too small"),
        (["--epochs", "0"], "epochs must be"),
        (["--dataset", "nope"], "unknown dataset"),
    ],
)
def test_select_cli_bad_input_exits_2_with_one_line(run_cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("select", *SMALL, *args, "--out", str(tmp_path / "x"))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_compare_cli(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("compare", "--optimizers", "sgd,adam", "--schedules", "constant", *SMALL,
                             "--out", str(tmp_path))
    assert code == 0, err
    assert "best:" in out and (tmp_path / "compare.json").exists() and (tmp_path / "report.html").exists()
    code, _, err = run_cli("compare", "--optimizers", "sgd,nope", "--out", str(tmp_path / "y"))
    assert code == 2 and "unknown optimizer" in err


def test_select_cli_sizes_the_range_test_to_a_short_protocol(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No --num-iter: a one-epoch protocol of 10 steps gets a sweep it can afford, and a
    budget that cannot buy one verified trial is one line and exit 2, before any work."""
    code, out, err = run_cli("select", "--batch-size", "128", "--epochs", "1", "--budget", "1",
                             "--out", str(tmp_path / "small"))
    assert code == 2 and "use --budget >= 1.9" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "small").exists()
    code, out, err = run_cli("select", "--batch-size", "128", "--epochs", "1", "--json", "--out", str(tmp_path / "ok"))
    assert code == 0, err
    data = json.loads(out)
    assert data["config"]["range_test"] == {"steps": 20, "batch_size": 32} and data["cost_runs"] <= 2.5
