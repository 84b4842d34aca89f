"""`lrscout find`: files written, JSON schema, exit codes for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lrscout.results import FindResult


def test_find_writes_png_and_json_and_prints_table(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("find", "--limit", "400", "--num-iter", "40", "--out", str(tmp_path))
    assert code == 0, err
    assert "lrscout" in out and "recommended LR" in out
    data = json.loads((tmp_path / "find.json").read_text())
    assert set(data["suggestions"]) >= {"steep", "valley", "minimum", "slide"}
    lo, hi = data["interval"]
    assert 0 < lo <= data["lr"] <= hi
    assert len(data["history"]["lr"]) == len(data["history"]["loss"]) > 5
    assert isinstance(data["stopped_early"], bool) and data["config"]["task"]["dataset"] == "digits"
    assert FindResult.from_json(data).lr == data["lr"]
    png = (tmp_path / "find.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_find_json_flag_prints_json_only(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("find", "--json", "--limit", "300", "--num-iter", "30", "--optimizer", "adam",
                           "--out", str(tmp_path))
    assert code == 0
    data = json.loads(out)
    assert data["config"]["task"]["optimizer"] == "adam"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "imagenet"], "unknown dataset"),
        (["--model", "vgg99"], "unknown model"),
        (["--optimizer", "adamax"], "unknown optimizer"),
        (["--start-lr", "1", "--end-lr", "0.1"], "start_lr must be < end_lr"),
        (["--num-iter", "3"], "--num-iter must be >= 5, got 3"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/lrscout"], "does not exist"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--num-iter", "abc"], "Invalid value"),
    ],
)
def test_bad_input_exits_2_with_one_line(run_cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run_cli("find", *args, "--out", str(tmp_path / "o"))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "find.json").exists()


def test_empty_data_dir_and_single_class_exit_2(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("find", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "empty"))
    assert code == 2 and "no images" in err
    one = tmp_path / "one" / "cat"
    one.mkdir(parents=True)
    for i in range(12):
        Image.new("L", (8, 8), color=i).save(one / f"{i}.png")
    code, _, err = run_cli("find", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "one"))
    assert code == 2 and "one class" in err


def test_find_on_augmented_digits_mnist_records_the_protocol(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run_cli("find", "--dataset", "digits-mnist", "--augment", "--limit", "300", "--num-iter", "30",
                           "--out", str(tmp_path))
    assert code == 0, err
    task = json.loads((tmp_path / "find.json").read_text())["config"]["task"]
    assert task["augment"] is True and task["dataset"] == "digits-mnist"
