"""Argument checks shared by the schedule factories, the registry and the spec.

Each check returns the normalised value or raises :class:`~lrscout.errors.ConfigError`
with the offending value in the message, so factories validate once and stay short.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from lrscout.errors import ConfigError


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise _error(name, value, f"an integer >= {minimum}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` inside the given (open or closed) bounds."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise _error(name, value, _describe(low, high, low_open, high_open))
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise _error(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_run(epochs: Any, steps_per_epoch: Any) -> tuple[int, int]:
    """Validate the length of a training run: ``epochs >= 1`` and ``steps_per_epoch >= 1``."""
    return check_int("epochs", epochs, minimum=1), check_int(
        "steps_per_epoch", steps_per_epoch, minimum=1
    )


def check_lr(lr: Any) -> float:
    """A learning rate must be a finite real number > 0."""
    return check_real("lr", lr, low=0.0, low_open=True)


def _describe(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    return "a finite number" + (" " + " and ".join(bounds) if bounds else "")


def _error(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{name} must be {expected}, got {value!r}")
