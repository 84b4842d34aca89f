"""Figures and files for ``select`` and ``compare`` results (matplotlib, Agg: headless).

    plot_candidates(result)   validation accuracy against LR, by rung; choice and interval
    plot_find_candidates(r)   the range-test curve with the candidate LRs on it
    plot_trial_curves(r)      every trial's validation accuracy per epoch
    plot_schedule(spec)       the chosen schedule's LR per step
    plot_compare(result)      each optimizer x schedule combination's verified accuracy
    save_select / save_compare   DIR/select.json (or compare.json) and DIR/report.html
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..protocol import Metric
from .plots import new_axes, plot_find

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..schedules import ScheduleSpec
    from ..selection.results import CompareResult, SelectResult

_RUNG_COLOURS = ("0.55", "C0", "C1", "C4")


def epochs_text(result: SelectResult, steps: int) -> str:
    """``steps`` of the protocol in epochs ("2", "0.5")."""
    return f"{steps / result.schedule.steps_per_epoch:.3g}"


def metric_of(result: SelectResult) -> Metric:
    """The selection's validation metric (accuracy for selections that do not name one)."""
    return Metric.from_json(result.config.get("metric"))


def _shown(metric: Metric, score: float) -> float:
    return 100 * score if metric.percent else score


def _axis_label(metric: Metric) -> str:
    return f"validation {metric.name}" + (" (%)" if metric.percent else "")


def _rung_label(result: SelectResult, rung: int) -> str:
    length = result.plan.rungs[rung].length
    full = length == result.plan.length
    epochs = epochs_text(result, length)
    return f"rung {rung}: {epochs} epoch{'s' if epochs != '1' else ''}" + (" (full protocol)" if full else "")


def _lr_ticks(ax: Axes, lrs: list[float]) -> None:
    """Label the candidate LRs themselves (a log axis over one decade has no major ticks)."""
    from matplotlib.ticker import NullFormatter

    ax.set_xticks(lrs, [f"{lr:.3g}" for lr in lrs], fontsize=8)
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_candidates(result: SelectResult, ax: Axes | None = None) -> Axes:
    """Validation score (accuracy in %) of every trial against its LR; a line joins a candidate's rungs."""
    ax = ax if ax is not None else new_axes()
    metric = metric_of(result)
    lo, hi = result.find.interval
    ax.axvspan(lo, hi, color="C2", alpha=0.12, label=f"range-test interval [{lo:.2g}, {hi:.2g}]")
    by_candidate: dict[int, list[tuple[int, float, float]]] = {}
    for t in result.trials:
        by_candidate.setdefault(t.spec.candidate, []).append((t.spec.rung, t.spec.lr, _shown(metric, t.val_acc)))
    for points in by_candidate.values():
        points.sort()
        if len(points) > 1:
            ax.plot([p[1] for p in points], [p[2] for p in points], color="0.8", lw=1, zorder=1)
    for rung in range(len(result.plan.rungs)):
        pts = [(t.spec.lr, _shown(metric, t.val_acc), t.collapsed) for t in result.trials if t.spec.rung == rung]
        if not pts:
            continue
        colour = _RUNG_COLOURS[min(rung, len(_RUNG_COLOURS) - 1)] if rung < len(result.plan.rungs) - 1 else "C0"
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=40, color=colour, zorder=3,
                   marker="o", label=_rung_label(result, rung))
        bad = [p for p in pts if p[2]]
        if bad:
            ax.scatter([p[0] for p in bad], [p[1] for p in bad], s=70, marker="x", color="C3", zorder=4)
    ax.scatter([result.lr], [_shown(metric, result.score)], s=220, marker="*", color="C1", edgecolor="k", zorder=5,
               label=f"chosen {result.lr:.3g}: {metric.format(result.score)}")
    ax.set_xscale("log")
    _lr_ticks(ax, [c.lr for c in result.candidates])
    ax.set_xlabel("learning rate")
    ax.set_ylabel(_axis_label(metric))
    scores = [_shown(metric, t.val_acc) for t in result.trials if math.isfinite(t.val_acc)]
    if scores and metric.percent:
        top = max(scores)
        ax.set_ylim(max(0.0, min(scores) - 5), min(100.5, top + 0.15 * (top - min(scores)) + 1))
    ax.set_title(f"Candidates: validation {metric.name} by rung")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_find_candidates(result: SelectResult, ax: Axes | None = None) -> Axes:
    """The range-test plot with a vertical line at each candidate LR (the choice in orange)."""
    ax = plot_find(result.find, ax)
    for i, c in enumerate(result.candidates):
        chosen = c.lr == result.lr
        ax.axvline(c.lr, color="C1" if chosen else "0.4", lw=2.5 if chosen else 0.9, ls="-" if chosen else ":",
                   label="candidates" if i == 0 else None, zorder=1)
    ax.set_title("LR range test and the candidates trained")
    ax.legend(fontsize=7, loc="best")
    return ax


def plot_trial_curves(result: SelectResult, ax: Axes | None = None) -> Axes:
    """Validation score per epoch of every trial: short runs dashed, full-length solid;
    a continued trial is drawn from its parent's first epochs on."""
    from matplotlib import colormaps

    ax = ax if ax is not None else new_axes()
    metric = metric_of(result)
    parents = {t.spec.trial_id: t for t in result.trials}
    last_rung: dict[int, int] = {}
    for t in result.trials:
        last_rung[t.spec.candidate] = max(last_rung.get(t.spec.candidate, 0), t.spec.rung)
    lrs = sorted({t.spec.lr for t in result.trials})
    colour = {lr: colormaps["viridis"](0.9 * i / max(1, len(lrs) - 1)) for i, lr in enumerate(lrs)}
    spe = result.schedule.steps_per_epoch
    for t in result.trials:
        history = list(t.history)
        if t.spec.parent is not None and t.spec.parent in parents:
            history = list(parents[t.spec.parent].history) + history
        if not history:
            continue
        full = t.spec.full
        label = f"lr {t.spec.lr:.3g}" if t.spec.rung == last_rung[t.spec.candidate] else None
        ax.plot([e.step / spe for e in history], [_shown(metric, e.val_acc) for e in history], color=colour[t.spec.lr],
                lw=2.4 if (t.spec.lr == result.lr and full) else 1.3, ls="-" if full else "--",
                marker="o", ms=3, label=label)
    if len(result.plan.rungs) > 1:
        ax.axvline(result.plan.rungs[0].length / spe, color="0.6", lw=0.8, ls=":")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(_axis_label(metric))
    ax.set_title("Every trial's validation curve (dashed: short runs)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    return ax


def plot_schedule(spec: ScheduleSpec, ax: Axes | None = None) -> Axes:
    """Planned LR of group 0 over the run (x in epochs)."""
    ax = ax if ax is not None else new_axes((7.0, 3.0))
    steps = np.arange(spec.total_steps)
    ax.plot(steps / spec.steps_per_epoch, spec.lrs(), color="C1", lw=2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(f"{spec.kind} schedule at lr {spec.lr:.3g}" + (" (cut on plateaus while training)"
                                                                if not spec.per_batch else ""))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    return ax


def plot_compare(result: CompareResult, ax: Axes | None = None) -> Axes:
    """Horizontal bars: validation accuracy of each combination, best at the top."""
    entries = list(result.entries)
    ax = ax if ax is not None else new_axes((7.0, max(2.5, 0.45 * len(entries) + 1.2)))
    y = np.arange(len(entries))[::-1]
    scores = [100 * e.score for e in entries]
    colours = ["C1" if i == 0 else ("C2" if e.lr_free else "C0") for i, e in enumerate(entries)]
    ax.barh(y, scores, color=colours)
    for yi, e, s in zip(y, entries, scores):
        ax.text(s, yi, f" {s:.2f}%  lr {e.lr:.3g}" + (" (LR-free)" if e.lr_free else ""), va="center", fontsize=8)
    ax.set_yticks(y, [e.label for e in entries])
    healthy = [s for s, e in zip(scores, entries) if not e.collapsed] or scores
    ax.set_xlim(max(0.0, min(healthy) - 10), 100 + 0.35 * (100 - max(0.0, min(healthy) - 10)))
    ax.set_xlabel("validation accuracy after the full protocol (%)")
    ax.set_title("Optimizer x schedule, each at its verified LR")
    ax.grid(True, axis="x", alpha=0.3)
    return ax
