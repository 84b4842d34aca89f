"""Argument checks shared by the public API: one rule per argument name, run before any work.

Every entry point (``find_task``, ``train``, ``select``, ``compare``, ``finetune``) calls
:func:`check_arguments` with the arguments it was given, so a bad value fails in
milliseconds with a :class:`~lrscout.errors.ConfigError` that names the argument
(``error.arguments``), never after a range test or as a ``ZeroDivisionError`` /
``MemoryError`` deep inside. An output path is checked for writability the same way.

Example::

    check_arguments(epochs=10, budget=2.5, out_dir="runs/select")   # fine
    check_arguments(budget=float("nan"))   # ConfigError: budget must be a finite number > 0, got nan
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: Largest seed: numpy's legacy seeding and most torch generators take 32-bit seeds.
MAX_SEED = 2**32 - 1
#: Most steps of a range test (its history is held in memory; a million is already hours).
MAX_NUM_ITER = 1_000_000
#: Most epochs of any protocol.
MAX_EPOCHS = 100_000
#: Most local worker processes / torch threads per trial.
MAX_WORKERS = 4096


def _integer(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number, got {value!r}", argument=name)
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}", argument=name)
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high}, got {value}", argument=name)


def _number(name: str, value: Any, low: float, *, open_low: bool) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}", argument=name) from None
    if not math.isfinite(number) or number < low or (open_low and number == low):
        raise ConfigError(f"{name} must be a finite number {'>' if open_low else '>='} {low:g}, got {value!r}",
                          argument=name)


def check_writable_dir(path: str | os.PathLike[str], name: str = "out_dir") -> Path:
    """``path`` as a :class:`Path` if a folder can be written there (it exists and takes a
    file, or it can be created); :class:`ConfigError` naming ``name`` otherwise.

    The check is a real one (permissions, read-only mounts and root all answer alike): the
    missing folders are created, a temporary file is written, and what it created is
    removed again, so a rejected run leaves nothing behind.
    """
    folder = Path(path)
    for part in folder.parts:
        if len(os.fsencode(part)) > 255:
            raise ConfigError(f"{name} {str(folder)[:60]}... has a name longer than 255 bytes", argument=name)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{name} {folder} is a file, not a folder", argument=name)
    missing = [p for p in (folder.absolute(), *folder.absolute().parents) if not p.exists()]
    blocker = next((p for p in folder.absolute().parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"{name} {folder} cannot be created: {blocker} is a file", argument=name)
    created: list[Path] = []
    try:
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{name} {folder} is not writable ({exc.strerror or exc})", argument=name) from None
    finally:
        for p in reversed(created):
            try:
                p.rmdir()
            except OSError:  # another process put something there meanwhile: leave it
                break
    return folder


def check_writable_file(path: str | os.PathLike[str], name: str) -> Path:
    """``path`` as a :class:`Path` if a file can be written there (not a folder; its folder writable)."""
    file = Path(path)
    if len(os.fsencode(file.name)) > 255:
        raise ConfigError(f"{name} {str(file)[:60]}... has a name longer than 255 bytes", argument=name)
    if file.is_dir():
        raise ConfigError(f"{name} {file} is a folder; give a file name", argument=name)
    if file.exists() and not os.access(file, os.W_OK):
        raise ConfigError(f"{name} {file} is not writable", argument=name)
    check_writable_dir(file.absolute().parent, name)
    return file


#: argument name -> check(name, value); ``None`` values are never checked (they mean "default").
RULES: dict[str, Callable[[str, Any], Any]] = {
    "epochs": lambda n, v: _integer(n, v, 1, MAX_EPOCHS),
    "num_iter": lambda n, v: _integer(n, v, 5, MAX_NUM_ITER),
    "seed": lambda n, v: _integer(n, v, 0, MAX_SEED),
    "batch_size": lambda n, v: _integer(n, v, 1),
    "workers": lambda n, v: _integer(n, v, 1, MAX_WORKERS),
    "threads": lambda n, v: _integer(n, v, 1, MAX_WORKERS),
    "limit": lambda n, v: _integer(n, v, 10),
    "budget": lambda n, v: _number(n, v, 0.0, open_low=True),
    "start_lr": lambda n, v: _number(n, v, 0.0, open_low=True),
    "end_lr": lambda n, v: _number(n, v, 0.0, open_low=True),
    "weight_decay": lambda n, v: _number(n, v, 0.0, open_low=False),
    "layer_decay": lambda n, v: _number(n, v, 0.0, open_low=True),
    "out_dir": lambda n, v: check_writable_dir(v, n),
}


def check_arguments(**values: Any) -> None:
    """Check each named argument by the rule of its name (:data:`RULES`); ``None`` passes.

    Raises :class:`ConfigError` with ``arguments == (name,)`` for the first bad value.
    """
    for name, value in values.items():
        if value is not None:
            RULES[name](name, value)
