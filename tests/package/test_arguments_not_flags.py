"""Library errors speak of arguments; only the CLI speaks of flags.

The library checks its arguments before any work (``lrscout.checks``) and names them in
``LrscoutError.arguments``; the CLI writes those names as its flags.
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest

import lrscout
from lrscout.checks import check_arguments, check_writable_dir, check_writable_file
from lrscout.cli.common import with_flags
from lrscout.engine import find_task
from lrscout.errors import ConfigError, DataError, LrscoutError
from lrscout.task import Task

SRC = Path(lrscout.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _raised_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """The text of every string (f-string parts included) inside a ``raise`` statement."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    found.append((sub.lineno, sub.value))
    return found


def test_no_library_error_names_a_flag() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "cli":
            continue
        for line, text in _raised_strings(ast.parse(path.read_text(encoding="utf-8"))):
            if FLAG.search(text):
                offenders.append(f"{path.relative_to(SRC)}:{line}: {text!r}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(
    "kwargs, argument, message",
    [
        ({"budget": math.nan}, "budget", "budget must be a finite number > 0, got nan"),
        ({"budget": math.inf}, "budget", "budget must be a finite number > 0, got inf"),
        ({"epochs": 0}, "epochs", "epochs must be >= 1, got 0"),
        ({"epochs": 2.5}, "epochs", "epochs must be a whole number"),
        ({"num_iter": 10**11}, "num_iter", "num_iter must be <= 1000000"),
        ({"seed": 10**20}, "seed", "seed must be <= 4294967295"),
        ({"weight_decay": -1.0}, "weight_decay", "weight_decay must be a finite number >= 0"),
        ({"workers": 0}, "workers", "workers must be >= 1"),
    ],
)
def test_check_arguments_names_the_argument(kwargs: dict[str, object], argument: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_arguments(**kwargs)
    assert info.value.arguments == (argument,)
    assert message in str(info.value)


def test_none_and_good_values_pass() -> None:
    check_arguments(budget=None, epochs=1, num_iter=5, seed=0, weight_decay=0.0, workers=1, threads=None)


def test_output_checks_create_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    assert check_writable_dir(target) == target
    assert not (tmp_path / "a").exists()  # probed, then removed again
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder") as info:
        check_writable_dir(tmp_path / "file")
    assert info.value.arguments == ("out_dir",)
    with pytest.raises(ConfigError, match="cannot be created"):
        check_writable_dir(tmp_path / "file" / "sub")
    with pytest.raises(ConfigError, match="longer than 255 bytes"):
        check_writable_dir(tmp_path / ("x" * 256))
    with pytest.raises(ConfigError, match="is a folder"):
        check_writable_file(tmp_path, "plot")
    assert check_writable_file(tmp_path / "new" / "p.png", "plot") == tmp_path / "new" / "p.png"
    assert not (tmp_path / "new").exists()


def test_the_api_checks_before_work(tmp_path: Path) -> None:
    """Bad values fail before any data is loaded: a missing data folder is never reached."""
    task = Task(dataset="mnist", data_dir=str(tmp_path / "no-such-data"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError) as info:
        lrscout.select(task, budget=math.nan, out_dir=tmp_path / "s")
    assert info.value.arguments == ("budget",)
    with pytest.raises(ConfigError) as info:
        lrscout.compare(task, epochs=0, out_dir=tmp_path / "c")
    assert info.value.arguments == ("epochs",)
    with pytest.raises(ConfigError) as info:
        lrscout.train(task, 0.1, epochs=1, out_dir=tmp_path / "file.txt" / "x")
    assert info.value.arguments == ("out_dir",)
    with pytest.raises(ConfigError) as info:
        find_task(task, num_iter=10**11)
    assert info.value.arguments == ("num_iter",)
    with pytest.raises(ConfigError) as info:
        Task(seed=-1)
    assert info.value.arguments == ("seed",)
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # nothing written


def test_errors_keep_their_arguments_through_pickling() -> None:
    """Trials run in worker processes; their errors come back pickled."""
    import pickle

    err = pickle.loads(pickle.dumps(DataError("data_dir x is empty", argument=("data_dir", "download"))))
    assert isinstance(err, DataError) and err.arguments == ("data_dir", "download") and str(err) == "data_dir x is empty"
    assert LrscoutError("plain").arguments == ()


def test_the_cli_writes_arguments_as_flags() -> None:
    flags = {"lr": "--lr", "out_dir": "--out", "data_dir": "--data-dir"}
    assert with_flags("lr must be > 0, got 'lr'", flags) == "--lr must be > 0, got 'lr'"
    assert with_flags("start_lr and lr differ", flags) == "start_lr and --lr differ"  # whole names only
    assert with_flags("data_dir /x/data_dir/lr.pt is empty", flags) == "--data-dir /x/data_dir/lr.pt is empty"
    assert with_flags("use another out_dir\nor delete it", flags) == "use another --out or delete it"
