"""A selection's directory: what makes a killed ``select`` / ``compare`` / ``finetune`` resumable.

    DIR/.lrscout.lock       held while a run works in DIR: a second process is refused at once
    DIR/select-state.json   the selection's settings; a rerun with other settings is refused
                            once a trial has finished (before that there is nothing to
                            resume, and the new settings replace the old)
                            (``finetune-state.json`` for a fine-tuning run)
    DIR/find.json           the range test (reused on resume; ``find_ratio.json`` the ratio sweep)
    DIR/trials/<id>.json    one file per finished trial, written atomically
    DIR/trials/<id>.pt      checkpoints a promoted trial continues from (removed at the end)

Every file is written with :mod:`lrscout._io` (temp file + rename), so a kill leaves
either the complete file or none; a rerun loads the finished trials and runs the rest.
Without a directory (``out_dir=None``) the same layout lives in a temporary directory.
A run rejected before any trial finished (an LrscoutError: a bad argument found late, a
range test too short to use) removes the files it created; and until a trial has finished
a rerun with other settings simply replaces the old ones, so nothing stale blocks a
corrected command.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .._io import DirLock, atomic_write_json
from ..errors import ConfigError, DataError, LrscoutError
from ..results import FindResult
from .trial import TrialResult, TrialSpec, load_checkpoint

STATE_VERSION = 1


def _normal(obj: Any) -> Any:
    """JSON round trip: tuples become lists, so settings compare as they are stored."""
    return json.loads(json.dumps(obj))


def _task_label(task: Any) -> str:
    """A task's identity in a message: its name and fingerprint, or its named parts."""
    if not isinstance(task, dict):
        return "unknown"
    if task.get("kind") == "objective":
        name = f"name {task.get('name')!r}, " if task.get("name") else ""
        return f"objective {name}function {task.get('function')}"
    if task.get("kind") == "custom" or "fingerprint" in task:
        name = f"name {task.get('name')!r}, " if task.get("name") else ""
        return f"{name}fingerprint {task.get('fingerprint')}"
    return ", ".join(f"{k}={task[k]}" for k in ("dataset", "model", "optimizer", "seed") if k in task)


class RunDir:
    """The files of one selection in ``path`` (a temporary directory when ``None``);
    ``kind`` names its state file (``select-state.json``, ``finetune-state.json``).

    Use it as a context manager: entering claims the directory under a lock
    (:class:`~lrscout._io.DirLock`); leaving with an :class:`LrscoutError` before any trial
    result was saved removes what this run created (its state, its range test, the directory itself
    if it made it), so nothing stale blocks the corrected command.
    """

    def __init__(self, path: str | Path | None, kind: str = "select") -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"lrscout-{kind}-") if path is None else None
        self.path = Path(self._tmp.name if self._tmp is not None else path)  # type: ignore[arg-type]
        self.persistent = self._tmp is None
        self._lock: DirLock | None = None
        self._created: list[Path] = []  # files this run wrote that a failed start takes back
        self.kind = kind

    def __getstate__(self) -> dict[str, Any]:
        # a copy sent to a worker (Ray pickles the trial function with it) reads and writes
        # the files; the claim stays with the process that made it
        return {**self.__dict__, "_lock": None, "_created": []}

    def open(self) -> RunDir:
        if self.persistent and self._lock is None:
            self._lock = DirLock(self.path, "selection").acquire()
        return self

    def close(self, failed: bool = False) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._lock is None:
            return
        clean = failed and not self._has_trials()
        if clean:
            for p in self._created:
                p.unlink(missing_ok=True)
            if self.trials_dir.is_dir() and not any(self.trials_dir.iterdir()):
                self.trials_dir.rmdir()
        self._lock.release(remove_if_empty=clean)
        self._lock = None

    def __enter__(self) -> RunDir:
        return self.open()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        # a rejection (LrscoutError) takes back what it wrote; an interruption or a crash
        # keeps its range test for the rerun (which replaces it if its settings differ)
        self.close(failed=isinstance(exc, LrscoutError))

    def _has_trials(self) -> bool:
        return self.trials_dir.is_dir() and any(self.trials_dir.glob("*.json"))

    @property
    def trials_dir(self) -> Path:
        return self.path / "trials"

    def claim(self, settings: dict[str, Any]) -> bool:
        """Record ``settings`` or check them against a previous run; True when resuming."""
        state_path = self.path / f"{self.kind}-state.json"
        settings = _normal(settings)
        old: Any = None
        if state_path.exists():  # a damaged state file is refused; a stale one gives way below
            try:
                old = json.loads(state_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"{state_path} is unreadable: {exc}") from exc
            if not isinstance(old, dict) or not isinstance(old.get("settings"), dict):
                raise DataError(f"{state_path} is not a selection's state file; delete it or use another out_dir",
                                argument="out_dir")
        if old is not None and self._has_trials():
            if old.get("settings") != settings:
                before = old.get("settings", {})
                if "task" in settings and before.get("task") != settings["task"]:
                    raise ConfigError(f"{self.path} holds a selection of another task ({_task_label(before.get('task'))}"
                                      f", not {_task_label(settings['task'])}); use another out_dir or delete it",
                                      argument="out_dir")
                diff = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
                raise ConfigError(f"{self.path} holds a selection with other settings ({', '.join(diff)}); "
                                  "use another out_dir or delete it", argument="out_dir")
            for checkpoint in sorted(self.trials_dir.glob("*.pt")):  # a damaged one fails now, not mid-run
                load_checkpoint(checkpoint)
            return True
        # nothing finished here yet: whatever an earlier start left is not worth resuming
        resumable = old is not None and old.get("settings") == settings
        if not resumable:
            for name in ("find.json", "find_ratio.json"):
                (self.path / name).unlink(missing_ok=True)
            self._created += [state_path, self.path / "find.json", self.path / "find_ratio.json"]
        atomic_write_json(state_path, {"version": STATE_VERSION, "settings": settings})
        return resumable

    def load_find(self, name: str = "find") -> FindResult | None:
        """The range test saved as ``name.json``, or ``None``."""
        path = self.path / f"{name}.json"
        if not path.exists():
            return None
        try:
            return FindResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise DataError(f"{path} is unreadable: {exc}") from exc

    def save_find(self, result: FindResult, name: str = "find") -> None:
        atomic_write_json(self.path / f"{name}.json", result.to_json())

    def load_trial(self, spec: TrialSpec, task: dict[str, Any]) -> TrialResult | None:
        """The finished trial ``spec`` names, or ``None``; a file for another spec is refused."""
        path = self.trials_dir / f"{spec.trial_id}.json"
        if not path.exists():
            return None
        try:
            result = TrialResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{path} is unreadable: {exc}") from exc
        if _normal(result.spec.to_json()) != _normal(spec.to_json()) or _normal(result.task) != _normal(task):
            raise ConfigError(f"{path} was written for another trial; use another out_dir or delete it",
                              argument="out_dir")
        return result

    def save_trial(self, result: TrialResult) -> None:
        atomic_write_json(self.trials_dir / f"{result.spec.trial_id}.json", result.to_json())

    def remove_checkpoints(self) -> None:
        if self.trials_dir.is_dir():
            for p in self.trials_dir.glob("*.pt"):
                p.unlink(missing_ok=True)
