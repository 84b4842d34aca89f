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
