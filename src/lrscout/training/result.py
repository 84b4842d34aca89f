"""What ``lrscout.train`` returns and writes to ``train.json``: frozen, versioned, plottable."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DataError, check_version
from ..results import FindResult
from .loop import EpochStats, FitResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

TRAIN_VERSION = 1


def json_float(value: float) -> float | None:
    """JSON has no NaN or infinity: non-finite numbers are written as null."""
    return float(value) if math.isfinite(value) else None


def from_json_float(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class TrainResult:
    """One training run: the LR and schedule used, per-epoch and per-step metrics, guard
    events, and the range test it started from (``find``, when ``lr="find"``).

    ``lr`` is the learning rate of parameter group 0 the run was planned with (the peak
    for ``onecycle`` and ``cosine``), before any guard cut; ``schedule`` is the
    :class:`~lrscout.schedules.ScheduleSpec` as JSON. ``finished`` is False in the
    ``train.json`` written after each epoch while the run is still going (an interrupted
    run leaves that file behind). ``best_epoch`` is the epoch with the highest
    validation accuracy (the earliest on ties), whose weights ``best.pt`` holds.
    """

    lr: float
    lr_source: str  # "find" or "given"
    schedule: dict[str, Any]
    fit: FitResult
    steps_per_epoch: int
    best_epoch: int | None
    find: FindResult | None = None
    task: dict[str, Any] = field(default_factory=dict)
    finished: bool = True

    @property
    def epochs(self) -> tuple[EpochStats, ...]:
        return self.fit.epochs

    @property
    def events(self) -> tuple[dict[str, Any], ...]:
        return self.fit.events

    @property
    def stopped(self) -> str | None:
        """Why the run ended before its last epoch (guard gave up, NaN without guard)."""
        return self.fit.stopped

    @property
    def final_val_acc(self) -> float:
        return self.fit.final_val_acc

    @property
    def best_val_acc(self) -> float:
        return self.fit.best_val_acc

    @property
    def lr_scale(self) -> float:
        """Product of the guard's LR cuts: 1.0 when it never stepped in."""
        scale = 1.0
        for e in self.events:
            if e["action"] == "rollback" and e["lr_before"] > 0:
                scale *= e["lr_after"] / e["lr_before"]
        return scale

    def to_json(self) -> dict[str, Any]:
        epochs = [{k: json_float(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(e).items()}
                  for e in self.epochs]
        events = [{k: json_float(v) if isinstance(v, float) else v for k, v in e.items()} for e in self.events]
        return {
            "version": TRAIN_VERSION,
            "finished": self.finished,
            "task": self.task,
            "lr": self.lr,
            "lr_source": self.lr_source,
            "schedule": self.schedule,
            "steps_per_epoch": self.steps_per_epoch,
            "best_epoch": self.best_epoch,
            "final_val_acc": json_float(self.final_val_acc),
            "best_val_acc": json_float(self.best_val_acc),
            "epochs": epochs,
            "steps": {"loss": [json_float(v) for v in self.fit.step_loss], "lr": list(self.fit.step_lr)},
            "events": events,
            "stopped": self.stopped,
            "seconds": self.fit.seconds,
            "find": self.find.to_json() if self.find is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainResult:
        check_version(data, "train.json", TRAIN_VERSION)
        try:
            epochs = tuple(
                EpochStats(int(e["epoch"]), **{k: from_json_float(v) for k, v in e.items() if k != "epoch"})
                for e in data["epochs"]
            )
            events = tuple(
                {k: from_json_float(v) if k in ("loss", "lr_before", "lr_after") else v for k, v in e.items()}
                for e in data["events"]
            )
            fit = FitResult(
                epochs=epochs,
                step_loss=tuple(from_json_float(v) for v in data["steps"]["loss"]),
                step_lr=tuple(float(v) for v in data["steps"]["lr"]),
                events=events,
                stopped=data.get("stopped"),
                seconds=float(data.get("seconds", 0.0)),
            )
            return cls(
                lr=float(data["lr"]),
                lr_source=str(data["lr_source"]),
                schedule=dict(data["schedule"]),
                fit=fit,
                steps_per_epoch=int(data["steps_per_epoch"]),
                best_epoch=data.get("best_epoch"),
                find=FindResult.from_json(data["find"]) if data.get("find") else None,
                task=dict(data.get("task", {})),
                finished=bool(data.get("finished", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed train.json: {type(exc).__name__}: {exc}") from exc

    def plot(self, ax: Axes | None = None) -> Axes:
        """Loss (raw and smoothed, log scale) and LR over optimizer steps, validation loss
        at each epoch end, guard events marked in red."""
        from ..report.training import plot_train

        return plot_train(self, ax)
