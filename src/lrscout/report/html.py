"""One self-contained HTML page per selection or comparison (built of :mod:`.page`).

    render_select(result)  -> str    range test + candidates, trial curves, table, choice
    render_compare(result) -> str    ranking table, bar chart, each entry's final curve
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .page import escape as _e
from .page import figure as _figure
from .page import loss as _loss
from .page import page as _page
from .page import pct as _pct
from .page import table as _table
from .plots import new_axes
from .selection import metric_of, plot_candidates, plot_compare, plot_find_candidates, plot_schedule, plot_trial_curves

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..selection.results import CompareResult, SelectResult
    from ..selection.trial import EpochRecord


def _task_line(config: dict[str, Any]) -> str:
    task = config.get("task", {})
    if task.get("kind") == "objective":  # the user's training function (lrscout.objective)
        return (f"objective {task.get('name') or '(unnamed)'} · {task.get('function')} · schedule "
                f"{config.get('schedule')} · {config.get('epochs')} epochs")
    if "fingerprint" in task:  # the user's own task (lrscout.task_from)
        return (f"task {task.get('name') or '(unnamed)'} · fingerprint {task.get('fingerprint')} · schedule "
                f"{config.get('schedule')} · {config.get('epochs')} epochs")
    return (f"{task.get('dataset')} · {task.get('model')} · {task.get('optimizer')} · schedule "
            f"{config.get('schedule')} · {config.get('epochs')} epochs · batch {task.get('batch_size')} · "
            f"seed {task.get('seed')}")


def _schedule_code(result: SelectResult) -> str:
    spec = result.schedule
    params = "".join(f", {k}={v!r}" for k, v in spec.params.items())
    return (f"from lrscout.schedules import schedule_for\n"
            f"spec = schedule_for({spec.lr!r}, {spec.kind!r}, epochs={spec.epochs}, "
            f"steps_per_epoch={spec.steps_per_epoch}{params})\n"
            "scheduler = spec.build(optimizer)  # step after every optimizer.step()"
            + ("" if spec.per_batch else " -- plateau: once per epoch with the val loss"))


def render_select(result: SelectResult) -> str:
    """The HTML page of a selection (a complete document), in the task's metric."""
    cfg = result.config
    metric = metric_of(result)
    name = _e(metric.name)
    better = "higher" if metric.higher_is_better else "lower"
    spec = result.schedule
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items()) or "no parameters"
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in result.notes)
    rec = (
        '<section class="rec">'
        f'<div>Recommended learning rate <span class="lr">{result.lr:.4g}</span></div>'
        f"<div>validation {name} after the full protocol: <b>{_e(metric.format(result.score))}</b> "
        f"(validation loss {_loss(result.val_loss)})</div>"
        f"<div>schedule: <b>{_e(spec.kind)}</b> ({_e(params)}), {spec.epochs} epochs × "
        f"{spec.steps_per_epoch} steps</div>"
        f"<div>cost: <b>{result.cost_runs:.2f}</b> training runs (range test "
        f"{cfg.get('find_cost_runs', 0.0):.2f}), {result.seconds:.0f} s</div>"
        "</section>"
    )
    full_steps = result.plan.length
    spe = result.schedule.steps_per_epoch
    rows = []
    for ci, c in enumerate(result.candidates):
        cls = "chosen" if c.lr == result.lr else ("bad" if c.collapsed else "")
        rung0 = next((t for t in result.trials if t.spec.candidate == ci and t.spec.rung == 0), None)
        rows.append(([
            f"{c.lr:.4g}",
            "-" if rung0 is None else _e(metric.format(rung0.val_acc)),
            _e(metric.format(c.score)) if c.steps_run == full_steps else "-",
            _loss(c.val_loss),
            f"{c.steps_run / spe:.3g}",
            ("chosen" if c.lr == result.lr else ("collapsed: " + (c.note or "") if c.collapsed else
                                                 ("finalist" if c.steps_run == full_steps else "stopped at rung 0"))),
        ], cls))
    table = _table(["learning rate", f"{name}: rung 0 ({result.plan.rungs[0].length / spe:.3g} ep.)",
                    f"{name}: final ({full_steps / spe:.3g} ep.)", "val loss (last)", "epochs run", "status"], rows)
    plan_rows = [(["range test", "-", "-", f"{cfg.get('find_cost_runs', 0.0):.2f}"], "")]
    plan_rows += [([f"rung {i}", f"{r.length / spe:.3g}", str(r.size),
                    f"{r.size * result.plan.trial_length(i) / full_steps:.2f}"],
                   "") for i, r in enumerate(result.plan.rungs)]
    how = ("the short runs are the first epochs of the real run; finalists continue from their checkpoint"
           if result.plan.continued else
           "the short runs train the protocol's schedule compressed into their epochs; finalists restart")
    body = (
        "<h1>lrscout select</h1>"
        f'<p class="sub">{_e(_task_line(cfg))}</p>'
        f"{rec}{notes}"
        "<h2>Range test and candidates</h2>"
        + _figure(plot_find_candidates(result), "range test curve with candidate LRs",
                  "Loss against LR during the range test; dotted lines: the candidate LRs trained; orange: the choice.")
        + "<h2>Candidates</h2>"
        + _figure(plot_candidates(result), f"validation {name} of each candidate",
                  f"Validation {name} of each trial against its LR; grey: short runs, blue: full protocol, "
                  "star: the choice, crosses: collapsed runs.")
        + table
        + f"<p>Ranking: {better} validation {name}, then lower validation loss, then the lower LR; collapsed "
          "runs (NaN loss, or a score at chance level) last. Scores are on the validation data only; a test "
          "split is never used.</p>"
        + "<h2>Validation curves</h2>"
        + _figure(plot_trial_curves(result), "validation curve of every trial",
                  f"Validation {name} after every epoch of every trial; dashed: short rung-0 runs.")
        + "<h2>Recommended schedule</h2>"
        + _figure(plot_schedule(spec), "learning rate schedule", "The planned learning rate of the recommended run.")
        + f"<pre><code>{_e(_schedule_code(result))}</code></pre>"
        + "<h2>Plan</h2>"
        + f"<p>Successive halving, {_e(how)}.</p>"
        + _table(["step", "epochs", "trials", "planned cost (runs)"], plan_rows, left=1)
        + f"<details><summary>settings</summary><pre>{_e(json.dumps(cfg, indent=2))}</pre></details>"
    )
    task = cfg.get("task", {})
    title = task.get("name") or task.get("function") or f"{task.get('dataset')} {task.get('optimizer')}"
    return _page(f"lrscout select: {title} lr {result.lr:.3g}", body)


def _final_curve(history: Sequence[EpochRecord]) -> tuple[list[int], list[float]]:
    return [e.epoch for e in history], [100 * e.val_acc for e in history]


def _plot_compare_curves(result: CompareResult) -> Axes:
    ax = new_axes()
    for i, e in enumerate(result.entries):
        history: list[EpochRecord] = []
        if e.trial is not None:
            history = list(e.trial.history)
        elif e.select is not None:
            by_id = {t.spec.trial_id: t for t in e.select.trials}
            final = [t for t in e.select.trials if t.spec.lr == e.lr and t.spec.full]
            if final:
                t = final[0]
                history = (list(by_id[t.spec.parent].history) if t.spec.parent in by_id else []) + list(t.history)
        if history:
            x, y = _final_curve(history)
            ax.plot(x, y, marker="o", ms=3, lw=2.2 if i == 0 else 1.2, ls="--" if e.lr_free else "-",
                    label=f"{e.label} (lr {e.lr:.3g})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Each combination's full run at its verified LR (dashed: LR-free)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return ax


def render_compare(result: CompareResult) -> str:
    """The HTML page of a comparison (a complete document)."""
    cfg = result.config
    best = result.best
    rows = []
    for rank, e in enumerate(result.entries, 1):
        link = f"{e.optimizer}-{e.schedule}/report.html" if e.select is not None else ""
        rows.append(([
            str(rank), e.optimizer, e.schedule + (" (LR-free)" if e.lr_free else ""), f"{e.lr:.4g}", _pct(e.score),
            _loss(e.val_loss), f"{e.cost_runs:.2f}", link or "-",
        ], "chosen" if rank == 1 else ("bad" if e.collapsed else "")))
    task = cfg.get("task", {})
    rec = (
        '<section class="rec">'
        f'<div>Best: <span class="lr">{_e(best.label)}</span> at learning rate <b>{best.lr:.4g}</b></div>'
        f"<div>validation accuracy after the full protocol: <b>{_pct(best.score)}</b></div>"
        f"<div>total cost: <b>{result.cost_runs:.2f}</b> training runs, {result.seconds:.0f} s</div></section>"
    )
    body = (
        "<h1>lrscout compare</h1>"
        f'<p class="sub">{_e(task.get("dataset"))} · {_e(task.get("model"))} · {cfg.get("epochs")} epochs · '
        f'batch {_e(task.get("batch_size"))} · seed {_e(task.get("seed"))}</p>'
        + rec
        + "<h2>Ranking</h2>"
        + _table(["#", "optimizer", "schedule", "learning rate", "val accuracy", "val loss", "cost (runs)",
                  "report"], rows, left=3)
        + "<p>Each entry's LR was chosen by <code>lrscout select</code> (range test, then short and full "
          "training runs); LR-free optimizers ran once at their own default. Ranked by validation accuracy, "
          "then validation loss.</p>"
        + _figure(plot_compare(result), "bar chart of validation accuracy per combination",
                  "Validation accuracy of each combination at its verified LR.")
        + _figure(_plot_compare_curves(result), "validation curves of each combination",
                  "Validation accuracy per epoch of each combination's full-protocol run.")
        + f"<details><summary>settings</summary><pre>{_e(json.dumps(cfg, indent=2))}</pre></details>"
    )
    return _page(f"lrscout compare: {task.get('dataset')}", body)
