"""`lrscout finetune`: files written, table printed, exit codes for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_finetune_cli_writes_files_and_prints_the_grid(run_cli, digits_ckpt: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("finetune", "--dataset", "digits", "--limit", "400", "--model", "simplecnn",
                             "--weights", str(digits_ckpt), "--epochs", "2", "--layer-decay", "0.5",
                             "--freeze-epochs", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert "head LR x backbone ratio" in out and "chosen: head LR" in out
    data = json.loads((tmp_path / "finetune.json").read_text())
    assert data["freeze_epochs"] == 1 and data["layer_decay"] == 0.5
    names = [g["name"] for g in data["groups"]]
    assert names == ["head", "backbone:conv", "backbone:fc1"]
    lrs = {g["name"]: g["lr"] for g in data["groups"]}
    assert lrs["backbone:conv"] == pytest.approx(0.5 * lrs["backbone:fc1"])
    assert (tmp_path / "train.png").exists() and (tmp_path / "last.pt").exists()


def test_finetune_cli_json_and_given_lrs(run_cli, digits_ckpt: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("finetune", "--json", "--dataset", "digits", "--limit", "300", "--model", "simplecnn",
                             "--weights", str(digits_ckpt), "--epochs", "1", "--head-lr", "0.003",
                             "--backbone-ratio", "0.1", "--out", str(tmp_path))
    assert code == 0, err
    data = json.loads(out)
    assert data["head_lr"] == 0.003 and data["backbone_ratio"] == 0.1 and data["find"] is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "simplecnn"], "--pretrained or --weights"),
        (["--model", "simplecnn", "--pretrained"], "no published pretrained parameters; give --weights"),
        (["--model", "simplecnn", "--weights", "/no/such.pt"], "does not exist"),
        (["--model", "simplecnn", "--weights", "W", "--pretrained"], "not both"),
        (["--model", "simplecnn", "--weights", "W", "--backbone-ratio", "lots"], "--backbone-ratio"),
        (["--model", "simplecnn", "--weights", "W", "--epochs", "2", "--freeze-epochs", "2"], "--freeze-epochs"),
        (["--model", "simplecnn", "--weights", "W", "--backbone-ratio", "0.3", "--ratio-sweep"], "ratio sweep"),
    ],
)
def test_finetune_cli_errors_exit_2(run_cli, digits_ckpt: Path, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    args = [str(digits_ckpt) if a == "W" else a for a in args]
    code, out, err = run_cli("finetune", "--dataset", "digits", "--limit", "200", *args, "--out", str(tmp_path))
    assert code == 2
    assert message in err and "Traceback" not in err
