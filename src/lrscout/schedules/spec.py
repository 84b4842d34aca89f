"""A chosen learning rate turned into a complete, saveable schedule.

:class:`ScheduleSpec` holds everything needed to rebuild the schedule: kind, peak / base
learning rate, run length and the resolved parameters. It computes the planned learning
rate at any step without torch (for plots and reports), builds the torch scheduler, and
round-trips through JSON::

    >>> spec = schedule_for(0.1, "step", epochs=30, steps_per_epoch=100)
    >>> spec.params
    {'step_size': 10, 'gamma': 0.1}
    >>> spec.lr_at(0), spec.lr_at(999), round(spec.lr_at(1000), 12)
    (0.1, 0.1, 0.01)
    >>> ScheduleSpec.from_json(spec.to_json()) == spec
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrscout.errors import ConfigError, DataError

from ._checks import check_lr, check_run
from .functions import Schedule
from .registry import get_schedule
from .torch_adapter import build_scheduler, set_base_lr

JSON_VERSION = 1


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule kind with its learning rate, run length and resolved parameters.

    Attributes:
        kind: a name in :data:`~lrscout.schedules.SCHEDULES`.
        lr: the base learning rate of parameter group 0 (the peak for ``onecycle`` and
            ``cosine``); other groups keep their ratio to group 0.
        epochs: number of epochs of the run.
        steps_per_epoch: optimizer steps (batches) per epoch.
        params: the kind's parameters with every default filled in (validated on
            construction; see :mod:`lrscout.schedules.registry` for units).

    The planned learning rate at 0-based step ``t`` is ``lr * f(t)``, ``f`` the kind's
    multiplier; for ``plateau`` the plan is ``lr`` (reductions depend on the run).
    """

    kind: str
    lr: float
    epochs: int
    steps_per_epoch: int
    params: dict[str, Any] = field(default_factory=dict)
    _multiplier: Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        info = get_schedule(self.kind)
        epochs, steps_per_epoch = check_run(self.epochs, self.steps_per_epoch)
        if not isinstance(self.params, dict):
            raise ConfigError(f"params must be a dict, got {self.params!r}")
        params = info.resolve(self.params, epochs=epochs, steps_per_epoch=steps_per_epoch)
        object.__setattr__(self, "kind", info.name)
        object.__setattr__(self, "lr", check_lr(self.lr))
        object.__setattr__(self, "epochs", epochs)
        object.__setattr__(self, "steps_per_epoch", steps_per_epoch)
        object.__setattr__(self, "params", params)
        object.__setattr__(
            self,
            "_multiplier",
            info.multiplier(params, epochs=epochs, steps_per_epoch=steps_per_epoch),
        )

    @property
    def total_steps(self) -> int:
        """``epochs * steps_per_epoch``: the number of optimizer steps in the run."""
        return self.epochs * self.steps_per_epoch

    @property
    def per_batch(self) -> bool:
        """``True`` if the built scheduler is stepped per batch, ``False`` for ``plateau``."""
        return get_schedule(self.kind).per_batch

    def lr_at(self, step: int) -> float:
        """Planned learning rate of group 0 for the batch at 0-based optimizer ``step``."""
        return self.lr * self._multiplier(step)

    def lrs(self) -> np.ndarray:
        """Planned learning rates for steps ``0 .. total_steps - 1`` (float64)."""
        return np.array([self.lr_at(t) for t in range(self.total_steps)], dtype=np.float64)

    def build(self, optimizer: Optimizer) -> LRScheduler:
        """Set the optimizer's base learning rates from :attr:`lr`, then build the scheduler.

        Group 0 gets ``lr``; every other group keeps its ratio to group 0 (see
        :func:`~lrscout.schedules.torch_adapter.set_base_lr`). Returns the object from
        :func:`~lrscout.schedules.build_scheduler`: step it after every
        ``optimizer.step()``, or once per epoch with the validation loss for ``plateau``.
        """
        set_base_lr(optimizer, self.lr)
        return build_scheduler(
            optimizer,
            self.kind,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            **self.params,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with a ``"version"`` key (tuples become lists)."""
        return {
            "version": JSON_VERSION,
            "kind": self.kind,
            "lr": self.lr,
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "params": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleSpec:
        """Rebuild a spec from :meth:`to_json` output; :class:`DataError` if malformed."""
        if not isinstance(data, dict):
            raise DataError(f"schedule spec must be a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if version != JSON_VERSION:
            raise DataError(
                f"schedule spec version {version!r} is not supported (expected {JSON_VERSION})"
            )
        missing = [k for k in ("kind", "lr", "epochs", "steps_per_epoch") if k not in data]
        if missing:
            raise DataError(f"schedule spec is missing {', '.join(missing)}")
        return cls(
            kind=data["kind"],
            lr=data["lr"],
            epochs=data["epochs"],
            steps_per_epoch=data["steps_per_epoch"],
            params=dict(data.get("params", {})),
        )


def schedule_for(
    result_or_lr: float | Any,
    kind: str,
    epochs: int,
    steps_per_epoch: int,
    **params: Any,
) -> ScheduleSpec:
    """Turn a chosen learning rate into a :class:`ScheduleSpec`.

    ``result_or_lr`` is a float or any object with a float attribute ``.lr`` (a find or
    select result). That learning rate is the base of group 0 and, for ``onecycle`` and
    ``cosine``, the peak. Raises :class:`ConfigError` for ``lr <= 0`` or non-finite,
    ``epochs < 1``, ``steps_per_epoch < 1``, an unknown kind or parameter.

    >>> schedule_for(0.4, "onecycle", epochs=2, steps_per_epoch=50).lr_at(29)
    0.4
    """
    lr = getattr(result_or_lr, "lr", result_or_lr)
    return ScheduleSpec(
        kind=kind, lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch, params=dict(params)
    )
