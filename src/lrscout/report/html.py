"""One self-contained HTML page per selection or comparison.

Every figure is a PNG embedded as base64, the style sheet is inline, and there is no
script and no external resource (the favicon is an empty data URL), so the file opens
anywhere, offline, and renders in a headless browser with no console errors.

    render_select(result)  -> str    range test + candidates, trial curves, table, choice
    render_compare(result) -> str    ranking table, bar chart, each entry's final curve
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from .. import __version__
from .plots import _pyplot, new_axes
from .selection import plot_candidates, plot_compare, plot_find_candidates, plot_schedule, plot_trial_curves

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..selection.results import CompareResult, SelectResult
    from ..selection.trial import EpochRecord

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1000px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; margin-top: 0; }
.rec { background: #f3f8f1; border: 1px solid #b9d7b0; border-radius: 8px; padding: .8rem 1.2rem; }
.rec .lr { font-size: 1.6rem; font-weight: 700; }
.note { background: #fff4e5; border: 1px solid #f0c27b; border-radius: 6px; padding: .5rem 1rem; }
table { border-collapse: collapse; margin: .8rem 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e4e4e4; padding: .3rem .7rem; text-align: right; }
th { background: #f6f6f6; } td.l, th.l { text-align: left; }
tr.chosen td { background: #fff1dc; font-weight: 600; } tr.bad td { color: #a33; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #666; font-size: .9rem; }
code, pre { background: #f5f5f5; border-radius: 4px; } pre { padding: .6rem; overflow-x: auto; font-size: .85rem; }
footer { margin-top: 3rem; color: #888; font-size: .85rem; }
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _png(ax: Axes) -> str:
    """The axes' figure as an ``<img>`` with a base64 PNG; the figure is closed."""
    fig = cast("Figure", ax.figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)  # type: ignore[no-untyped-call]
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(ax: Axes, alt: str, caption: str) -> str:
    return f'<figure><img src="{_png(ax)}" alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>'


def _table(header: Sequence[str], rows: Iterable[tuple[Sequence[str], str]], left: int = 0) -> str:
    """``rows`` are (cells, css class); the first ``left`` columns are left-aligned."""
    th = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(header))
    body = []
    for cells, cls in rows:
        tds = "".join(f'<td class="l">{_e(c)}</td>' if i < left else f"<td>{_e(c)}</td>" for i, c in enumerate(cells))
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{_CSS}</style></head>'
        f"<body>{body}<footer>written by lrscout {_e(__version__)}</footer></body></html>\n"
    )


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _task_line(config: dict[str, Any]) -> str:
    task = config.get("task", {})
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
    """The HTML page of a selection (a complete document)."""
    cfg = result.config
    spec = result.schedule
    params = ", ".join(f"{k}={v}" for k, v in spec.params.items()) or "no parameters"
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in result.notes)
    rec = (
        '<section class="rec">'
        f'<div>Recommended learning rate <span class="lr">{result.lr:.4g}</span></div>'
        f"<div>validation accuracy after the full protocol: <b>{_pct(result.score)}</b> "
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
            "-" if rung0 is None else _pct(rung0.val_acc),
            _pct(c.score) if c.steps_run == full_steps else "-",
            _loss(c.val_loss),
            f"{c.steps_run / spe:.3g}",
            ("chosen" if c.lr == result.lr else ("collapsed: " + (c.note or "") if c.collapsed else
                                                 ("finalist" if c.steps_run == full_steps else "stopped at rung 0"))),
        ], cls))
    table = _table(["learning rate", f"rung 0 ({result.plan.rungs[0].length / spe:.3g} ep.)",
                    f"final ({full_steps / spe:.3g} ep.)", "val loss (last)", "epochs run", "status"], rows)
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
        + _figure(plot_candidates(result), "validation accuracy of each candidate",
                  "Validation accuracy of each trial against its LR; grey: short runs, blue: full protocol, "
                  "star: the choice, crosses: collapsed runs.")
        + table
        + "<p>Ranking: higher validation accuracy, then lower validation loss, then the lower LR; collapsed "
          "runs (NaN loss or chance accuracy) last. Scores are on the validation split carved from the "
          "training data; the test split is never used.</p>"
        + "<h2>Validation curves</h2>"
        + _figure(plot_trial_curves(result), "validation curve of every trial",
                  "Validation accuracy after every epoch of every trial; dashed: short rung-0 runs.")
        + "<h2>Recommended schedule</h2>"
        + _figure(plot_schedule(spec), "learning rate schedule", "The planned learning rate of the recommended run.")
        + f"<pre><code>{_e(_schedule_code(result))}</code></pre>"
        + "<h2>Plan</h2>"
        + f"<p>Successive halving, {_e(how)}.</p>"
        + _table(["step", "epochs", "trials", "planned cost (runs)"], plan_rows, left=1)
        + f"<details><summary>settings</summary><pre>{_e(json.dumps(cfg, indent=2))}</pre></details>"
    )
    task = cfg.get("task", {})
    return _page(f"lrscout select: {task.get('dataset')} {task.get('optimizer')} lr {result.lr:.3g}", body)


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
