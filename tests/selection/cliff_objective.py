"""Training functions with a known answer for the selection driver: no model, a validation
score that is a function of the LR alone, and a cliff above which a run diverges. With the
range test of :func:`short_sweep` (onset 1.0) the verified pair of the default budget is
the ladder's 3rd and 4th points from the top, 0.215 and 0.1."""

from __future__ import annotations

import math
from lrscout.results import FindResult
from lrscout.selection.objectives import Trial

STEPS_PER_EPOCH = 4
EPOCHS = 10
#: Runs above this LR diverge in their first epoch.
CLIFF = 0.15
#: Runs above this LR diverge in the second half of the protocol (``late_cliff``).
LATE_CLIFF = 0.08


def short_sweep() -> FindResult:
    """A 20-step range test whose loss starts to climb at 1.0: 20 steps of a 40-step protocol."""
    lrs = tuple(10 ** (-5 + 5 * i / 19) for i in range(20))
    return FindResult(lr=0.05, interval=(0.01, 0.3), suggestions={"steep": 0.05}, history_lr=lrs,
                      history_loss=tuple(1.0 for _ in lrs), smoothed=tuple(1.0 for _ in lrs), onset=1.0,
                      rule="test", stopped_early=False, config={"num_iter": 20, "steps_run": 20})


def _score(lr: float) -> float:
    return 0.9 - 0.1 * abs(math.log10(lr / 0.07))


def _run(trial: Trial, late_cliff: float) -> None:
    for epoch in trial.epochs():
        for _ in trial.batches(range(STEPS_PER_EPOCH)):
            pass
        if trial.lr > CLIFF or (trial.lr > late_cliff and epoch >= EPOCHS // 2):
            trial.report(math.nan, math.nan)
            break
        trial.report(_score(trial.lr), 1.0 - _score(trial.lr))
    trial.save({"done": trial.steps})


def cliff(trial: Trial) -> None:
    """Healthy below :data:`CLIFF`, best at 0.07."""
    _run(trial, late_cliff=math.inf)


def late_cliff(trial: Trial) -> None:
    """As :func:`cliff`, and runs above :data:`LATE_CLIFF` diverge after half the protocol."""
    _run(trial, late_cliff=LATE_CLIFF)
