"""What :func:`lrscout.finetune` returns and writes to ``finetune.json``: frozen, versioned,
plottable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DataError, check_version
from ..results import FindResult
from ..selection.halving import Plan
from ..training import TrainResult
from .select2d import Candidate, GroupTrial

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FINETUNE_VERSION = 1


@dataclass(frozen=True)
class FinetuneResult:
    """A fine-tuning run: the chosen head LR and backbone ratio, how they were chosen, and
    the run trained with them.

    ``groups`` lists the chosen parameter groups (``name``, ``lr``, ``weight_decay``,
    ``params`` count); ``find`` is the range test of the common multiplier (head LR),
    ``ratio_find`` the optional sweep of the backbone ratio; ``trials`` every trial of the
    2-D successive halving over ``candidates``; ``train`` the winner's full-length run
    (validation only); ``test_acc`` / ``test_loss`` measure it on the test split, which
    chose nothing (``None`` when the dataset has no test split); ``cost_runs`` what the
    choice cost in full runs of the protocol (range tests and every trial, the winner's
    run included).
    """

    head_lr: float
    backbone_ratio: float
    layer_decay: float
    freeze_epochs: int
    groups: tuple[dict[str, Any], ...]
    candidates: tuple[Candidate, ...]
    plan: Plan
    trials: tuple[GroupTrial, ...]
    best: int
    train: TrainResult
    find: FindResult | None = None
    ratio_find: FindResult | None = None
    test_acc: float | None = None
    test_loss: float | None = None
    cost_runs: float = 0.0  # range tests + trials, in full runs of the protocol
    task: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def val_acc(self) -> float:
        """Final validation accuracy of the chosen run."""
        return self.train.final_val_acc

    def rung_trials(self, rung: int) -> tuple[GroupTrial, ...]:
        return tuple(t for t in self.trials if t.rung == rung)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FINETUNE_VERSION,
            "head_lr": self.head_lr,
            "backbone_ratio": self.backbone_ratio,
            "backbone_lr": self.head_lr * self.backbone_ratio,
            "layer_decay": self.layer_decay,
            "freeze_epochs": self.freeze_epochs,
            "groups": [dict(g) for g in self.groups],
            "candidates": [{"head_lr": c.head_lr, "ratio": c.ratio} for c in self.candidates],
            "plan": self.plan.to_json(),
            "trials": [t.to_json() for t in self.trials],
            "best": self.best,
            "val_acc": self.val_acc,
            "test_acc": self.test_acc,
            "test_loss": self.test_loss,
            "cost_runs": self.cost_runs,
            "find": self.find.to_json() if self.find is not None else None,
            "ratio_find": self.ratio_find.to_json() if self.ratio_find is not None else None,
            "train": self.train.to_json(),
            "task": self.task,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FinetuneResult:
        check_version(data, "finetune.json", FINETUNE_VERSION)
        try:
            return cls(
                head_lr=float(data["head_lr"]),
                backbone_ratio=float(data["backbone_ratio"]),
                layer_decay=float(data["layer_decay"]),
                freeze_epochs=int(data["freeze_epochs"]),
                groups=tuple(dict(g) for g in data["groups"]),
                candidates=tuple(Candidate(float(c["head_lr"]), float(c["ratio"])) for c in data["candidates"]),
                plan=Plan.from_json(data["plan"]),
                trials=tuple(GroupTrial.from_json(t) for t in data["trials"]),
                best=int(data["best"]),
                train=TrainResult.from_json(data["train"]),
                find=FindResult.from_json(data["find"]) if data.get("find") else None,
                ratio_find=FindResult.from_json(data["ratio_find"]) if data.get("ratio_find") else None,
                test_acc=data.get("test_acc"),
                test_loss=data.get("test_loss"),
                cost_runs=float(data.get("cost_runs", 0.0)),
                task=dict(data.get("task", {})),
                seconds=float(data.get("seconds", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"malformed finetune.json: {type(exc).__name__}: {exc}") from exc

    def plot(self, ax: Axes | None = None) -> Axes:
        """Validation accuracy of the first rung over (head LR, backbone ratio); the
        choice framed."""
        from ..report.finetuning import plot_grid

        return plot_grid(self, ax)
