"""The objective form (Optuna / Ray Tune style): ``select`` over calls of the user's function.

The user's function trains a fresh model at the LR it is handed, with the schedule it is
handed, until the protocol step it is asked for, and reports a validation score after
every epoch; ``select`` runs its successive halving over calls of it exactly as over a
task's trials: a short trial trains the full schedule compressed into its steps, the best
go on to the full protocol, and the cost is counted in the same full-run units
(``cost_runs``). Continuing a short trial instead of restarting it (constant and plateau
schedules) happens only when the objective says it can resume (``resumable=True``): it
then saves its state with :meth:`Trial.save` and the promoted call gets it back as
:attr:`Trial.state`.

A short trial may end inside an epoch; an ordinary epoch loop needs two changes to stop
there (``trial.epochs()`` for the epochs, ``trial.batches(loader)`` for the batches)::

    def train_digits(trial: Trial) -> None:
        model = make_model()                      # seeded: every call starts from the same weights
        optimizer = torch.optim.SGD(model.parameters(), lr=trial.lr)
        scheduler = trial.scheduler(optimizer)    # the protocol's schedule at trial.lr
        loader = make_loader()
        for epoch in trial.epochs():              # was: range(epochs)
            for x, y in trial.batches(loader):    # was: loader; stops at trial.steps
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
                scheduler.step()
            trial.report(accuracy(model), val_loss(model))

    objective = lrscout.objective(train_digits, steps_per_epoch=len(make_loader()), name="digits")
    result = lrscout.select(objective, schedule="cosine", epochs=10, find_result=lrscout.find(...))

The candidate LRs come from a range test on the user's model (the function itself is
opaque): ``find_result=`` to :func:`~lrscout.selection.selection.select`, or the
objective's own ``range_test`` function, which ``select`` calls when none is given.

A run that diverged may stop early: report the non-finite score or loss and return; the
trial counts as collapsed, and as costing the batches :meth:`Trial.batches` gave it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write
from ..errors import ConfigError, DataError
from ..protocol import ACCURACY, Metric
from ..results import FindResult
from ..schedules import ScheduleSpec
from .trial import (EpochRecord, StepWindow, TrialResult, TrialSpec, checkpoint_path, compressed_scheduler,
                    torch_threads, working_dir)


class Trial:
    """One call of the objective: train at :attr:`lr` until protocol step :attr:`steps`
    (counted from 0 at the start of the protocol), report after every epoch.

    :attr:`start_step` is 0, or the step where the parent call stopped when this call
    continues it; then :attr:`state` is what the parent saved (:meth:`save`), else
    ``None``. :attr:`schedule` is the full protocol's schedule at :attr:`lr`.
    """

    def __init__(self, lr: float, steps: int, steps_per_epoch: int, schedule: ScheduleSpec, *,
                 start_step: int = 0, state: Any = None, compress: bool = False,
                 rng_state: torch.Tensor | None = None) -> None:
        self.lr, self.steps, self.steps_per_epoch, self.schedule = lr, steps, steps_per_epoch, schedule
        self.start_step, self.state, self.compress = start_step, state, compress
        self.reports: list[tuple[float, float | None, float]] = []  # (score, loss, lr) per report
        self.saved: Any = None
        self.batches_drawn: int | None = None  # batches given by batches(); None: never called
        # the loader comes with each batches() call; the window keeps the epoch count and the RNG
        self._window = StepWindow(None, start_step, steps, steps_per_epoch, rng_state)
        self._optimizer: torch.optim.Optimizer | None = None
        self._scheduler: Any = None

    @property
    def start_epoch(self) -> int:
        """The epoch (from 0) this call starts in."""
        return self._window.start_epoch

    @property
    def end_epoch(self) -> int:
        """One past the last epoch this call touches (its last may end inside an epoch)."""
        return self._window.end_epoch

    @property
    def expected_reports(self) -> int:
        """Reports this call owes: one after every epoch it touches."""
        return self.end_epoch - self.start_epoch

    def epochs(self) -> range:
        """The epoch indices (from 0) this call trains, for ``for epoch in trial.epochs():``."""
        return range(self.start_epoch, self.end_epoch)

    def batches(self, loader: Iterable[Any]) -> Iterator[Any]:
        """The next epoch's batches of ``loader``, stopping at :attr:`steps`.

        Call it once per epoch of :meth:`epochs`. A continued call first draws (without
        yielding) the batches before :attr:`start_step` from the loader, so the batch
        order goes on as in an uninterrupted run.
        """
        if isinstance(loader, Sized) and len(loader) != self.steps_per_epoch:
            raise ConfigError(f"the loader gives {len(loader)} batches an epoch, the objective states "
                              f"steps_per_epoch={self.steps_per_epoch}; give lrscout.objective its length")
        self.batches_drawn = self.batches_drawn or 0
        self._window.loader = loader
        for batch in self._window:
            self.batches_drawn += 1
            yield batch

    def scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """The protocol's LR scheduler at :attr:`lr` (it sets the optimizer's LR), squeezed
        into :attr:`steps` for a short trial that restarts: call ``step()`` after every
        optimizer step (plateau: once per epoch with the validation loss)."""
        self._optimizer = optimizer
        if self.compress and self.schedule.per_batch:
            self._scheduler = compressed_scheduler(optimizer, self.schedule, self.steps)
        else:
            self._scheduler = self.schedule.build(optimizer)
        return self._scheduler

    def report(self, score: float, loss: float | None = None) -> None:
        """The validation score (and loss, when known) after one more epoch, or after the
        part of the last one this call trains."""
        if len(self.reports) >= self.expected_reports:
            raise ConfigError(f"the objective reported more than the {self.expected_reports} time(s) asked: once "
                              f"after every epoch it trains (steps {self.start_step}..{self.steps})")
        value, lost = _number(score, "score"), None if loss is None else _number(loss, "loss")
        lr = float(self._optimizer.param_groups[0]["lr"]) if self._optimizer is not None else self.lr
        self.reports.append((value, lost, lr))

    def save(self, state: Any) -> None:
        """Keep ``state`` (state dicts: tensors, numbers, strings, lists, dicts) for the
        call that continues this one (a resumable objective)."""
        self.saved = state


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):  # RuntimeError: a tensor of many elements
        raise ConfigError(f"the objective reported a {what} of type {type(value).__name__}, not a number") from None


#: Why an objective without a range test has no candidates, and what to give.
NO_RANGE_TEST = ("an objective's training function is opaque to the range test: pass "
                 "find_result=lrscout.find(model, loader, optimizer) run on its model, or build it with "
                 "lrscout.objective(..., range_test=FUNCTION)")

ObjectiveFn = Callable[[Trial], Any]
#: ``range_test() -> FindResult``: a range test on the objective's model.
RangeTestFn = Callable[[], FindResult]


def _path_of(fn: Any) -> str:
    fn = getattr(fn, "func", fn)  # functools.partial
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"


@dataclass(frozen=True)
class Objective:
    """A training function as a selection target (build it with :func:`objective`)."""

    fn: ObjectiveFn
    steps_per_epoch: int
    metric: Metric = ACCURACY
    resumable: bool = False
    name: str | None = None
    range_test: RangeTestFn | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"the objective must be a function taking a Trial, got {type(self.fn).__name__}")
        if isinstance(self.steps_per_epoch, bool) or not isinstance(self.steps_per_epoch, int) \
                or self.steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch must be an int >= 1, got {self.steps_per_epoch!r}")
        if not isinstance(self.metric, Metric):
            raise ConfigError(f"metric must be a lrscout.Metric, got {type(self.metric).__name__}")
        if self.range_test is not None and not callable(self.range_test):
            raise ConfigError("range_test must be a function returning a lrscout.FindResult")

    def to_json(self) -> dict[str, Any]:
        """The objective's identity (resume refuses an output folder of another one)."""
        return {"kind": "objective", "name": self.name, "function": _path_of(self.fn),
                "steps_per_epoch": self.steps_per_epoch, "resumable": self.resumable,
                "metric": self.metric.to_json()}

    @property
    def range_test_name(self) -> str | None:
        """``module:function`` of :attr:`range_test` (part of a selection's settings)."""
        return None if self.range_test is None else _path_of(self.range_test)

    def find(self) -> FindResult:
        """The objective's own range test (:attr:`range_test`), checked."""
        if self.range_test is None:
            raise ConfigError(NO_RANGE_TEST)
        found = self.range_test()
        if not isinstance(found, FindResult):
            raise ConfigError(f"the objective's range_test {_path_of(self.range_test)} returned "
                              f"{type(found).__name__}, not a lrscout.FindResult (return lrscout.find(...))")
        return found


def objective(fn: ObjectiveFn, steps_per_epoch: int, *, metric: Metric = ACCURACY, resumable: bool = False,
              name: str | None = None, range_test: RangeTestFn | None = None) -> Objective:
    """``fn(trial)`` as something :func:`lrscout.select` can choose an LR for.

    ``steps_per_epoch``: optimizer steps in one epoch of ``fn``'s training (the schedule
    is planned in them). ``metric`` names the reported score and its direction.
    ``resumable``: ``fn`` continues from :attr:`Trial.state` at :attr:`Trial.start_step`
    and saves its state with :meth:`Trial.save`; only then are short trials continued
    rather than restarted. ``name`` is part of the identity for resuming into an output
    folder. ``range_test() -> FindResult``: the range test ``select`` runs for the
    candidates when it is not given ``find_result``. For worker processes or Ray, ``fn``
    and ``range_test`` must be module-level functions (they travel pickled).
    """
    return Objective(fn, steps_per_epoch, metric, resumable, name, range_test)


def _load_state(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
    except Exception as exc:  # zip, pickle, EOF and runtime errors alike
        raise DataError(f"the objective's saved state {path} cannot be read ({type(exc).__name__}); "
                        "trial.save takes state dicts (tensors, numbers, strings, lists, dicts)") from exc


def run_objective_trial(task: Objective, spec: TrialSpec, checkpoint_dir: str | Path | None = None) -> TrialResult:
    """One call of the objective for ``spec`` (what :func:`~lrscout.selection.trial.run_trial`
    is for a training task)."""
    t0 = time.perf_counter()
    full = ScheduleSpec.from_json(spec.schedule)
    if full.steps_per_epoch != task.steps_per_epoch:
        raise DataError(f"trial {spec.trial_id} was planned for {full.steps_per_epoch} steps per epoch, "
                        f"the objective states {task.steps_per_epoch}")
    state, start, rng = None, 0, None
    if spec.parent is not None and checkpoint_dir is not None:
        path = checkpoint_path(checkpoint_dir, spec.parent)
        if path.exists():  # missing (deleted, another node): the prefix is retrained instead
            saved = _load_state(path)
            state, start, rng = saved["state"], spec.start_step, saved["rng"]
            if saved.get("cuda_rng") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(list(saved["cuda_rng"]))
    trial = Trial(spec.lr, spec.steps, task.steps_per_epoch, full, start_step=start, state=state,
                  compress=spec.compress, rng_state=rng)
    task.fn(trial)
    reports = trial.reports
    diverged = bool(reports) and not all(x is None or math.isfinite(x) for x in reports[-1][:2])
    if len(reports) < trial.expected_reports and not diverged:
        raise ConfigError(f"the objective reported {len(reports)} time(s) for the {trial.expected_reports} "
                          f"epoch(s) it trained (steps {start}..{spec.steps}); call trial.report(score) once "
                          "after every epoch, and once after a partial last one")
    scheduler = trial._scheduler
    if scheduler is not None and full.per_batch and not diverged and scheduler.last_epoch != spec.steps:
        raise ConfigError(f"the scheduler from trial.scheduler reached step {scheduler.last_epoch}, not "
                          f"trial.steps ({spec.steps}): step it after every optimizer step, stop at trial.steps "
                          "(trial.batches does), and restore its state_dict when continuing")
    if spec.checkpoint and checkpoint_dir is not None:
        if trial.saved is None:
            raise ConfigError("a resumable objective must call trial.save(state) before it returns")
        data = {"state": trial.saved, "rng": torch.get_rng_state(),
                "cuda_rng": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []}
        atomic_write(checkpoint_path(checkpoint_dir, spec.trial_id), lambda p: torch.save(data, p))
    spe = task.steps_per_epoch
    history = tuple(
        EpochRecord(trial.start_epoch + i + 1, s, _finite(loss), None, lr,
                    min((trial.start_epoch + i + 1) * spe, spec.steps))
        for i, (s, loss, lr) in enumerate(reports)
        if min((trial.start_epoch + i + 1) * spe, spec.steps) > spec.start_step
    )
    score, loss, _ = reports[-1] if reports else (math.nan, None, spec.lr)
    note = None
    if not math.isfinite(score):
        note = f"the reported {task.metric.name} is {score}"
    elif loss is not None and not math.isfinite(loss):
        note = "validation loss not finite"
    drawn = trial.batches_drawn
    return TrialResult(
        spec=spec, val_acc=score, val_loss=_finite(loss), collapsed=note is not None, history=history, note=note,
        steps_trained=drawn if drawn is not None else spec.steps - start, seconds=time.perf_counter() - t0,
        task=task.to_json(),
    )


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def run_objective_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """JSON in, JSON out, as :func:`~lrscout.selection.trial.run_payload`, for an objective
    (``payload["task"]`` is the :class:`Objective` itself)."""
    task = payload["task"]
    if not isinstance(task, Objective):
        raise ConfigError(f"run_objective_payload needs an Objective, got {type(task).__name__}")
    spec = TrialSpec.from_json(payload["trial"])
    with working_dir(payload.get("workdir")), torch_threads(payload.get("threads")):
        return run_objective_trial(task, spec, payload.get("checkpoint_dir")).to_json()


__all__ = ["NO_RANGE_TEST", "Objective", "ObjectiveFn", "RangeTestFn", "Trial", "objective", "run_objective_payload",
           "run_objective_trial"]
