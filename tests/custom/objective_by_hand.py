"""The selection tests' digits task written as objectives (``lrscout.objective``): a plain
user training loop over the named task's data, model and batches.

Module-level functions, so the objectives travel to worker processes and Ray, and
``lrscout select --task tests/custom/objective_by_hand.py:make_objective`` loads them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

import lrscout
from lrscout.protocol import classification_eval
from lrscout.selection.objectives import Objective, Trial
from lrscout.task import Task

NAMED = Task(dataset="digits", model="simplecnn", optimizer="sgd", batch_size=32, limit=300)
STEPS_PER_EPOCH = 8  # 300 images, a validation split off them, batches of 32


def _train(trial: Trial, resumable: bool) -> None:
    model = NAMED.build_model()  # seeded: every call starts from the same weights
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.lr)
    scheduler = trial.scheduler(optimizer)
    if resumable and trial.state is not None:
        model.load_state_dict(trial.state["model"])
        optimizer.load_state_dict(trial.state["optimizer"])
        scheduler.load_state_dict(trial.state["scheduler"])
    loader = NAMED.train_loader()
    for _ in trial.epochs():
        model.train()
        for x, y in trial.batches(loader):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if not math.isfinite(loss.item()):  # diverged: report it and stop
                trial.report(math.nan, math.nan)
                return
            scheduler.step()
        scores = classification_eval(model, NAMED.val_loader())
        trial.report(scores.score, scores.loss)
    if resumable:
        trial.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict()})


def train_digits(trial: Trial) -> None:
    """The loop a user writes, with ``trial.epochs()`` and ``trial.batches(loader)``."""
    _train(trial, resumable=False)


def train_digits_resumable(trial: Trial) -> None:
    """The same loop, continuing from the state its parent call saved."""
    _train(trial, resumable=True)


def range_test() -> lrscout.FindResult:
    """The range test on the objective's model and batches (20 steps)."""
    model = NAMED.build_model()
    return lrscout.find(model, NAMED.train_loader(), torch.optim.SGD(model.parameters(), lr=0.01), num_iter=20)


def make_objective() -> Objective:
    return lrscout.objective(train_digits, STEPS_PER_EPOCH, name="digits-loop", range_test=range_test)


def make_objective_without_range_test() -> Objective:
    return lrscout.objective(train_digits, STEPS_PER_EPOCH, name="digits-loop")


def report_twice(trial: Trial) -> None:
    """A bad objective: two reports for every epoch."""
    for _ in trial.epochs():
        trial.report(0.5)
        trial.report(0.5)


def report_once(trial: Trial) -> None:
    """A bad objective: one report at the end of a run of several epochs."""
    trial.report(0.5)


def report_text(trial: Trial) -> None:
    """A bad objective: a score that is not a number."""
    for _ in trial.epochs():
        trial.report("good")  # type: ignore[arg-type]


def report_nan(trial: Trial) -> Any:
    """A run that diverges at every LR: every score NaN."""
    for _ in trial.epochs():
        trial.report(math.nan)
