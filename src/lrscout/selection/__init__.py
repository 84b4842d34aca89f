"""Verified selection: candidates from a range test, confirmed by real training runs.

    candidates   candidate_lrs: the LR ladder read off a range test (pure)
    halving      plan_halving, rank, promote: successive-halving bookkeeping (pure)
    trial        TrialSpec, TrialResult, run_trial: one training run at one LR
    store        RunDir: the resumable output directory
    selection    select(task, ...) -> SelectResult
    comparison   compare(task, ...) -> CompareResult
"""

from .candidates import candidate_lrs
from .comparison import compare
from .halving import Outcome, Plan, Rung, plan_halving, promote, rank, rank_key
from .results import Candidate, CompareEntry, CompareResult, SelectResult
from .selection import select
from .trial import TrialResult, TrialSpec, run_trial

__all__ = [
    "Candidate",
    "CompareEntry",
    "CompareResult",
    "Outcome",
    "Plan",
    "Rung",
    "SelectResult",
    "TrialResult",
    "TrialSpec",
    "candidate_lrs",
    "compare",
    "plan_halving",
    "promote",
    "rank",
    "rank_key",
    "run_trial",
    "select",
]
