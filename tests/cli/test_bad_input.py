"""Every bad input of every command: one line on stderr, exit 2, before any work.

One table: (command line, what the line must say). Paths in braces name the damaged or
unwritable inputs built once by the ``inputs`` fixture. A case passes when the command
exits 2 with exactly one line that says what is wrong, never a traceback or an
"internal error", and writes no result: the checks run before any training starts, so
every case takes well under a second of work.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import pytest
import torch

LONG = "x" * 300  # a file name over the 255 bytes a file system allows

CASES: list[tuple[str, list[str], str]] = [
    # find
    ("find-num-iter-huge", ["find", "--num-iter", "100000000000"], "--num-iter must be <= 1000000"),
    ("find-seed-huge", ["find", "--seed", "99999999999999999999"], "--seed must be <= 4294967295"),
    ("find-seed-negative", ["find", "--seed", "-1"], "--seed must be >= 0, got -1"),
    ("find-start-lr-nan", ["find", "--start-lr", "nan"], "--start-lr must be a finite number > 0"),
    ("find-end-lr-inf", ["find", "--end-lr", "inf"], "--end-lr must be a finite number > 0"),
    ("find-batch-size-0", ["find", "--batch-size", "0"], "--batch-size must be >= 1"),
    ("find-limit-3", ["find", "--limit", "3"], "--limit must be >= 10"),
    ("find-out-file", ["find", "--out", "{file}"], "is a file, not a folder"),
    ("find-out-under-file", ["find", "--out", "{file}/sub"], "cannot be created"),
    ("find-out-long-name", ["find", "--out", "{tmp}/" + LONG], "longer than 255 bytes"),
    ("find-out-read-only", ["find", "--out", "{read_only}/out"], "is not writable"),
    ("find-out-proc", ["find", "--out", "/proc/lrscout-no-such/out"], "is not writable"),
    ("find-image-corrupt", ["find", "--dataset", "imagefolder", "--data-dir", "{images_corrupt}"],
     "is truncated or corrupt"),
    ("find-image-truncated", ["find", "--dataset", "imagefolder", "--data-dir", "{images_truncated}"],
     "is truncated or corrupt"),
    ("find-idx-random-labels", ["find", "--dataset", "mnist", "--data-dir", "{mnist_random_labels}"],
     "MNIST files under"),
    ("find-idx-truncated", ["find", "--dataset", "mnist", "--data-dir", "{mnist_truncated}"],
     "are truncated or corrupt"),
    ("find-mnist-missing", ["find", "--dataset", "mnist", "--data-dir", "{empty}"], "MNIST not found"),
    ("find-usps-missing", ["find", "--dataset", "usps", "--data-dir", "{empty}"], "USPS not found"),
    # select
    ("select-budget-nan", ["select", "--budget", "nan"], "--budget must be a finite number > 0, got nan"),
    ("select-budget-inf", ["select", "--budget", "inf"], "--budget must be a finite number > 0, got inf"),
    ("select-budget-0", ["select", "--budget", "0"], "--budget must be a finite number > 0"),
    ("select-epochs-0", ["select", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    ("select-workers-0", ["select", "--workers", "0"], "--workers must be >= 1"),
    ("select-threads-0", ["select", "--threads", "0"], "--threads must be >= 1"),
    ("select-num-iter-huge", ["select", "--num-iter", "100000000000"], "--num-iter must be <= 1000000"),
    ("select-out-file", ["select", "--out", "{file}"], "is a file, not a folder"),
    ("select-state-list", ["select", "--budget", "100", "--out", "{state_list}"], "is not a selection's state file"),
    ("select-budget-small", ["select", "--budget", "0.5"], "--budget 0.5 runs is too small"),
    ("select-param", ["select", "--param", "novalue"], "is not KEY=VALUE"),
    # compare
    ("compare-epochs-0", ["compare", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    ("compare-budget-nan", ["compare", "--budget", "nan"], "--budget must be a finite number > 0"),
    ("compare-out-file", ["compare", "--out", "{file}"], "is a file, not a folder"),
    ("compare-optimizer-unknown", ["compare", "--optimizers", "sgd,adamax"], "unknown optimizer"),
    # train
    ("train-epochs-0", ["train", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    ("train-lr-text", ["train", "--lr", "abc"], "--lr must be a positive number or 'find'"),
    ("train-lr-nan", ["train", "--lr", "nan"], "--lr must be a positive finite number"),
    ("train-lr-inf", ["train", "--lr", "inf"], "--lr must be a positive finite number"),
    ("train-seed-huge", ["train", "--seed", "99999999999999999999"], "--seed must be <= 4294967295"),
    ("train-out-file", ["train", "--lr", "0.1", "--out", "{file}"], "is a file, not a folder"),
    ("train-out-long-name", ["train", "--lr", "0.1", "--out", "{tmp}/" + LONG], "longer than 255 bytes"),
    # finetune
    ("finetune-no-weights", ["finetune", "--model", "simplecnn"], "--pretrained or --weights"),
    ("finetune-weight-decay", ["finetune", "--weights", "{checkpoint}", "--weight-decay", "-1"],
     "--weight-decay must be a finite number >= 0"),
    ("finetune-budget-nan", ["finetune", "--weights", "{checkpoint}", "--budget", "nan"],
     "--budget must be a finite number > 0"),
    ("finetune-head-lr", ["finetune", "--weights", "{checkpoint}", "--head-lr", "abc"], "--head-lr must be"),
    ("finetune-ratio", ["finetune", "--weights", "{checkpoint}", "--backbone-ratio", "-1"], "--backbone-ratio must"),
    ("finetune-freeze", ["finetune", "--weights", "{checkpoint}", "--freeze-epochs", "3"], "--freeze-epochs must be"),
    ("finetune-epochs-0", ["finetune", "--weights", "{checkpoint}", "--epochs", "0"], "--epochs must be >= 1"),
    ("finetune-out-file", ["finetune", "--weights", "{checkpoint}", "--out", "{file}"], "is a file, not a folder"),
    ("finetune-weights-text", ["finetune", "--weights", "{file}"], "not a PyTorch checkpoint, or truncated or corrupt"),
    ("finetune-weights-pickle", ["finetune", "--weights", "{pickle}"], "it holds objects other than tensors"),
    ("finetune-weights-missing", ["finetune", "--weights", "{tmp}/none.pt"], "does not exist"),
    # diagnose
    ("diagnose-long-field", ["diagnose", "{long_field_csv}"], "not a readable CSV"),
    ("diagnose-plot-folder", ["diagnose", "{good_csv}", "--plot", "{tmp}"], "is a folder; give a file name"),
    ("diagnose-plot-long", ["diagnose", "{good_csv}", "--plot", "{tmp}/" + LONG + ".png"], "longer than 255"),
    ("diagnose-missing", ["diagnose", "{tmp}/none.csv"], "no such file"),
    ("diagnose-loss-col", ["diagnose", "{good_csv}", "--loss-col", "nope"], "no loss column 'nope'"),
    # the typer layer
    ("usage-bad-int", ["select", "--epochs", "ten"], "Invalid value"),
    ("usage-unknown-option", ["train", "--no-such-flag"], "No such option"),
]

#: Commands that train on digits unless told otherwise: cap the data so that a case that
#: wrongly got past the checks fails quickly instead of training for minutes.
TRAINING = {"find", "select", "compare", "train", "finetune"}


def _idx(path: Path, dims: tuple[int, ...], body: bytes) -> None:
    """An IDX (MNIST) file: magic 0x0000_08_NN, big-endian sizes, then ``body``."""
    path.write_bytes(struct.pack(">I", 0x0800 + len(dims)) + struct.pack(f">{len(dims)}I", *dims) + body)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from PIL import Image

    tmp = tmp_path_factory.mktemp("bad")
    paths: dict[str, Path] = {"tmp": tmp}
    for name in ("images_corrupt", "images_truncated"):
        root = tmp / name
        for c in ("a", "b"):
            (root / c).mkdir(parents=True)
            for i in range(6):
                Image.new("L", (8, 8), color=30 * i).save(root / c / f"{i}.png")
        paths[name] = root
    (tmp / "images_corrupt" / "b" / "3.png").write_bytes(b"this is not a png")
    png = (tmp / "images_truncated" / "b" / "4.png").read_bytes()
    (tmp / "images_truncated" / "b" / "4.png").write_bytes(png[: len(png) // 2])
    for name in ("mnist_random_labels", "mnist_truncated"):
        raw = tmp / name / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for split, n in (("train", 4), ("t10k", 2)):
            _idx(raw / f"{split}-images-idx3-ubyte", (n, 28, 28), bytes(n * 784))
            _idx(raw / f"{split}-labels-idx1-ubyte", (n,), bytes(n))
        paths[name] = tmp / name
    (tmp / "mnist_random_labels/MNIST/raw/train-labels-idx1-ubyte").write_bytes(os.urandom(64))
    _idx(tmp / "mnist_truncated/MNIST/raw/train-images-idx3-ubyte", (60000, 28, 28), bytes(5000))
    (tmp / "empty").mkdir()
    paths["empty"] = tmp / "empty"
    paths["file"] = tmp / "a-file.txt"
    paths["file"].write_text("not a folder, not a checkpoint\n")
    paths["read_only"] = tmp / "read-only"
    paths["read_only"].mkdir(mode=0o555)
    paths["state_list"] = tmp / "state-list"
    paths["state_list"].mkdir()
    (paths["state_list"] / "select-state.json").write_text("[]")
    paths["pickle"] = tmp / "namespace.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "args": Path("x")}, paths["pickle"])
    paths["checkpoint"] = tmp / "weights.pt"
    torch.save({"w": torch.zeros(2)}, paths["checkpoint"])  # never read: the cases fail before
    paths["good_csv"] = tmp / "good.csv"
    paths["good_csv"].write_text("step,loss\n" + "".join(f"{i},{2 / (i + 1)}\n" for i in range(40)))
    paths["long_field_csv"] = tmp / "long-field.csv"
    paths["long_field_csv"].write_text("step,loss\n1,2.0\n2," + "9" * 200_000 + "\n")
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.parametrize("args, message", [pytest.param(a, m, id=i) for i, a, m in CASES])
def test_bad_input_is_one_line_and_exit_2_before_work(run_cli, inputs: dict[str, str], tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      args: list[str], message: str) -> None:
    if "{read_only}" in " ".join(args) and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder")
    if args[-1].startswith("/proc/") and not sys.platform.startswith("linux"):
        pytest.skip("/proc is Linux's")
    argv = [a.format(**inputs) for a in args]
    out_dir = tmp_path / "out"
    if argv[0] in TRAINING and "--limit" not in argv:
        argv += ["--limit", "60"]
    if "--out" not in argv and argv[0] != "diagnose":
        argv += ["--out", str(out_dir)]
    code, out, err = run_cli(*argv)
    assert code == 2, (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and message in err, err
    assert not out_dir.exists() or not any(out_dir.iterdir())  # nothing written


def test_every_command_has_cases() -> None:
    commands = {args[0] for _, args, _ in CASES}
    assert commands >= {"find", "select", "compare", "train", "finetune", "diagnose"}


def test_a_damaged_trial_checkpoint_fails_a_resume_at_once(run_cli, inputs: dict[str, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A resumed selection reads its trial checkpoints before it runs anything."""
    argv = ["select", "--limit", "60", "--epochs", "1", "--num-iter", "8", "--budget", "12", "--out", str(tmp_path)]
    code, _, err = run_cli(*argv)
    assert code == 0, err
    (tmp_path / "trials").mkdir(exist_ok=True)
    damaged = tmp_path / "trials" / "t0-0.pt"
    torch.save({"model": {"w": torch.zeros(1000)}}, damaged)
    damaged.write_bytes(damaged.read_bytes()[:300])
    state = json.loads((tmp_path / "select-state.json").read_text())
    code, _, err = run_cli(*argv)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "is truncated or corrupt" in err and "--out" in err, err
    assert json.loads((tmp_path / "select-state.json").read_text()) == state
