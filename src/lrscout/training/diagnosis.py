"""Diagnose a training-loss curve: diverged, unstable, stalled, plateaued or healthy.

Pure maths (numpy only). Every measure is scale-free: levels are read off a rolling
median ``s`` of the finite losses and compared with the run's own *progress*
``P = start - best`` (``start``: the median of the first three losses, or the first loss if
that is lower, so that a blow-up in the first steps cannot raise it; ``best``: the lowest
point of ``s``; ``end``: the median of the last ``w`` losses; ``w = max(3, n // 20)``)::

    progress   = P / |start|                      how far the loss came down at best
    retained   = (start - end) / P                1: ended at its best, 0: back at start
    peak       = max(loss) / start                a blow-up above the starting level
    regression = max_i (s_i - min_{j<=i} s_j) / P  the worst climb back, mid-run
    late_drop  = (s at 2/3 of the run - end) / P  progress still made in the last third
    plateau    = fraction of the run spent within PLATEAU_BAND * P of the final level

Rules, first match wins (thresholds are the module constants; they were set on
SimpleCNN trained on digits at LRs from 1e-5 to 20, see ``tests/train``):

==========  =====================================================================  ======
verdict     when                                                                   factor
==========  =====================================================================  ======
diverged    a NaN/inf loss; or the loss ended above where it started; or it lost   0.1
            most of its progress (retained < 0.25); or it blew up (peak >= 1.3)
            and never came down
unstable    it made progress but climbed back a lot mid-run (regression >= 0.25)   0.3
            or ended well above its best (retained < 0.8)
stalled     progress < 0.2: nearly flat (LR x10) or slow (x3)                      3-10
plateaued   progress >= 0.5, flat for most of the run (plateau >= 0.6) and little  1
            left to gain at the end (late_drop < 0.02): keep the peak LR, decay it
healthy     anything else                                                          1
==========  =====================================================================  ======

Example::

    >>> d = diagnose(range(200), [2.3 * 0.98**i + 0.05 for i in range(200)])
    >>> d.verdict
    'healthy'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..curve.smoothing import rolling_median as rolling_median  # the smoother of the measures
from ..errors import CurveError, check_version

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DIAGNOSIS_VERSION = 1
VERDICTS = ("diverged", "unstable", "stalled", "plateaued", "healthy")

MIN_POINTS = 8
"""Fewer finite losses than this cannot be told apart from noise."""

BLOWUP_PEAK = 1.3
"""A loss this many times the starting level (with no progress kept) is a blow-up."""

LOST_RETAINED = 0.25
"""Keeping less than this fraction of the best progress at the end: diverged."""

UNSTABLE_REGRESSION = 0.25
"""A mid-run climb back of this fraction of the progress: unstable."""

UNSTABLE_RETAINED = 0.8
"""Ending with less than this fraction of the best progress kept: unstable."""

STALLED_PROGRESS = 0.2
"""Less progress than this fraction of the starting loss: stalled."""

FLAT_PROGRESS = 0.05
"""Less than this is nearly flat (LR x10 rather than x3)."""

PLATEAU_PROGRESS = 0.5
PLATEAU_BAND = 0.1
PLATEAU_FRACTION = 0.7
PLATEAU_LATE_DROP = 0.02


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one loss curve, the numbers that led to it, and what to do.

    ``lr_factor`` multiplies the LR for the next run (0.1: ten times lower). ``evidence``
    holds the measures of the module docstring plus the levels they came from.
    """

    verdict: str
    lr_factor: float
    message: str
    evidence: dict[str, Any]
    steps: tuple[float, ...] = field(default=(), repr=False)
    losses: tuple[float, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": DIAGNOSIS_VERSION,
            "verdict": self.verdict,
            "lr_factor": self.lr_factor,
            "message": self.message,
            "evidence": {k: _json_value(v) for k, v in self.evidence.items()},
            "curve": {"step": list(self.steps), "loss": [_json_value(v) for v in self.losses]},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Diagnosis:
        check_version(data, "diagnosis", DIAGNOSIS_VERSION)
        curve = data.get("curve", {})
        return cls(
            verdict=str(data["verdict"]),
            lr_factor=float(data["lr_factor"]),
            message=str(data["message"]),
            evidence=dict(data["evidence"]),
            steps=tuple(float(v) for v in curve.get("step", ())),
            losses=tuple(math.nan if v is None else float(v) for v in curve.get("loss", ())),
        )

    def plot(self, ax: Axes | None = None) -> Axes:
        """The curve, its rolling median and the verdict."""
        from ..report.training import plot_diagnosis

        return plot_diagnosis(self, ax)


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def curve_measures(losses: np.ndarray) -> dict[str, float]:
    """The scale-free measures of the module docstring for finite ``losses`` (n >= MIN_POINTS)."""
    x = np.asarray(losses, dtype=np.float64)
    n = x.size
    w = max(3, n // 20)
    s = rolling_median(x, w)
    # the level the model began at: a blow-up in the first steps must not raise it
    start = min(float(x[0]), float(np.median(x[:3])))
    end = float(np.median(x[-w:]))
    best = float(np.min(s))
    scale = abs(start) if start != 0 else 1.0
    fall = start - best
    denom = fall if fall > 1e-12 * scale else math.nan
    running_min = np.minimum.accumulate(s)
    third = s[min(n - 1, (2 * n) // 3)]
    within = s <= end + PLATEAU_BAND * fall
    # the plateau runs from the first point after which the curve stays near its final level
    outside = np.flatnonzero(~within)
    plateau_start = int(outside[-1]) + 1 if outside.size else 0
    return {
        "points": float(n),
        "window": float(w),
        "start": start,
        "end": end,
        "best": best,
        "progress": fall / scale,
        "retained": (start - end) / denom,
        "peak": float(np.max(x)) / start if start > 0 else math.nan,
        "regression": float(np.max(s - running_min)) / denom,
        "late_drop": float(third - end) / denom,
        "plateau": (n - plateau_start) / n,
        "plateau_start_index": float(plateau_start),
    }


def diagnose(steps: Sequence[float] | np.ndarray, losses: Sequence[float] | np.ndarray) -> Diagnosis:
    """Classify a training-loss curve (see the module docstring for the rules).

    ``steps`` and ``losses`` have one entry per logged point; NaN/inf losses are allowed
    (they make the verdict ``diverged``). Raises :class:`CurveError` when fewer than
    ``MIN_POINTS`` finite losses remain or the lengths differ.
    """
    st = np.asarray(steps, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if st.shape != y.shape or y.ndim != 1:
        raise CurveError(f"steps and losses must be 1-D of the same length, got {st.shape} and {y.shape}")
    finite = np.isfinite(y)
    if y.size == 0:
        raise CurveError("the loss log is empty")
    curve = (tuple(float(v) for v in st), tuple(float(v) for v in y))
    bad = np.flatnonzero(~finite)
    enough = int(finite.sum()) >= MIN_POINTS
    m = curve_measures(y[finite]) if enough else {}
    evidence: dict[str, Any] = {k: (round(v, 4) if math.isfinite(v) else v)
                                for k, v in m.items() if k != "plateau_start_index"}
    if bad.size:
        evidence["nonfinite"] = int(bad.size)
        evidence["first_nonfinite_step"] = float(st[bad[0]])
        return Diagnosis("diverged", 0.1, f"the loss became {y[bad[0]]} at step {st[bad[0]]:g}: the LR is far too "
                         "high; divide it by 10 (or more)", evidence, *curve)
    if not enough:
        raise CurveError(f"need at least {MIN_POINTS} loss values to diagnose, got {y.size}")
    evidence["plateau_start_step"] = float(st[int(m["plateau_start_index"])]) if m["plateau"] > 0 else None

    progress, retained, peak = m["progress"], m["retained"], m["peak"]
    if m["end"] > m["start"] * 1.05 and not (progress >= STALLED_PROGRESS and retained >= LOST_RETAINED):
        return Diagnosis("diverged", 0.1, f"the loss ended at {m['end']:.3g}, above where it started "
                         f"({m['start']:.3g}): the LR is far too high; divide it by 10", evidence, *curve)
    if progress >= FLAT_PROGRESS and retained < LOST_RETAINED:
        return Diagnosis("diverged", 0.1, f"the loss fell to {m['best']:.3g} then climbed back to {m['end']:.3g}, "
                         f"keeping {max(retained, 0):.0%} of its progress: the LR is far too high (divide it by 10) "
                         "or training blew up late", evidence, *curve)
    if peak >= BLOWUP_PEAK and progress < STALLED_PROGRESS:
        return Diagnosis("diverged", 0.1, f"the loss jumped to {peak:.3g}x its starting level and never came down "
                         f"(progress {progress:.0%}): the LR is far too high; divide it by 10", evidence, *curve)
    if progress >= STALLED_PROGRESS and (m["regression"] >= UNSTABLE_REGRESSION or retained < UNSTABLE_RETAINED):
        return Diagnosis("unstable", 0.3, f"the loss made progress ({progress:.0%}) but climbed back "
                         f"{m['regression']:.0%} of it mid-run and ended keeping {retained:.0%}: the LR is too high; "
                         "use about a third of it", evidence, *curve)
    if progress < STALLED_PROGRESS:
        factor = 10.0 if progress < FLAT_PROGRESS else 3.0
        shape = "nearly flat" if factor == 10.0 else "falling slowly"
        return Diagnosis("stalled", factor, f"the loss is {shape} ({progress:.1%} below its start): the LR is too "
                         f"low; multiply it by {factor:g}", evidence, *curve)
    if progress >= PLATEAU_PROGRESS and m["plateau"] >= PLATEAU_FRACTION and m["late_drop"] < PLATEAU_LATE_DROP:
        at = evidence["plateau_start_step"]
        return Diagnosis("plateaued", 1.0, f"the loss stopped improving at step {at:g} and stayed flat for "
                         f"{m['plateau']:.0%} of the run: keep the peak LR but decay it (cosine, onecycle, "
                         "or /10 at the plateau), or stop earlier", evidence, *curve)
    return Diagnosis("healthy", 1.0, f"the loss fell steadily ({progress:.0%} below its start) and was still "
                     "improving at the end: the LR looks right", evidence, *curve)
