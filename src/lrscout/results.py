"""Result dataclasses: frozen, JSON round-trippable (versioned), and plottable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import check_version

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .curve import Analysis

FIND_VERSION = 1


@dataclass(frozen=True)
class FindResult:
    """What a range test saw and what it recommends.

    ``lr`` is the recommendation for the base param group and ``interval`` the range of
    LRs the curve supports (see :func:`lrscout.curve.recommend` for the rule);
    ``suggestions`` holds the classic heuristics for comparison.
    """

    lr: float
    interval: tuple[float, float]
    suggestions: dict[str, float]
    history_lr: tuple[float, ...]
    history_loss: tuple[float, ...]
    smoothed: tuple[float, ...]
    onset: float | None
    rule: str
    stopped_early: bool
    stop_reason: str | None = None
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_analysis(
        cls,
        analysis: Analysis,
        *,
        history_lr: list[float],
        history_loss: list[float],
        stopped_early: bool,
        stop_reason: str | None,
        seconds: float,
        config: dict[str, Any],
    ) -> FindResult:
        rec = analysis.recommendation
        return cls(
            lr=float(rec.lr),
            interval=(float(rec.low), float(rec.high)),
            suggestions={k: float(v) for k, v in analysis.suggestions.items()},
            history_lr=tuple(history_lr),
            history_loss=tuple(history_loss),
            smoothed=tuple(float(v) for v in analysis.smoothed),
            onset=None if rec.onset is None else float(rec.onset),
            rule=rec.rule,
            stopped_early=stopped_early,
            stop_reason=stop_reason,
            seconds=seconds,
            config=dict(config),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FIND_VERSION,
            "lr": self.lr,
            "interval": list(self.interval),
            "suggestions": dict(self.suggestions),
            "onset": self.onset,
            "rule": self.rule,
            "history": {"lr": list(self.history_lr), "loss": list(self.history_loss), "smoothed": list(self.smoothed)},
            "stopped_early": self.stopped_early,
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FindResult:
        check_version(data, "find.json", FIND_VERSION)
        hist = data["history"]
        return cls(
            lr=float(data["lr"]),
            interval=(float(data["interval"][0]), float(data["interval"][1])),
            suggestions={k: float(v) for k, v in data["suggestions"].items()},
            history_lr=tuple(hist["lr"]),
            history_loss=tuple(hist["loss"]),
            smoothed=tuple(hist.get("smoothed", ())),
            onset=data.get("onset"),
            rule=data.get("rule", ""),
            stopped_early=bool(data["stopped_early"]),
            stop_reason=data.get("stop_reason"),
            seconds=float(data.get("seconds", 0.0)),
            config=dict(data.get("config", {})),
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """Loss against LR (log x): raw and smoothed, the suggestions, the interval shaded."""
        from .report.plots import plot_find

        return plot_find(self, ax)
