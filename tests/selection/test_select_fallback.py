"""When every finalist collapses on the full protocol, select falls back to a safe LR."""

from __future__ import annotations

from lrscout.selection.selection import _safe_fallback
from lrscout.selection.trial import TrialResult, TrialSpec


def trial(c: int, lr: float, rung: int, acc: float, collapsed: bool = False) -> TrialResult:
    spec = TrialSpec(trial_id=f"r{rung}-c{c}", candidate=c, lr=lr, rung=rung, steps=30 if rung == 0 else 100,
                     schedule={})
    return TrialResult(spec=spec, val_acc=acc, val_loss=0.1, collapsed=collapsed)


def test_fallback_is_best_healthy_short_run_below_the_collapsed_finalists() -> None:
    short = [trial(0, 0.01, 0, 0.90), trial(1, 0.03, 0, 0.94), trial(2, 0.1, 0, 0.97), trial(3, 0.3, 0, 0.96),
             trial(4, 0.05, 0, 0.50, collapsed=True)]
    chosen = _safe_fallback([short], below=0.1)  # finalists 0.1 and 0.3 collapsed on the full run
    assert chosen is not None and chosen.spec.lr == 0.03


def test_no_fallback_when_nothing_healthy_lies_below() -> None:
    short = [trial(0, 0.1, 0, 0.97), trial(1, 0.3, 0, 0.96)]
    assert _safe_fallback([short], below=0.1) is None


def test_select_falls_back_when_every_finalist_collapses_on_the_full_run() -> None:
    """The whole assembly path (not only the helper): finalists 0.1 and 0.3 collapsed."""
    from lrscout.schedules import schedule_for
    from lrscout.selection.halving import Plan, Rung
    from lrscout.selection.selection import _assemble
    from lrscout.task import Task

    task = Task(dataset="digits", limit=300, batch_size=32)
    protocol = schedule_for(1.0, "constant", 4, 8)
    short = [trial(0, 0.01, 0, 0.90), trial(1, 0.03, 0, 0.94), trial(2, 0.1, 0, 0.97), trial(3, 0.3, 0, 0.96)]
    final = [trial(2, 0.1, 1, 0.10, collapsed=True), trial(3, 0.3, 1, 0.10, collapsed=True)]
    plan = Plan((Rung(10, 4), Rung(32, 2)), 32, False)
    result = _assemble(task, protocol, [0.01, 0.03, 0.1, 0.3], plan, [short, final], None, 0.5,  # type: ignore[arg-type]
                       {}, 1.0)
    assert result.lr == 0.03 and result.score == 0.94
    assert any("best candidate below them" in n for n in result.notes)
