"""Atomic file writes: a result file is either the old one or the complete new one.

The temporary file is created with ``os.open(..., 0o666)`` so that the process umask
applies to it (``tempfile.mkstemp`` would force mode 0600): a result file gets the same
permissions as one written with plain ``open(path, "w")``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any, Callable

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _temp_beside(target: Path) -> Path:
    """A new, empty file next to ``target`` (same directory, so the rename is atomic),
    created with mode 0666 less the umask."""
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, _CREATE, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {target}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file over ``path`` (same directory)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _temp_beside(target)
    try:
        write(tmp_path)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


LOCK_NAME = ".lrscout.lock"


class DirLock:
    """An exclusive claim on a directory for the life of one run (``filelock``: an OS lock
    on ``DIR/.lrscout.lock``, released when the holder exits or dies, so a killed run
    never leaves the directory locked). A second claimant gets :class:`ConfigError` at
    once instead of two runs interleaving their files.

    ``created`` says whether the directory was made by this claim (so a run that ends
    with nothing in it can remove it again).
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "run") -> None:
        from filelock import FileLock

        from .errors import ConfigError

        self.path = Path(path)
        self.what = what
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is a file, not a folder", argument="out_dir")
        self.created = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / LOCK_NAME))

    def acquire(self) -> DirLock:
        from filelock import Timeout

        from .errors import ConfigError

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(f"{self.path} is in use by another lrscout {self.what} (locked: {LOCK_NAME}); "
                              "wait for it to finish or choose another output directory",
                              argument="out_dir") from None
        return self

    def release(self, *, remove_if_empty: bool = False) -> None:
        """Release the claim; with ``remove_if_empty``, a directory this claim created and
        that holds nothing but the lock file goes too."""
        try:
            if remove_if_empty and self.created and self._lock.is_locked:
                lock_file = self.path / LOCK_NAME
                if all(p == lock_file for p in self.path.iterdir()):
                    lock_file.unlink(missing_ok=True)
                    self._lock.release()
                    try:
                        self.path.rmdir()
                    except OSError:  # someone else has just put a file there: leave it
                        pass
                    return
        finally:
            if self._lock.is_locked:
                self._lock.release()

    def __enter__(self) -> DirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
