"""Loss-log readers: CSV (detected or named columns), JSON shapes, TensorBoard, and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lrscout.errors import DataError
from lrscout.training import read_loss_log


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_header_detects_columns_and_skips_rows_of_other_metrics(tmp_path: Path) -> None:
    # a Lightning-style CSV: validation metrics on rows of their own
    path = write(tmp_path, "metrics.csv", "epoch,step,train_loss,val_loss\n0,0,2.3,\n0,1,2.1,\n0,1,,2.0\n1,2,nan,\n")
    log = read_loss_log(path)
    assert (log.loss_name, log.step_name) == ("train_loss", "step")
    assert log.steps.tolist() == [0.0, 1.0, 2.0]
    assert log.losses[:2].tolist() == [2.3, 2.1] and math.isnan(log.losses[2])


def test_csv_columns_by_name_separators_and_no_header(tmp_path: Path) -> None:
    path = write(tmp_path, "log.tsv", "iteration\tmy metric\tvalid loss\n10\t1.5\t2\n20\t1.25\t2\n")
    log = read_loss_log(path, loss_col="my metric")
    assert log.steps.tolist() == [10.0, 20.0] and log.losses.tolist() == [1.5, 1.25]
    log = read_loss_log(write(tmp_path, "bare.csv", "2.3\n2.2\n2.0\n"))
    assert log.steps.tolist() == [0.0, 1.0, 2.0] and log.step_name is None
    log = read_loss_log(write(tmp_path, "pairs.csv", "5,2.3\n10,2.2\n"))
    assert log.steps.tolist() == [5.0, 10.0]
    log = read_loss_log(write(tmp_path, "own.csv", "n,batch_loss\n1,3\n2,2\n"), step_col="n")
    assert log.steps.tolist() == [1.0, 2.0] and log.loss_name == "batch_loss"


@pytest.mark.parametrize(
    "obj, steps, losses",
    [
        ([2.3, 2.0, None], [0, 1, 2], [2.3, 2.0, math.nan]),
        ([[10, 2.3], [20, 2.0]], [10, 20], [2.3, 2.0]),
        ([{"step": 1, "loss": 2.3}, {"step": 1, "val_loss": 2.5}, {"step": 2, "loss": 2.1}], [1, 2], [2.3, 2.1]),
        ({"global_step": [0, 5], "train/loss": [2.3, 2.2], "lr": [0.1, 0.1]}, [0, 5], [2.3, 2.2]),
        ({"version": 1, "steps": {"loss": [2.3, None, 2.1], "lr": [1, 1, 1]}, "epochs": [{"epoch": 1}]},
         [0, 1, 2], [2.3, math.nan, 2.1]),
    ],
)
def test_json_shapes(tmp_path: Path, obj: object, steps: list, losses: list) -> None:
    log = read_loss_log(write(tmp_path, "log.json", json.dumps(obj)))
    assert log.steps.tolist() == steps
    np.testing.assert_array_equal(log.losses, np.array(losses, dtype=float))


def test_tensorboard_file_and_directory(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    for step in range(12):
        writer.add_scalar("train/loss", 2.3 * 0.9**step, step)
        writer.add_scalar("val/loss", 2.0, step)
    writer.close()
    log = read_loss_log(tmp_path / "tb")
    assert log.loss_name == "train/loss" and log.steps.tolist() == list(range(12))
    assert log.losses[3] == pytest.approx(2.3 * 0.9**3, rel=1e-6)
    event_file = next((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert read_loss_log(event_file, loss_col="val/loss").losses.tolist() == [2.0] * 12


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.csv", "", "empty"),
        ("a.csv", "step,loss\n", "header but no rows"),
        ("a.csv", "step,accuracy\n1,0.5\n", "no loss column"),
        ("a.csv", "step,loss\n1,2.3\n2,abc\n", "row 3, column 'loss': 'abc' is not a number"),
        ("a.csv", "step,loss\nx,2.3\n", "'x' is not a number"),
        ("a.csv", "step,ce_loss,aux_loss\n1,2,3\n", "several loss columns"),
        ("a.json", "[]", "empty"),
        ("a.json", "{bad", "not valid JSON"),
        ("a.json", '{"acc": [1, 2]}', "no loss column"),
        ("a.json", '[2.3, "high"]', "'high' is not a number"),
        ("a.json", "[2.3, true]", "True is not a number"),
        ("a.json", '"loss"', "must be a list or an object"),
    ],
)
def test_bad_logs_raise_one_line_data_errors(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=message) as info:
        read_loss_log(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_loss_log(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no TensorBoard event files"):
        read_loss_log(tmp_path)
    with pytest.raises(DataError, match="no loss column 'x'"):
        read_loss_log(write(tmp_path, "a.csv", "step,loss\n1,2\n"), loss_col="x")
