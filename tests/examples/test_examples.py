"""The worked examples in examples/, run through the CLI's --task on tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_segmentation_is_selected_by_mean_iou_from_the_cli(run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_IMAGES", "48")
    monkeypatch.setenv("EXAMPLE_SIZE", "16")
    out = tmp_path / "seg"
    code, stdout, err = run_cli("select", "--task", f"{EXAMPLES / 'segmentation.py'}:make_task", "--epochs", "4",
                                "--num-iter", "10", "--budget", "4", "--out", str(out))
    assert code == 0, err
    result = json.loads((out / "select.json").read_text())
    assert result["config"]["metric"] == {"name": "mIoU", "higher_is_better": True, "percent": True}
    assert result["config"]["task"]["name"] == "shapes-unet-48x16"
    assert 0.0 <= result["score"] <= 1.0 and result["lr"] in [c["lr"] for c in result["candidates"]]
    page = (out / "report.html").read_text()
    assert "validation mIoU" in page and "accuracy" not in page.lower()
    assert "val mIoU" in err and "chosen LR" in stdout


def test_mean_iou_is_exact_on_a_known_prediction() -> None:
    from lrscout.custom import _import_file

    mean_iou = _import_file(EXAMPLES / "segmentation.py").mean_iou

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # predicts class 1 on the left half
            logits = torch.zeros(len(x), 3, 2, 2)
            logits[:, 1, :, 0] = 1.0
            logits[:, 0, :, 1] = 1.0
            return logits

    mask = torch.tensor([[[1, 0], [1, 1]]])  # class 1 at three pixels, background at one
    batch = {"image": torch.zeros(1, 1, 2, 2), "mask": mask}
    # class 0: hit 1 of union 2 (1/2); class 1: hit 2 of union 3 (2/3); class 2 absent
    assert mean_iou(Fixed(), [batch]) == pytest.approx((1 / 2 + 2 / 3) / 2)


def _image_tree(root: Path, classes: int = 3, per_class: int = 12) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for c in range(classes):
        folder = root / "train" / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            base = torch.zeros(32, 32, 3)
            base[..., c] = 0.8  # each class its own colour, plus noise
            pixels = (255 * (base + 0.2 * torch.rand(32, 32, 3, generator=g)).clamp(0, 1)).to(torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.png")


def test_imagefolder_cnn_with_dict_batches_from_the_cli(run_cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _image_tree(tmp_path / "images")
    monkeypatch.setenv("EXAMPLE_ROOT", str(tmp_path / "images"))
    monkeypatch.setenv("EXAMPLE_LIMIT", "36")
    monkeypatch.setenv("EXAMPLE_BATCH", "8")
    out = tmp_path / "sel"
    code, stdout, err = run_cli("select", "--task", f"{EXAMPLES / 'imagefolder_cnn.py'}:make_task", "--epochs", "4",
                                "--num-iter", "10", "--budget", "4", "--out", str(out))
    assert code == 0, err
    result = json.loads((out / "select.json").read_text())
    assert result["config"]["metric"]["name"] == "accuracy" and result["config"]["steps_per_epoch"] == 4
    assert (out / "report.html").exists()
    code, stdout, err = run_cli("find", "--task", f"{EXAMPLES / 'imagefolder_cnn.py'}:make_task", "--num-iter", "10",
                                "--out", str(tmp_path / "find"), "--json")
    assert code == 0, err
    assert json.loads(stdout)["config"]["loss_fn"] == "CustomTask.loss"  # the range test ran on the task's loss


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "no_such_module_xyz:make_task"], "cannot import 'no_such_module_xyz'"),
    (["--task", "examples/segmentation.py"], "is not MODULE:FUNCTION or FILE.py:FUNCTION"),
    (["--task", "examples/segmentation.py:nothing"], "has no function 'nothing'"),
    (["--task", "examples/segmentation.py:make_task", "--dataset", "mnist"], "--task replaces --dataset"),
])
def test_bad_task_options_get_one_line_and_exit_2(run_cli, args: list[str], message: str,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    code, _, err = run_cli("select", *args, "--out", "/nonexistent/never-written")
    assert code == 2 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(("command", "flag"), [
    ("find", ["--batch-size", "8"]), ("train", ["--seed", "3"]), ("compare", ["--model", "resnet18"]),
    ("finetune", ["--limit", "100"]), ("select", ["--augment"]),
])
def test_every_command_refuses_task_beside_named_task_options(run_cli, command: str,  # type: ignore[no-untyped-def]
                                                              flag: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent)
    code, _, err = run_cli(command, "--task", "examples/segmentation.py:make_task", *flag, "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and f"--task replaces {flag[0]}" in err, err
    assert not (tmp_path / "o").exists()


BAD_TASKS = '''
import torch
import lrscout
from torch.utils.data import TensorDataset

X = torch.randn(32, 4)
Y = torch.randint(0, 2, (32,))


def vector_loss(model, batch):
    return torch.nn.functional.cross_entropy(model(batch[0]), batch[1], reduction="none")


def linear():
    return torch.nn.Linear(4, 2)


def lambda_model():
    return lrscout.task_from(lambda: torch.nn.Linear(4, 2), TensorDataset(X, Y), TensorDataset(X, Y), "sgd")


def non_scalar_loss():
    return lrscout.task_from(linear, TensorDataset(X, Y), TensorDataset(X, Y), "sgd", vector_loss)


def no_batches():
    return lrscout.task_from(linear, list, TensorDataset(X, Y), "sgd")


def not_a_task():
    return 42
'''


@pytest.mark.parametrize(("function", "extra", "message"), [
    ("lambda_model", ["--workers", "2"], "cannot be sent to worker processes"),
    ("non_scalar_loss", [], "it must return a scalar"),
    ("no_batches", [], "got 0"),
    ("not_a_task", [], "returned int, not a training task"),
])
def test_bad_user_tasks_get_one_line_and_exit_2(run_cli, tmp_path: Path, function: str,  # type: ignore[no-untyped-def]
                                                extra: list[str], message: str) -> None:
    path = tmp_path / f"bad_tasks_{function}.py"  # one module name per file
    path.write_text(BAD_TASKS)
    code, _, err = run_cli("select", "--task", f"{path}:{function}", "--epochs", "2", "--num-iter", "10", "--budget", "50",
                           *extra,
                           "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and message in err, err
