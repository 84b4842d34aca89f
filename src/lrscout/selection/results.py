"""Results of ``select`` and ``compare``: frozen, versioned JSON, plottable.

``select.json`` (version 2: trial lengths in optimizer steps)::

    {"version": 2, "lr": float, "score": float, "val_loss": float | null,
     "candidates": [{"lr", "score", "val_loss", "steps_run", "rung", "collapsed", "note"}],
     "trials": [TrialResult JSON], "schedule": ScheduleSpec JSON, "cost_runs": float,
     "seconds": float, "plan": {...}, "find": FindResult JSON, "config": {...}, "notes": [str]}

Scores are validation accuracies in 0..1, measured on the validation split carved from
the training data (a collapsed run's non-finite score is written as the text ``"nan"``,
``"inf"`` or ``"-inf"``, so the files stay strict JSON); ``cost_runs`` counts the range
test and every trial step in units of one full training run of the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DataError, check_version
from ..results import FindResult
from ..schedules import ScheduleSpec
from .halving import Outcome, Plan
from .trial import TrialResult, json_score

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from torch import nn

SELECT_VERSION = 2
COMPARE_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    """One candidate LR and how far it got: its score at the last rung it reached."""

    lr: float
    score: float
    val_loss: float | None
    steps_run: int
    rung: int
    collapsed: bool = False
    note: str | None = None

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.lr, self.score, self.val_loss, self.collapsed)

    def to_json(self) -> dict[str, Any]:
        return {"lr": self.lr, "score": json_score(self.score), "val_loss": self.val_loss, "steps_run": self.steps_run,
                "rung": self.rung, "collapsed": self.collapsed, "note": self.note}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Candidate:
        return cls(float(d["lr"]), float(d["score"]), d.get("val_loss"), int(d["steps_run"]), int(d.get("rung", 0)),
                   bool(d.get("collapsed", False)), d.get("note"))


@dataclass(frozen=True)
class SelectResult:
    """A verified LR: the candidate with the best validation accuracy after the full protocol.

    ``candidates`` is the table (one row per candidate LR, in LR order), ``trials`` every
    training run behind it, ``schedule`` the protocol's schedule built for ``lr``,
    ``cost_runs`` the total cost in full training runs (range test included), ``find`` the
    range test the candidates came from. ``model`` is the chosen finalist's network as its
    full-length run left it: the protocol already trained at ``lr``, so nothing needs
    retraining (``None`` when the choice is not a full-length run in this process, and
    for a result read back from JSON; it is not part of the JSON).
    """

    lr: float
    score: float
    val_loss: float | None
    candidates: tuple[Candidate, ...]
    trials: tuple[TrialResult, ...]
    schedule: ScheduleSpec
    cost_runs: float
    seconds: float
    plan: Plan
    find: FindResult
    config: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    model: nn.Module | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SELECT_VERSION,
            "lr": self.lr,
            "score": json_score(self.score),
            "val_loss": self.val_loss,
            "candidates": [c.to_json() for c in self.candidates],
            "trials": [t.to_json() for t in self.trials],
            "schedule": self.schedule.to_json(),
            "cost_runs": self.cost_runs,
            "seconds": self.seconds,
            "plan": self.plan.to_json(),
            "find": self.find.to_json(),
            "config": self.config,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SelectResult:
        check_version(data, "select.json", SELECT_VERSION)
        try:
            return cls(
                lr=float(data["lr"]),
                score=float(data["score"]),
                val_loss=data.get("val_loss"),
                candidates=tuple(Candidate.from_json(c) for c in data["candidates"]),
                trials=tuple(TrialResult.from_json(t) for t in data.get("trials", [])),
                schedule=ScheduleSpec.from_json(data["schedule"]),
                cost_runs=float(data["cost_runs"]),
                seconds=float(data.get("seconds", 0.0)),
                plan=Plan.from_json(data["plan"]),
                find=FindResult.from_json(data["find"]),
                config=dict(data.get("config", {})),
                notes=tuple(data.get("notes", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed select.json: {exc!r}") from exc

    def plot(self, ax: Axes | None = None) -> Axes:
        """Validation accuracy of every candidate against its LR (log x), by rung reached;
        the chosen LR marked, the range test's interval shaded."""
        from ..report.selection import plot_candidates

        return plot_candidates(self, ax)


@dataclass(frozen=True)
class CompareEntry:
    """One optimizer x schedule combination: its verified LR and score.

    LR-free optimizers (``lr_free``) get one full run at their own default LR instead of
    a selection; ``trial`` holds it, ``select`` is ``None``.
    """

    optimizer: str
    schedule: str
    lr: float
    score: float
    val_loss: float | None
    cost_runs: float
    lr_free: bool = False
    collapsed: bool = False
    select: SelectResult | None = None
    trial: TrialResult | None = None

    @property
    def label(self) -> str:
        return f"{self.optimizer} + {self.schedule}"

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.lr, self.score, self.val_loss, self.collapsed)

    def to_json(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer, "schedule": self.schedule, "lr": self.lr, "score": self.score,
            "val_loss": self.val_loss, "cost_runs": self.cost_runs, "lr_free": self.lr_free,
            "collapsed": self.collapsed,
            "select": None if self.select is None else self.select.to_json(),
            "trial": None if self.trial is None else self.trial.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CompareEntry:
        return cls(
            optimizer=str(d["optimizer"]), schedule=str(d["schedule"]), lr=float(d["lr"]), score=float(d["score"]),
            val_loss=d.get("val_loss"), cost_runs=float(d["cost_runs"]), lr_free=bool(d.get("lr_free", False)),
            collapsed=bool(d.get("collapsed", False)),
            select=None if d.get("select") is None else SelectResult.from_json(d["select"]),
            trial=None if d.get("trial") is None else TrialResult.from_json(d["trial"]),
        )


@dataclass(frozen=True)
class CompareResult:
    """Every combination's verified result, best first (same ranking rule as trials).

    ``cost_runs`` is what the whole comparison cost (one range test per optimizer,
    shared by its schedules), in full training runs.
    """

    entries: tuple[CompareEntry, ...]
    cost_runs: float
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> CompareEntry:
        return self.entries[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": COMPARE_VERSION,
            "best": {"optimizer": self.best.optimizer, "schedule": self.best.schedule, "lr": self.best.lr,
                     "score": self.best.score},
            "entries": [e.to_json() for e in self.entries],
            "cost_runs": self.cost_runs,
            "seconds": self.seconds,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompareResult:
        check_version(data, "compare.json", COMPARE_VERSION)
        try:
            return cls(
                entries=tuple(CompareEntry.from_json(e) for e in data["entries"]),
                cost_runs=float(data["cost_runs"]),
                seconds=float(data.get("seconds", 0.0)),
                config=dict(data.get("config", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed compare.json: {exc!r}") from exc

    def plot(self, ax: Axes | None = None) -> Axes:
        """Validation accuracy of each combination, best at the top."""
        from ..report.selection import plot_compare

        return plot_compare(self, ax)
