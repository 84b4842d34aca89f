"""The divergence guard: an object any training loop calls once per optimizer step.

Call ``guard.step(loss)`` after ``optimizer.step()`` with that step's loss. When the loss
is NaN/inf, spikes far above its running baseline, or keeps growing (rules and formulas
in :mod:`lrscout.training.detect`), the guard

1. restores the last *confirmed* snapshot of the model, optimizer and GradScaler,
2. divides the learning rate of every parameter group by ``factor`` (group ratios kept),
   in the scheduler too, so the next ``scheduler.step()`` does not undo the cut,
3. records an event and returns ``True``: skip ``scheduler.step()`` for this batch
   and carry on with the next one.

After ``max_recoveries`` rollbacks, the next detection restores the last good state once
more and raises :class:`~lrscout.errors.DivergenceError`.

Snapshots are taken every ``snapshot_every`` good steps and *confirmed* only after the
following ``snapshot_every`` steps were good as well: a loss is computed before the
update, so the weights just written by a step with a fine loss may already be broken; a
rollback therefore lands ``snapshot_every`` to ``2 * snapshot_every`` good steps back.
The random streams are not rewound (``Snapshot.restore(rng=False)``): the data loader
moves on to new batches anyway, and replaying the same dropout masks on the same path
has no value. The scheduler's step counter is not rewound either: the schedule is a
function of time, and the rolled-back steps were spent.

Example, in a plain loop::

    guard = lrscout.Guard(model, optimizer, scheduler=scheduler)
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        if not guard.step(loss.item()):
            scheduler.step()
    print(guard.events)
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DivergenceError
from ..state import Snapshot
from .detect import is_growth, is_spike, windowed_median

log = logging.getLogger(__name__)

#: Per-group keys that hold a learning rate a scheduler reads back (torch's OneCycleLR
#: keeps its whole cycle in the group: initial_lr = max_lr / div, min_lr = the floor).
_GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
#: Scheduler attributes that hold per-group learning rates (LambdaLR / StepLR / ...:
#: base_lrs; CyclicLR: max_lrs too).
_SCHEDULER_LR_ATTRS = ("base_lrs", "max_lrs")


def _divide(value: Any, factor: float) -> Any:
    if isinstance(value, torch.Tensor):  # capturable / compiled optimizers keep lr as a tensor
        return value / factor
    return float(value) / factor


def _divide_scheduler(scheduler: Any, factor: float) -> None:
    """Divide every LR a scheduler (or a SequentialLR / ChainedScheduler) remembers."""
    for inner in getattr(scheduler, "_schedulers", ()) or ():
        _divide_scheduler(inner, factor)
    for attr in _SCHEDULER_LR_ATTRS:
        values = getattr(scheduler, attr, None)
        if isinstance(values, list):
            setattr(scheduler, attr, [_divide(v, factor) for v in values])
    last = getattr(scheduler, "_last_lr", None)
    if isinstance(last, list):
        scheduler._last_lr = [_divide(v, factor) for v in last]


class Guard:
    """Detects divergence from the loss of each step and rolls training back.

    Args:
        model, optimizer: what to snapshot and restore.
        scheduler: a torch LR scheduler whose remembered LRs must be cut as well.
        scaler: an AMP ``GradScaler`` to snapshot and restore with the rest.
        factor: the LR of every group is divided by this on each recovery (> 1).
        max_recoveries: rollbacks allowed; the next detection raises ``DivergenceError``.
        spike: how many times the progress made so far one step must give back to count
            as a spike (> 0; before there is progress: times the loss level).
        growth: fraction of the progress made that the windowed median may give back
            before the run counts as growing (> 0).
        window: good losses in the running baseline (>= 3).
        snapshot_every: good steps between snapshots (>= 1).

    ``events`` lists every detection as ``{"step", "kind", "loss", "lr_before", "lr_after",
    "restored_step", "action"}`` with ``kind`` in ``"nan" | "spike" | "growth"``, ``step``
    the 0-based count of ``step()`` calls, LRs those of group 0, ``restored_step`` the
    step whose weights were put back and ``action`` ``"rollback"`` or ``"stop"``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        scheduler: Any = None,
        scaler: Any = None,
        factor: float = 10.0,
        max_recoveries: int = 3,
        spike: float = 3.0,
        growth: float = 0.5,
        window: int = 20,
        snapshot_every: int = 20,
    ) -> None:
        if not (math.isfinite(factor) and factor > 1.0):
            raise ConfigError(f"guard factor must be a finite number > 1, got {factor}")
        if max_recoveries < 0:
            raise ConfigError(f"max_recoveries must be >= 0, got {max_recoveries}")
        if not (math.isfinite(spike) and spike > 0):
            raise ConfigError(f"spike must be a finite number > 0, got {spike}")
        if not (math.isfinite(growth) and growth > 0):
            raise ConfigError(f"growth must be a finite number > 0, got {growth}")
        if window < 3:
            raise ConfigError(f"window must be >= 3, got {window}")
        if snapshot_every < 1:
            raise ConfigError(f"snapshot_every must be >= 1, got {snapshot_every}")
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.factor = float(factor)
        self.max_recoveries = int(max_recoveries)
        self.spike = float(spike)
        self.growth = float(growth)
        self.window = int(window)
        self.snapshot_every = int(snapshot_every)
        self.events: list[dict[str, Any]] = []
        self.steps = 0  # calls to step()
        self._good: list[float] = []  # losses that passed the checks, since the start
        self._best: list[float] = []  # lowest full-window median up to each good loss
        # (snapshot, len(self._good) when taken, steps applied to its weights)
        self._confirmed: tuple[Snapshot, int, int] = (Snapshot.take(model, optimizer, scaler), 0, 0)
        self._pending: tuple[Snapshot, int, int] | None = None
        self._since_snapshot = 0

    @property
    def recoveries(self) -> int:
        """Rollbacks done so far."""
        return sum(1 for e in self.events if e["action"] == "rollback")

    @property
    def lr_scale(self) -> float:
        """Product of the cuts made so far: the LR is this times what it would have been."""
        return self.factor ** -self.recoveries

    def check(self, loss: float) -> str | None:
        """The detection for ``loss`` against the current history, without acting on it:
        ``"nan"``, ``"spike"``, ``"growth"`` or ``None``."""
        if not math.isfinite(loss):
            return "nan"
        if not self._good:
            return None
        recent = np.asarray(self._good[-self.window:], dtype=np.float64)
        start = float(np.median(self._good[: self.window]))
        if is_spike(loss, recent, start=start, spike=self.spike):
            return "spike"
        if len(self._good) + 1 >= self.window:
            window = np.append(recent, loss)[-self.window:]
            best = min(self._best[-1] if self._best else math.inf, float(np.median(window)))
            if is_growth(window, best=best, start=start, growth=self.growth):
                return "growth"
        return None

    def step(self, loss: float) -> bool:
        """Check this step's loss; roll back and return True when it signals divergence.

        Raises :class:`DivergenceError` (after restoring the last good state) when a
        detection comes after ``max_recoveries`` rollbacks.
        """
        loss = float(loss)
        step = self.steps
        self.steps += 1
        kind = self.check(loss)
        if kind is None:
            self._accept(loss)
            return False
        lr_before = float(self.optimizer.param_groups[0]["lr"])
        snapshot, n_good, snap_step = self._confirmed
        saved = [{k: g[k] for k in _GROUP_LR_KEYS if k in g} for g in self.optimizer.param_groups]
        snapshot.restore(rng=False)
        del self._good[n_good:], self._best[n_good:]
        self._pending, self._since_snapshot = None, 0
        if self.recoveries >= self.max_recoveries:
            for group, lrs in zip(self.optimizer.param_groups, saved):
                group.update(lrs)  # keep the LRs the run had reached, uncut
            self._record(step, kind, loss, lr_before, lr_before, snap_step, "stop")
            cut = f" (LR cut {self.factor ** self.recoveries:g}x in all)" if self.recoveries else ""
            raise DivergenceError(
                f"training diverged again ({kind} at step {step}, loss {loss:.3g}, lr {lr_before:.3g}) after "
                f"{self.max_recoveries} recoveries{cut}; restored the weights of step {snap_step}. "
                "Lower the learning rate or allow more recoveries"
            )
        for group, lrs in zip(self.optimizer.param_groups, saved):
            group.update({k: _divide(v, self.factor) for k, v in lrs.items()})
        if self.scheduler is not None:
            _divide_scheduler(self.scheduler, self.factor)
        lr_after = float(self.optimizer.param_groups[0]["lr"])
        self._record(step, kind, loss, lr_before, lr_after, snap_step, "rollback")
        log.warning("guard: %s at step %d (loss %.3g): restored step %d, lr %.3g -> %.3g",
                    kind, step, loss, snap_step, lr_before, lr_after)
        return True

    def _accept(self, loss: float) -> None:
        self._good.append(loss)
        best = self._best[-1] if self._best else math.inf
        if len(self._good) >= self.window:
            best = min(best, windowed_median(np.asarray(self._good[-self.window:]), self.window))
        self._best.append(best)
        self._since_snapshot += 1
        if self._since_snapshot >= self.snapshot_every:
            # The pending snapshot has now been followed by snapshot_every good steps.
            if self._pending is not None:
                self._confirmed = self._pending
            self._pending = (Snapshot.take(self.model, self.optimizer, self.scaler), len(self._good), self.steps)
            self._since_snapshot = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything the guard has learnt (history, snapshots, events), so a resumed run
        judges its next steps exactly as the uninterrupted one would."""
        def snap(entry: tuple[Snapshot, int, int] | None) -> dict[str, Any] | None:
            if entry is None:
                return None
            snapshot, n_good, step = entry
            return {"snapshot": snapshot.state_dict(), "n_good": n_good, "step": step}

        return {"events": [dict(e) for e in self.events], "steps": self.steps, "good": list(self._good),
                "best": list(self._best), "since_snapshot": self._since_snapshot,
                "confirmed": snap(self._confirmed), "pending": snap(self._pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def snap(entry: dict[str, Any] | None) -> tuple[Snapshot, int, int] | None:
            if entry is None:
                return None
            snapshot = Snapshot.from_state_dict(self.model, self.optimizer, self.scaler, entry["snapshot"])
            return snapshot, int(entry["n_good"]), int(entry["step"])

        confirmed = snap(state["confirmed"])
        if confirmed is None:
            raise ConfigError("guard state without a confirmed snapshot")
        self.events = [dict(e) for e in state["events"]]
        self.steps = int(state["steps"])
        self._good = [float(v) for v in state["good"]]
        self._best = [float(v) for v in state["best"]]
        self._since_snapshot = int(state["since_snapshot"])
        self._confirmed, self._pending = confirmed, snap(state["pending"])

    def _record(self, step: int, kind: str, loss: float, lr_before: float, lr_after: float,
                restored_step: int, action: str) -> None:
        self.events.append({"step": step, "kind": kind, "loss": loss, "lr_before": lr_before,
                            "lr_after": lr_after, "restored_step": restored_step, "action": action})
