"""`lrscout train` and `lrscout diagnose`: exit codes, files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import lrscout.cli.training as cli_train

SMALL = ("--limit", "400", "--epochs", "2")


def test_train_cli_writes_files_and_prints_a_summary(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("train", *SMALL, "--lr", "0.1", "--schedule", "cosine", "--param", "warmup_steps=2",
                             "--out", str(tmp_path))
    assert code == 0, err
    assert "best val acc" in out and "cosine" in out
    for name in ("metrics.csv", "epochs.csv", "train.json", "train.png", "last.pt", "best.pt"):
        assert (tmp_path / name).is_file(), name
    data = json.loads((tmp_path / "train.json").read_text())
    assert data["schedule"]["params"]["warmup_steps"] == 2 and data["task"]["batch_size"] == 32


def test_train_cli_json_and_lr_find(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("train", "--limit", "400", "--epochs", "1", "--json", "--out", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["lr_source"] == "find" and data["find"]["lr"] == data["lr"]


def test_train_cli_guard_events_are_shown(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("train", *SMALL, "--lr", "5", "--out", str(tmp_path))
    assert code == 0, err
    assert "guard events" in out and "rollback" in out


def test_train_cli_stops_with_one_line_when_the_guard_gives_up(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run_cli("train", *SMALL, "--lr", "1000", "--schedule", "constant", "--max-recoveries", "0",
                           "--out", str(tmp_path))
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "training stopped" in lines[0] and "Traceback" not in err
    assert json.loads((tmp_path / "train.json").read_text())["stopped"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--schedule", "bogus"], "unknown schedule 'bogus'"),
        (["--lr", "abc"], "positive number or 'find'"),
        (["--param", "pct_start"], "KEY=VALUE"),
        (["--param", "bogus=1"], "unknown parameter"),
        (["--guard-factor", "1"], "guard factor"),
        (["--epochs", "zero"], "Invalid value"),
    ],
)
def test_train_cli_bad_input_exits_2(run_cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run_cli("train", "--limit", "400", "--lr", "0.1", *args, "--out", str(tmp_path / "o"))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o" / "train.json").exists()


def test_train_cli_ctrl_c_exits_130_and_leaves_valid_files(run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real_train = cli_train.train

    def interrupted(*args, progress=None, **kwargs):  # type: ignore[no-untyped-def]
        def press_ctrl_c(phase: str, done: int, total: int, info: str) -> None:
            if phase == "train" and done == 15:
                raise KeyboardInterrupt

        return real_train(*args, progress=press_ctrl_c, **kwargs)

    monkeypatch.setattr(cli_train, "train", interrupted)
    code, _, err = run_cli("train", *SMALL, "--lr", "0.1", "--out", str(tmp_path))
    assert code == 130 and "interrupted" in err
    assert torch.load(tmp_path / "last.pt")["epoch"] == 1
    assert json.loads((tmp_path / "train.json").read_text())["finished"] is False


def test_diagnose_cli_table_json_and_plot(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "log.csv"
    log.write_text("step,loss\n" + "".join(f"{i},{2.3 * 0.97**i + 0.05}\n" for i in range(100)))
    code, out, err = run_cli("diagnose", str(log), "--plot", str(tmp_path / "d.png"))
    assert code == 0, err
    assert "healthy" in out and "progress" in out
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run_cli("diagnose", str(log), "--json")
    data = json.loads(out)
    assert data["verdict"] == "healthy" and data["source"]["loss"] == "loss"


@pytest.mark.parametrize(
    "name, text, extra, message",
    [
        ("a.csv", "step,accuracy\n1,0.5\n", [], "no loss column"),
        ("a.csv", "", [], "empty"),
        ("a.csv", "step,loss\n1,2.3\n2,oops\n", [], "'oops' is not a number"),
        ("a.csv", "step,loss\n1,2.3\n2,2.2\n", [], "at least 8"),
        ("a.csv", "step,loss\n1,2.3\n", ["--loss-col", "ce"], "no loss column 'ce'"),
        ("a.json", "{}", [], "empty"),
        ("missing.csv", None, [], "no such file"),
    ],
)
def test_diagnose_cli_bad_logs_exit_2_with_one_line(run_cli, tmp_path: Path, name: str, text: str | None,  # type: ignore[no-untyped-def]
                                                    extra: list[str], message: str) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    code, out, err = run_cli("diagnose", str(path), *extra)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_train_cli_augment_on_digits_mnist(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("train", "--dataset", "digits-mnist", "--augment", *SMALL, "--lr", "0.003",
                             "--optimizer", "adam", "--out", str(tmp_path))
    assert code == 0, err
    task = json.loads((tmp_path / "train.json").read_text())["task"]
    assert task["augment"] is True and task["dataset"] == "digits-mnist"
