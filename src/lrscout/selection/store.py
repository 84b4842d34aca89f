"""A selection's directory: what makes a killed ``select`` / ``compare`` resumable.

    DIR/select-state.json   the selection's settings; a rerun with other settings is refused
    DIR/find.json           the range test (reused on resume)
    DIR/trials/<id>.json    one file per finished trial, written atomically
    DIR/trials/<id>.pt      checkpoints a promoted trial continues from (removed at the end)

Every file is written with :mod:`lrscout._io` (temp file + rename), so a kill leaves
either the complete file or none; a rerun loads the finished trials and runs the rest.
Without a directory (``out_dir=None``) the same layout lives in a temporary directory.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .._io import atomic_write_json
from ..errors import ConfigError, DataError
from ..results import FindResult
from .trial import TrialResult, TrialSpec, load_checkpoint

STATE_VERSION = 1


def _normal(obj: Any) -> Any:
    """JSON round trip: tuples become lists, so settings compare as they are stored."""
    return json.loads(json.dumps(obj))


class RunDir:
    """The files of one selection in ``path`` (a temporary directory when ``None``)."""

    def __init__(self, path: str | Path | None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="lrscout-select-") if path is None else None
        self.path = Path(self._tmp.name if self._tmp is not None else path)  # type: ignore[arg-type]
        self.persistent = self._tmp is None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def trials_dir(self) -> Path:
        return self.path / "trials"

    def claim(self, settings: dict[str, Any]) -> bool:
        """Record ``settings`` or check them against a previous run; True when resuming."""
        state_path = self.path / "select-state.json"
        settings = _normal(settings)
        if state_path.exists():
            try:
                old = json.loads(state_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise DataError(f"{state_path} is unreadable: {exc}") from exc
            if not isinstance(old, dict) or not isinstance(old.get("settings"), dict):
                raise DataError(f"{state_path} is not a selection's state file; delete it or use another out_dir",
                                argument="out_dir")
            if old.get("settings") != settings:
                before = old.get("settings", {})
                diff = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
                raise ConfigError(f"{self.path} holds a selection with other settings ({', '.join(diff)}); "
                                  "use another out_dir or delete it", argument="out_dir")
            for checkpoint in sorted(self.trials_dir.glob("*.pt")):  # a damaged one fails now, not mid-run
                load_checkpoint(checkpoint)
            return True
        atomic_write_json(state_path, {"version": STATE_VERSION, "settings": settings})
        return False

    def load_find(self) -> FindResult | None:
        path = self.path / "find.json"
        if not path.exists():
            return None
        try:
            return FindResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, KeyError) as exc:
            raise DataError(f"{path} is unreadable: {exc}") from exc

    def save_find(self, result: FindResult) -> None:
        atomic_write_json(self.path / "find.json", result.to_json())

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
