"""The learning-rate ramp of a range test: one LR per optimizer step.

Two shapes, both closed-form functions of the step index ``i = 0 .. num_iter-1``:

    exp:     lr_i = start * (end / start) ** (i / (num_iter - 1))
    linear:  lr_i = start + (end - start) * i / (num_iter - 1)

``exp`` (Smith 2017, "Cyclical Learning Rates", the usual LR range test) spends the same
number of steps in every decade, so a curve over ``log10(lr)`` is evenly sampled; ``linear``
is the variant that spends most steps near ``end``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from lrscout.errors import ConfigError, unknown_name

MIN_ITER = 5
"""Fewest steps a ramp may have: fewer cannot show a descent followed by a rise."""


def _exp_ramp(start_lr: float, end_lr: float, frac: np.ndarray) -> np.ndarray:
    return start_lr * (end_lr / start_lr) ** frac


def _linear_ramp(start_lr: float, end_lr: float, frac: np.ndarray) -> np.ndarray:
    return start_lr + (end_lr - start_lr) * frac


RAMPS: dict[str, Callable[[float, float, np.ndarray], np.ndarray]] = {
    "exp": _exp_ramp,
    "linear": _linear_ramp,
}
"""Ramp shapes by name: ``fn(start_lr, end_lr, frac)`` with ``frac = i / (num_iter - 1)``."""


def lr_ramp(start_lr: float, end_lr: float, num_iter: int, mode: str = "exp") -> np.ndarray:
    """Return the LR of each of the ``num_iter`` steps of a range test.

    ``lr_ramp(1e-3, 1.0, 5)`` (exp) is ``[1e-3, 5.6e-3, 3.2e-2, 1.8e-1, 1.0]``: the
    first value is ``start_lr`` and the last is ``end_lr`` exactly (set, not computed, so
    rounding in ``**`` never leaves the sweep short of its end).

    Raises ``ConfigError`` (with the offending values) when ``start_lr <= 0``,
    ``start_lr >= end_lr``, ``num_iter < 5``, a value is not finite, or ``mode`` is unknown.
    """
    if mode not in RAMPS:
        raise unknown_name("mode", mode, list(RAMPS))
    if not (math.isfinite(start_lr) and math.isfinite(end_lr)):
        raise ConfigError(f"start_lr and end_lr must be finite, got {start_lr!r} and {end_lr!r}")
    if start_lr <= 0:
        raise ConfigError(f"start_lr must be > 0, got {start_lr!r}")
    if start_lr >= end_lr:
        raise ConfigError(
            f"start_lr must be < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}"
        )
    if isinstance(num_iter, bool) or not isinstance(num_iter, (int, np.integer)):
        raise ConfigError(f"num_iter must be an int, got {num_iter!r}")
    if num_iter < MIN_ITER:
        raise ConfigError(f"num_iter must be >= {MIN_ITER}, got {num_iter!r}")
    frac = np.arange(num_iter, dtype=np.float64) / (num_iter - 1)
    lrs = RAMPS[mode](float(start_lr), float(end_lr), frac)
    lrs[0] = start_lr
    lrs[-1] = end_lr
    return lrs
