"""A selection folder: claimed by one process at a time, and nothing stale after a rejection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import lrscout
from lrscout._io import DirLock
from lrscout.errors import ConfigError
from lrscout.selection import compare, select
from lrscout.selection.store import RunDir

from .conftest import KWARGS, TASK

_SRC = str(Path(lrscout.__file__).resolve().parents[1])


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds ``tmp_path / "sel"`` as a selection folder until killed."""
    code = ("import sys\nfrom lrscout.selection.store import RunDir\n"
            "with RunDir(sys.argv[1]):\n    print('claimed', flush=True)\n    sys.stdin.readline()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([_SRC, os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "sel")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "claimed"
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_second_process_on_the_same_folder_is_refused_at_once(holder: subprocess.Popen[str],
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "sel"
    with pytest.raises(ConfigError, match="in use by another lrscout"):
        select(TASK, **KWARGS, out_dir=out)
    with pytest.raises(ConfigError, match="in use by another lrscout"):
        compare(TASK, optimizers="sgd", **KWARGS, out_dir=out)
    assert not (out / "select-state.json").exists() and not (out / "find.json").exists()  # no work done
    holder.kill()  # a holder that dies (kill -9) leaves no lock behind
    holder.wait()
    with RunDir(out) as rundir:
        assert rundir.claim({"a": 1}) is False


def test_a_rejected_selection_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "sel"
    with pytest.raises(ConfigError, match="too small"):  # found after the range test
        select(TASK, **{**KWARGS, "budget": 0.5}, out_dir=out)
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="too small"):
        select(TASK, **{**KWARGS, "budget": 0.5}, out_dir=out)
    assert sorted(p.name for p in out.iterdir() if p.name != ".lrscout.lock") == ["notes.txt"]


def test_state_without_finished_trials_gives_way_to_new_settings(tmp_path: Path) -> None:
    # what an interrupted start (or an older lrscout) leaves: settings and a range test, no trial
    (tmp_path / "select-state.json").write_text(json.dumps({"version": 1, "settings": {"budget": 0.5}}))
    (tmp_path / "find.json").write_text("{}")
    with RunDir(tmp_path) as rundir:
        assert rundir.claim({"budget": 4.0}) is False  # nothing to resume: a fresh start
        assert not (tmp_path / "find.json").exists()
    assert json.loads((tmp_path / "select-state.json").read_text())["settings"] == {"budget": 4.0}
    with RunDir(tmp_path) as rundir:  # the same settings again: resumable
        assert rundir.claim({"budget": 4.0}) is True
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / "r0-c0.json").write_text("{}")
    with RunDir(tmp_path) as rundir, pytest.raises(ConfigError, match="other settings.*budget"):
        rundir.claim({"budget": 2.0})  # finished work is never mixed with other settings


def test_dir_lock_in_one_process(tmp_path: Path) -> None:
    first = DirLock(tmp_path / "a").acquire()
    with pytest.raises(ConfigError, match="in use"):
        DirLock(tmp_path / "a").acquire()
    first.release(remove_if_empty=True)
    assert not (tmp_path / "a").exists()
    with DirLock(tmp_path / "a"):
        pass
    assert (tmp_path / "a").is_dir()  # released, not removed: a plain release keeps the folder
