"""Atomic result files: complete or absent, and created with the permissions the umask allows."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lrscout._io import atomic_write, atomic_write_json, atomic_write_text


@pytest.fixture
def umask() -> Iterator[object]:
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_result_files_get_0666_less_the_umask(tmp_path: Path, umask, mask: int, expected: int) -> None:  # type: ignore[no-untyped-def]
    umask(mask)
    json_path = atomic_write_json(tmp_path / "out" / "result.json", {"lr": 0.1})
    text_path = atomic_write_text(tmp_path / "notes.txt", "hello\n")
    ckpt = atomic_write(tmp_path / "last.pt", lambda p: torch.save({"w": torch.ones(2)}, p))
    assert [_mode(p) for p in (json_path, text_path, ckpt)] == [expected] * 3
    # rewriting keeps the umask's mode, not the previous file's
    umask(0o022)
    atomic_write_text(text_path, "again\n")
    assert _mode(text_path) == 0o644 and text_path.read_text() == "again\n"
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "result.json", "old")

    def broken(path: Path) -> None:
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
