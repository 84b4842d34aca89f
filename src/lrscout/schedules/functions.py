"""Pure learning-rate schedules: ``step -> multiplier`` (no torch, no state).

Every factory validates its arguments once and returns a function ``f(step) -> float``,
where ``step`` is the 0-based optimizer step (one per batch) and the value is the
*multiplier* of the peak / base learning rate: the learning rate used for the batch at
``step`` is ``lr * f(step)``. Composites are joins of simple pieces::

    >>> from lrscout.schedules import cosine
    >>> f = cosine(total_steps=100, warmup_steps=10)
    >>> round(f(0), 4), f(10), round(f(55), 4), f(100)
    (0.0909, 1.0, 0.5, 0.0)

The names of the arguments follow ``torch.optim.lr_scheduler`` where it has them
(``step_size``, ``gamma``, ``milestones``, ``total_steps``, ``pct_start``,
``div_factor``, ``final_div_factor``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from lrscout.errors import ConfigError

from ._checks import check_choice, check_int, check_real

Schedule = Callable[[int], float]
"""A schedule: 0-based optimizer step -> learning-rate multiplier."""

ANNEAL_STRATEGIES = ("cos", "linear")


def _check_step(step: int) -> int:
    # Schedules are defined for step >= 0; a negative step is a caller bug, not a value.
    if step < 0:
        raise ConfigError(f"schedule step must be >= 0, got {step!r}")
    return step


def constant() -> Schedule:
    """The constant schedule ``m(t) = 1``: training at the plain base learning rate.

    >>> constant()(123)
    1.0
    """

    def schedule(step: int) -> float:
        _check_step(step)
        return 1.0

    return schedule


def step(step_size: int, gamma: float = 0.1) -> Schedule:
    """Step decay, as ``torch.optim.lr_scheduler.StepLR`` in closed form.

    ``m(t) = gamma ** (t // step_size)``, with ``step_size`` counted in optimizer steps.

    >>> f = step(step_size=10, gamma=0.1)
    >>> f(9), f(10), round(f(25), 12)
    (1.0, 0.1, 0.01)
    """
    size = check_int("step_size", step_size, minimum=1)
    factor = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)

    def schedule(step: int) -> float:
        return factor ** (_check_step(step) // size)

    return schedule


def multistep(milestones: Sequence[int], gamma: float = 0.1) -> Schedule:
    """Decay by ``gamma`` at each milestone, as ``MultiStepLR`` in closed form.

    ``m(t) = gamma ** #{i : milestones[i] <= t}``; milestones are optimizer steps, in any
    order; a repeated milestone decays twice, as in PyTorch.

    >>> f = multistep([3, 6], gamma=0.5)
    >>> [f(t) for t in (0, 2, 3, 5, 6, 9)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
        raise ConfigError(f"milestones must be a sequence of step numbers, got {milestones!r}")
    points = sorted(check_int("milestone", m, minimum=0) for m in milestones)
    factor = check_real("gamma", gamma, low=0.0, high=1.0, low_open=True)

    def schedule(step: int) -> float:
        return factor ** bisect.bisect_right(points, _check_step(step))

    return schedule


def linear_warmup(warmup_steps: int) -> Schedule:
    """Linear warmup from about 0 to 1 over ``warmup_steps`` steps, then 1.

    ``m(t) = (t + 1) / (W + 1)`` for ``t < W``, else ``1``: the first step already moves
    (never an exact 0), and step ``W`` is the first one at the full learning rate.

    >>> f = linear_warmup(3)
    >>> [f(t) for t in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    width = check_int("warmup_steps", warmup_steps, minimum=1)

    def schedule(step: int) -> float:
        t = _check_step(step)
        return (t + 1) / (width + 1) if t < width else 1.0

    return schedule


def cosine_decay(decay_steps: int, eta_min_ratio: float = 0.0) -> Schedule:
    """Half-cosine from 1 at step 0 to ``eta_min_ratio`` at ``decay_steps``, then flat.

    ``m(t) = eta + (1 - eta) * (1 + cos(pi * min(t, D) / D)) / 2`` (Loshchilov & Hutter,
    SGDR, without restarts; ``CosineAnnealingLR`` with ``T_max = D``).

    >>> f = cosine_decay(10, eta_min_ratio=0.1)
    >>> f(0), round(f(5), 12), round(f(10), 12)
    (1.0, 0.55, 0.1)
    """
    length = check_int("decay_steps", decay_steps, minimum=1)
    eta = check_real("eta_min_ratio", eta_min_ratio, low=0.0, high=1.0)

    def schedule(step: int) -> float:
        t = min(_check_step(step), length)
        return eta + (1.0 - eta) * 0.5 * (1.0 + math.cos(math.pi * t / length))

    return schedule


def join(pieces: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``pieces[0]`` until ``boundaries[0]``, then ``pieces[1]``, and so on.

    Piece ``i`` sees the step counted from its own start: for
    ``boundaries[i-1] <= t < boundaries[i]``, ``m(t) = pieces[i](t - boundaries[i-1])``.
    Boundaries must be strictly increasing and > 0 (every piece runs at least one step).

    >>> f = join([linear_warmup(2), cosine_decay(4)], [2])
    >>> [round(f(t), 4) for t in range(7)]
    [0.3333, 0.6667, 1.0, 0.8536, 0.5, 0.1464, 0.0]
    """
    parts = list(pieces)
    edges = [check_int("boundary", b, minimum=1) for b in boundaries]
    if not parts or len(edges) != len(parts) - 1:
        raise ConfigError(
            f"join needs len(boundaries) == len(pieces) - 1 >= 0, got {len(parts)} pieces "
            f"and boundaries {list(boundaries)!r}"
        )
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"join boundaries must be strictly increasing, got {edges!r}")
    if any(not callable(p) for p in parts):
        raise ConfigError(f"join pieces must be schedules (callables), got {parts!r}")
    starts = [0, *edges]

    def schedule(step: int) -> float:
        i = bisect.bisect_right(edges, _check_step(step))
        return parts[i](step - starts[i])

    return schedule


def cosine(total_steps: int, warmup_steps: int = 0, eta_min_ratio: float = 0.0) -> Schedule:
    """Warm up linearly for ``warmup_steps``, then cosine-decay to ``eta_min_ratio`` at the end.

    ``join([linear_warmup(W), cosine_decay(T - W, eta)], [W])``: with ``W`` warmup steps and
    ``T`` total steps, ``m(W) = 1``, ``m(W + (T - W) / 2) = (1 + eta) / 2`` and ``m(T) = eta``.

    >>> f = cosine(total_steps=20, warmup_steps=0, eta_min_ratio=0.2)
    >>> f(0), round(f(10), 12), round(f(20), 12)
    (1.0, 0.6, 0.2)
    """
    total = check_int("total_steps", total_steps, minimum=1)
    warm = check_int("warmup_steps", warmup_steps, minimum=0)
    if warm >= total:
        raise ConfigError(f"warmup_steps must be < total_steps={total}, got {warm!r}")
    decay = cosine_decay(total - warm, eta_min_ratio)
    if warm == 0:
        return decay
    return join([linear_warmup(warm), decay], [warm])


def onecycle(
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
) -> Schedule:
    """Smith's 1cycle policy, two-phase, exactly as ``torch.optim.lr_scheduler.OneCycleLR``.

    With ``T = total_steps``, ``s = 1 / div_factor`` (start), ``e = s / final_div_factor``
    (end) and the peak at step ``P = pct_start * T - 1`` (a float, PyTorch's boundary)::

        m(t) = A(s, 1, t / P)                    for t <= P
        m(t) = A(1, e, (t - P) / (T - 1 - P))    for P < t <= T - 1

    where ``A(a, b, p) = b + (a - b) * (1 + cos(pi * p)) / 2`` (``anneal="cos"``) or
    ``a + (b - a) * p`` (``anneal="linear"``). Steps after ``T - 1`` hold ``e``.
    Source: L. N. Smith, "Super-convergence", 2018; phase boundaries from PyTorch.

    >>> f = onecycle(total_steps=100)
    >>> round(f(0), 12), f(29), f(99)
    (0.04, 1.0, 4e-06)
    """
    total = check_int("total_steps", total_steps, minimum=1)
    pct = check_real("pct_start", pct_start, low=0.0, high=1.0)
    div = check_real("div_factor", div_factor, low=0.0, low_open=True)
    final_div = check_real("final_div_factor", final_div_factor, low=0.0, low_open=True)
    anneal_fn = _ANNEAL[check_choice("anneal", anneal, ANNEAL_STRATEGIES)]
    start = 1.0 / div
    end = start / final_div
    peak_step = float(pct * total) - 1.0
    last_step = total - 1

    def schedule(step: int) -> float:
        t = min(_check_step(step), last_step)
        if t <= peak_step:
            # peak_step == 0 only when t == 0: the phase has no length, we are at its end.
            return anneal_fn(start, 1.0, t / peak_step if peak_step > 0 else 1.0)
        return anneal_fn(1.0, end, (t - peak_step) / (last_step - peak_step))

    return schedule


def _anneal_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def _anneal_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


_ANNEAL: dict[str, Callable[[float, float, float], float]] = {
    "cos": _anneal_cos,
    "linear": _anneal_linear,
}

__all__: list[str] = [
    "Schedule",
    "constant",
    "step",
    "multistep",
    "linear_warmup",
    "cosine_decay",
    "join",
    "cosine",
    "onecycle",
]
