"""Successive-halving bookkeeping (pure): which trials run at which rung, who advances.

A :class:`Plan` is a list of rungs. Rung 0 trains every candidate LR for a short length;
each later rung trains the best of the previous rung for longer; the last rung is the
user's full protocol, so the chosen LR's score is a real final validation accuracy.
Lengths are counted in a plan's ``unit``: optimizer ``"steps"`` for ``select`` (so a
protocol of one epoch, or of a fraction of one, has short trials too), ``"epochs"`` for
fine-tuning. Costs are in training-run equivalents: one full run of the protocol costs 1.

Two ways from one rung to the next, and how long rung 0 is in each:

* restarted: the short run is the full schedule compressed into ``L_0 = L/3`` (a decay
  must happen inside the short run for it to predict the full one), and a promoted
  trial is a fresh run: rung ``i`` costs ``L_i / L`` per trial. A third suffices: a run
  at a third of the length, its schedule compressed to it, ranks LRs almost as the full
  run does.
* ``continued``: the short run *is* the start of the full run (a constant LR, a plateau
  schedule), so a promoted trial resumes from its checkpoint, and rung ``i`` costs
  ``(L_i - L_{i-1}) / L`` per trial. Here ``L_0 = L/2``: without a decay at its end, a
  short constant-LR run is biased against the large LRs that win later (they are still
  noisy after a third of the run). Measured on digits (10 epochs, SGD and Adam, five
  seeds, every healthy LR of a 25-point grid), the rank correlation of the validation
  accuracy after ``e`` epochs with the final one is 0.48 at e=3, 0.60 at e=4, 0.67 at
  e=5, and picking the better of the top two ranked LRs misses the grid's best final
  accuracy by 0.98 points on average at e=3 against 0.18 at e=5. Continuing makes the
  longer rung 0 free: ``n/2 + k/2`` runs either way split.

The range test is part of the budget: :func:`plan_range_test` sizes it before anything
runs (fewer steps for a short protocol, and a smaller batch when even the fewest steps
that still show an onset would cost too much), and :func:`check_budget` refuses a budget
that cannot buy the range test, two short trials and one finalist, naming the budget
that would, before any work is done.

Ranking rule (:func:`rank_key`): healthy trials before collapsed ones (NaN, chance
accuracy), then higher validation accuracy, then lower validation loss, then the lower LR
(on an exact tie the safer LR wins).

Example::

    >>> plan = plan_halving(6, 200, 4.0, overhead=0.4, continued=True)
    >>> [(r.length, r.size) for r in plan.rungs], round(plan.cost_runs, 2)
    ([(100, 5), (200, 2)], 3.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..protocol import chance_note

#: Rung 0 trains for this fraction of the protocol's length (schedule compressed) ...
SHORT_FRACTION = 1.0 / 3.0
#: ... or this fraction when it is the start of the real run (see the module docstring).
CONTINUED_FRACTION = 1.0 / 2.0
#: Of each rung, at most 1/ETA of the trials advance ("the best half goes on").
ETA = 2.0
#: Units a plan can count lengths in.
UNITS = ("steps", "epochs")

#: The range test's usual length (lrscout.find's default) ...
FIND_STEPS = 100
#: ... and the fewest steps it may take: measured on digits (batch 128, SGD and Adam, two
#: seeds), sweeps of 15-30 steps place the ladder within a factor 2-3 of the 100-step
#: sweep, while 10-step sweeps gave an LR 2.5 decades off on one of four.
MIN_FIND_STEPS = 20
#: The range test may take at most this share of the budget; the rest buys trials.
FIND_SHARE = 0.2
#: A range test on a smaller batch never goes below this batch size.
MIN_FIND_BATCH = 8
#: A sweep of at most this many steps is "short": it starts at SHORT_FIND_START rather
#: than 1e-7 (its steps go to the LRs that matter), and the candidate ladder hangs from the
#: onset itself rather than a step above it. Measured on digits (1 epoch of batch 128, SGD
#: and Adam, two seeds): 20-step sweeps from 1e-7 put the ladder's top 0.3-0.8 decades
#: above the 100-step sweep's (each step multiplies the LR by 2.6, so divergence shows a
#: step late), and a selection spent its budget on collapsing candidates; from 1e-5 with
#: the top at the onset, the tops land within 0.25 decades of the 100-step ladder's.
SHORT_FIND_STEPS = 50
SHORT_FIND_START = 1e-5


@dataclass(frozen=True)
class Rung:
    """A rung: its trials have trained ``length`` units when they report; ``size`` of them."""

    length: int
    size: int


@dataclass(frozen=True)
class Plan:
    """Rungs of a successive-halving run over a protocol of ``length`` ``unit``s."""

    rungs: tuple[Rung, ...]
    length: int
    continued: bool
    unit: str = "steps"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if not self.rungs:
            raise ConfigError("a plan needs at least one rung")
        if self.rungs[-1].length != self.length:
            raise ConfigError(f"the last rung must train the full {self.length} {self.unit}, "
                              f"got {self.rungs[-1].length}")
        for a, b in zip(self.rungs, self.rungs[1:]):
            if not (a.length < b.length and a.size >= b.size >= 1):
                raise ConfigError(f"rungs must grow in length and shrink in size, got {self.rungs}")

    def start(self, rung: int) -> int:
        """Where a trial of ``rung`` starts (its parent's end when continued)."""
        return self.rungs[rung - 1].length if (self.continued and rung > 0) else 0

    def trial_length(self, rung: int) -> int:
        """Units one trial of ``rung`` trains."""
        return self.rungs[rung].length - self.start(rung)

    @property
    def cost_runs(self) -> float:
        """Planned cost of all trials in full-run equivalents (range test not included)."""
        return sum(r.size * self.trial_length(i) for i, r in enumerate(self.rungs)) / self.length

    def to_json(self) -> dict[str, Any]:
        return {
            "rungs": [{"length": r.length, "size": r.size} for r in self.rungs],
            "length": self.length,
            "unit": self.unit,
            "continued": self.continued,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if "length" not in data:  # written before plans counted steps: whole epochs
            return cls(tuple(Rung(int(r["epochs"]), int(r["size"])) for r in data["rungs"]),
                       int(data["epochs"]), bool(data["continued"]), "epochs")
        return cls(tuple(Rung(int(r["length"]), int(r["size"])) for r in data["rungs"]),
                   int(data["length"]), bool(data["continued"]), str(data.get("unit", "steps")))


def short_length(length: int, fraction: float = SHORT_FRACTION, quantum: int = 1) -> int:
    """Length of rung 0: ``length * fraction`` rounded down to a multiple of ``quantum``,
    at least one quantum and at least one quantum short of ``length`` (``quantum`` falls
    back to 1 when ``length`` is not a multiple of at least two quanta; ``length`` must be
    at least 2). Rounded down, a short trial never costs more than its fraction of a run,
    so a plan never loses a candidate to rounding.

    >>> short_length(10), short_length(10, 0.5), short_length(200, 0.5, quantum=20), short_length(30, 0.5, 20)
    (3, 5, 100, 15)
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction!r}")
    if length < 2:
        raise ConfigError(f"a protocol of {length} unit(s) has nothing to shorten")
    if quantum < 1:
        raise ConfigError(f"quantum must be >= 1, got {quantum}")
    q = quantum if (length >= 2 * quantum and length % quantum == 0) else 1
    units = length // q
    return q * min(units - 1, max(1, int(math.floor(units * fraction + 1e-9))))


@dataclass(frozen=True)
class RangeTestPlan:
    """How long the range test of a selection runs: ``steps`` steps of ``batch_size``
    images from ``start_lr`` (``None``: the range test's default), costing ``cost_runs``
    training runs of the protocol."""

    steps: int
    batch_size: int
    cost_runs: float
    start_lr: float | None = None

    @property
    def short(self) -> bool:
        """A short sweep (see :data:`SHORT_FIND_STEPS`)."""
        return self.steps <= SHORT_FIND_STEPS


def plan_range_test(total_steps: int, batch_size: int, budget: float, *, share: float = FIND_SHARE,
                    max_steps: int = FIND_STEPS, min_steps: int = MIN_FIND_STEPS,
                    min_batch: int = MIN_FIND_BATCH) -> RangeTestPlan:
    """The range test a ``budget`` affords on a protocol of ``total_steps`` steps of ``batch_size``.

    It may cost ``share * budget`` runs, i.e. ``A = share * budget * total_steps`` steps
    of the protocol's batch:

        A >= min_steps:  min(max_steps, floor(A)) steps of the protocol's batch
        else:            min_steps steps of a smaller batch, floor(batch * A / min_steps),
                         not below min_batch (then it costs more than its share)

    so a long protocol pays the usual ``max_steps`` sweep, a short one a shorter sweep, and
    a protocol of a few steps a sweep over fewer images per step (a sweep of fewer than
    ``min_steps`` points does not find the onset reliably). The batch is never raised.

    A sweep of at most :data:`SHORT_FIND_STEPS` steps starts at :data:`SHORT_FIND_START`.

    >>> plan_range_test(200, 64, 2.5)  # digits, 10 epochs of batch 64: the usual sweep
    RangeTestPlan(steps=100, batch_size=64, cost_runs=0.5, start_lr=None)
    >>> plan_range_test(10, 128, 2.5)  # digits, one epoch of batch 128
    RangeTestPlan(steps=20, batch_size=32, cost_runs=0.5, start_lr=1e-05)
    """
    if total_steps < 1 or batch_size < 1:
        raise ConfigError(f"need at least one step of at least one image, got {total_steps} steps of {batch_size}")
    if not (math.isfinite(budget) and budget > 0):
        raise ConfigError(f"budget must be a positive number of training runs, got {budget!r}", argument="budget")
    if not (0 < share < 1 and 1 <= min_steps <= max_steps and min_batch >= 1):
        raise ConfigError(f"bad range-test sizing: share {share!r}, steps {min_steps}..{max_steps}, "
                          f"min batch {min_batch}")
    afford = share * budget * total_steps
    if afford >= min_steps:
        steps, batch = min(max_steps, int(math.floor(afford + 1e-9))), batch_size
    else:
        steps = min_steps
        batch = min(batch_size, max(min_batch, int(math.floor(batch_size * afford / min_steps + 1e-9))))
    return RangeTestPlan(steps, batch, steps * batch / (total_steps * batch_size),
                         SHORT_FIND_START if steps <= SHORT_FIND_STEPS else None)


def _min_trials_cost(total_steps: int, continued: bool, min_candidates: int, quantum: int) -> float:
    """Cost in runs of ``min_candidates`` short trials and one finalist (one full run when
    the protocol is a single step)."""
    if total_steps == 1:
        return float(min_candidates)
    fraction = CONTINUED_FRACTION if continued else SHORT_FRACTION
    s = short_length(total_steps, fraction, quantum) / total_steps
    return min_candidates * s + ((1 - s) if continued else 1.0)


def check_budget(total_steps: int, budget: float, overhead: float, *, continued: bool,
                 min_candidates: int = 2, quantum: int = 1, batch_size: int | None = None) -> None:
    """Raise :class:`ConfigError` before any work when ``budget`` cannot buy the range
    test (``overhead`` runs), ``min_candidates`` short trials and one finalist.

    The message names the smallest budget (in tenths of a run) that would: with
    ``batch_size`` given the range test is the one :func:`plan_range_test` sizes for that
    budget (it grows with the budget), else it stays at ``overhead``.

    >>> check_budget(10, 1.0, 0.1875, continued=True, batch_size=128)
    Traceback (most recent call last):
    ...
    lrscout.errors.ConfigError: budget 1 runs is too small: the range test (0.19 runs), 2 short trials and one full-length finalist need 1.69; use budget >= 1.9
    """
    trials = _min_trials_cost(total_steps, continued, min_candidates, quantum)
    need = overhead + trials
    if budget + 1e-9 >= need:
        return

    def fits(b: float) -> bool:
        cost = plan_range_test(total_steps, batch_size, b).cost_runs if batch_size is not None else overhead
        return cost + trials <= b + 1e-9

    suggest = math.ceil(need * 10 - 1e-9) / 10
    while not fits(suggest):
        suggest = round(suggest + 0.1, 1)
    raise ConfigError(f"budget {budget:g} runs is too small: the range test ({overhead:.2f} runs), "
                      f"{min_candidates} short trials and one full-length finalist need {need:.2f}; "
                      f"use budget >= {suggest:g}", argument="budget")


def plan_halving(
    max_candidates: int,
    length: int,
    budget: float,
    *,
    overhead: float = 0.0,
    continued: bool = True,
    fraction: float | None = None,
    eta: float = ETA,
    min_candidates: int = 2,
    unit: str = "steps",
    quantum: int = 1,
) -> Plan:
    """The two-rung plan that fits ``budget`` (full-run equivalents, ``overhead`` included).

    With ``L0 = short_length(length, fraction, quantum)`` (``fraction``: 1/2 continued,
    1/3 restarted, unless given; ``quantum``: whole epochs for a schedule that acts per
    epoch), ``s = L0 / L`` the cost of a short trial, ``f`` the
    cost of taking one trial on to the full protocol (``1 - s`` continued, else 1) and
    ``B = budget - overhead``:

        k = the most finalists with  ceil(eta k) s + k f <= B   (k >= 2; else k = 1)
        n = min(max_candidates, floor((B - k f) / s))   short trials in rung 0

    so the best ``1/eta`` of rung 0 go on ("the best half"), and finalists come first:
    the final validation accuracy of one run varies by about a point between neighbouring
    LRs (on digits), so the best of two full runs is worth more than a sixth candidate.
    ``k`` never exceeds ``ceil(n / eta)``. A protocol of one unit has nothing to shorten:
    one rung of full runs. Raises :class:`ConfigError` (naming the budget that would do)
    when not even ``min_candidates`` short trials and one finalist fit.
    """
    if length < 1:
        raise ConfigError(f"a protocol needs at least one {unit[:-1]}, got {length}")
    if not (math.isfinite(budget) and budget > 0):
        raise ConfigError(f"budget must be a positive number of training runs, got {budget!r}", argument="budget")
    if max_candidates < 1 or min_candidates < 1:
        raise ConfigError(f"need at least one candidate, got max {max_candidates}, min {min_candidates}")
    if fraction is None:
        fraction = CONTINUED_FRACTION if continued else SHORT_FRACTION
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction!r}")
    if eta <= 1:
        raise ConfigError(f"eta must be > 1, got {eta!r}")
    avail = budget - overhead
    need_min = min(min_candidates, max_candidates)
    eps = 1e-9
    if length == 1:
        n = min(max_candidates, int(math.floor(avail + eps)))
        if n < need_min:
            raise ConfigError(f"budget {budget:g} runs is too small: {need_min} one-{unit[:-1]} trials and the range "
                              f"test need {overhead + need_min:.2f}; use budget >= "
                              f"{math.ceil((overhead + need_min) * 10 - eps) / 10:g}", argument="budget")
        return Plan((Rung(1, n),), 1, continued, unit)
    l0 = short_length(length, fraction, quantum)
    s = l0 / length
    f = (length - l0) / length if continued else 1.0
    if need_min * s + f > avail + eps:
        need = overhead + need_min * s + f
        raise ConfigError(f"budget {budget:g} runs is too small: the range test, {need_min} short trials and one "
                          f"full-length finalist need {need:.2f}; use budget >= {math.ceil(need * 10 - eps) / 10:g}",
                          argument="budget")
    k = 1
    while (k + 1) <= math.ceil(max_candidates / eta - eps) and \
            math.ceil(eta * (k + 1) - eps) * s + (k + 1) * f <= avail + eps:
        k += 1
    n = min(max_candidates, int(math.floor((avail - k * f) / s + eps)))
    return Plan((Rung(l0, n), Rung(length, k)), length, continued, unit)


@dataclass(frozen=True)
class Outcome:
    """What ranking needs from a finished trial: its LR, accuracy (0..1), loss, health."""

    lr: float
    score: float
    loss: float | None = None  # None: not finite
    collapsed: bool = False


def collapse_note(val_acc: float, val_loss: float | None, *, majority: float, n_val: int, num_classes: int,
                  stopped: str | None = None, prior: float | None = None) -> str | None:
    """Why a finished run counts as collapsed (diverged, or learned nothing), or ``None``.

    The one rule of lrscout, for ``select``'s and ``finetune``'s trials and the benchmarks:
    collapsed when training stopped early (``stopped``: a NaN loss, the guard gave up),
    when the validation loss is not finite (``None``), or when the accuracy is within
    chance of always answering the most frequent class
    (:func:`~lrscout.protocol.chance_level`: two binomial standard deviations and half an
    image above it) *and* the loss is no better than guessing the class frequencies
    (``val_loss >= prior``, their entropy, :func:`~lrscout.protocol.prior_loss`; ``ln
    num_classes`` when not given). A slow start that has begun to learn (loss below that)
    is not collapsed.

    >>> collapse_note(0.1, 2.31, majority=0.1, n_val=100, num_classes=10)
    'chance accuracy (0.100) and a loss no better than a uniform guess (2.310)'
    >>> collapse_note(0.13, 52902.0, majority=0.12, n_val=450, num_classes=10)  # diverged, a few images off
    'chance accuracy (0.130) and a loss no better than a uniform guess (52902.000)'
    >>> collapse_note(0.1, 2.2, majority=0.1, n_val=100, num_classes=10) is None
    True
    """
    if stopped is not None:
        return stopped
    if val_loss is None or not math.isfinite(val_loss):
        return "validation loss not finite"
    return chance_note(val_acc, val_loss, majority, n_val, num_classes, prior)


def rank_key(o: Outcome) -> tuple[bool, float, float, float]:
    """Sort key, best first: healthy, higher accuracy, lower loss, lower LR."""
    score = o.score if math.isfinite(o.score) else -math.inf
    loss = o.loss if (o.loss is not None and math.isfinite(o.loss)) else math.inf
    return (o.collapsed, -score, loss, o.lr)


def rank(outcomes: Sequence[Outcome]) -> list[int]:
    """Indices of ``outcomes``, best first (see :func:`rank_key`)."""
    return sorted(range(len(outcomes)), key=lambda i: rank_key(outcomes[i]))


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, smallest first, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for m in range(i, j + 1):
            ranks[order[m]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def rank_sum(outcomes: Sequence[Outcome]) -> list[int]:
    """Indices, best first, by the sum of each trial's accuracy rank and loss rank.

    For small validation sets: accuracy moves in steps of one image (0.7 points on 150
    images), loss is continuous but rewards confidence; a trial must do well on both.
    Ties (the two disagree) go to the lower loss, then to :func:`rank_key`.
    """
    keys = [rank_key(o) for o in outcomes]
    by_acc = _ranks([k[1] for k in keys])  # -accuracy: rank 1 is the most accurate
    by_loss = _ranks([k[2] for k in keys])
    return sorted(range(len(outcomes)), key=lambda i: (keys[i][0], by_acc[i] + by_loss[i], keys[i][2], keys[i]))


def promote(outcomes: Sequence[Outcome], k: int, by: str = "accuracy") -> list[int]:
    """The best ``k`` healthy trials, best first; collapsed trials never advance.

    ``by="accuracy"``: :func:`rank`; ``by="rank_sum"``: :func:`rank_sum` over the healthy
    trials.
    """
    if k < 0:
        raise ConfigError(f"cannot promote {k} trials")
    if by == "accuracy":
        return [i for i in rank(outcomes) if not outcomes[i].collapsed][:k]
    if by == "rank_sum":
        healthy = [i for i, o in enumerate(outcomes) if not o.collapsed]
        return [healthy[j] for j in rank_sum([outcomes[i] for i in healthy])][:k]
    raise ConfigError(f"unknown ranking {by!r}: use 'accuracy' or 'rank_sum'")


def horizon_finalist(candidates: Sequence[int], collapsed: Sequence[bool], leader: int) -> int:
    """Position (in ``candidates``) of the single finalist of a continued plan: the trial one
    ladder step below the short-run ``leader`` (ladder indices rise with the LR) when it
    ran and is healthy, else the leader itself.

    Why: a short trial of a continued plan is the first half of the run at a constant LR,
    and the LR that leads after half the steps is about twice the one that leads after all
    of them (the shorter the horizon, the larger the LR that gets furthest; measured on the
    benchmark's short development protocols, the full-length optimum sat one ladder step,
    a factor 10**(1/3), below the half-length leader). With one finalist, no full-length
    comparison can correct that, so the step is taken by rule.

    >>> horizon_finalist([2, 3, 4], [False, False, False], leader=1)  # candidate 3 led: candidate 2
    0
    >>> horizon_finalist([2, 3, 4], [False, False, False], leader=0)  # the lowest led: itself
    0
    """
    lead = candidates[leader]
    below = [i for i, c in enumerate(candidates) if c == lead - 1 and not collapsed[i]]
    return below[0] if below else leader


def verified_plan(plan: Plan, budget: float, overhead: float, max_candidates: int) -> Plan | None:
    """The budget of a continued two-rung plan spent on verified finalists only: ``k``
    candidates train the first half of the run and all go on to the end, ``k`` the most
    full runs ``budget`` buys after ``overhead`` (at most ``max_candidates``). ``None``
    when the plan is not continued or not even two fit.

    Why: after a short range test the default budget buys three half-length trials and
    one finalist, and the finalist has to be guessed from the half-length leader (see
    :func:`horizon_finalist`); a larger budget promotes the half-length leaders, which are
    biased towards large LRs. Two full-length runs cost what three half runs and one
    finalist cost (2 runs), and every candidate is compared where it matters, at the end
    of the protocol. Measured on the 9 short development protocols (3 seeds,
    ``benchmarks/results/ablation-short.md``): +0.91 points from the grid oracle for the
    horizon guess, -0.09 (worst task +0.58) for the better of two by full-length
    validation, -0.34 for the best of three.

    >>> plan = Plan((Rung(5, 3), Rung(10, 1)), 10, continued=True)
    >>> pair = verified_plan(plan, 2.5, 0.45, 6)
    >>> [(r.length, r.size) for r in pair.rungs], pair.cost_runs
    ([(5, 2), (10, 2)], 2.0)
    >>> [r.size for r in verified_plan(plan, 3.5, 0.45, 6).rungs]
    [3, 3]
    >>> verified_plan(plan, 2.4, 0.45, 6) is None  # two full runs do not fit
    True
    """
    if not (plan.continued and len(plan.rungs) == 2):
        return None
    k = min(max_candidates, int(math.floor(budget - overhead + 1e-9)))
    if k < 2:
        return None
    return Plan((Rung(plan.rungs[0].length, k), Rung(plan.length, k)), plan.length, True, plan.unit)


def is_verified(plan: Plan) -> bool:
    """Whether ``plan`` is a :func:`verified_plan`: continued, every trial a finalist."""
    return plan.continued and len(plan.rungs) == 2 and plan.rungs[0].size == plan.rungs[1].size >= 2


#: The robust choice reads the evaluations in the last quarter of the protocol.
LATE_FRACTION = 0.25


@dataclass(frozen=True)
class Trace:
    """A finished full-length trial as the robust choice sees it: its LR, health and every
    validation ``(step, accuracy, loss)`` it recorded (``loss`` None when not finite)."""

    lr: float
    evals: tuple[tuple[int, float, float | None], ...]
    total_steps: int
    collapsed: bool = False

    def late(self, fraction: float = LATE_FRACTION) -> tuple[tuple[int, float, float | None], ...]:
        """The evaluations in the last ``fraction`` of the protocol (at least the last one)."""
        cut = self.total_steps * (1 - fraction)
        late = tuple(e for e in self.evals if e[0] >= cut)
        return late or self.evals[-1:]

    def late_acc(self, fraction: float = LATE_FRACTION) -> float:
        """Mean validation accuracy over :meth:`late` (-inf with no evaluation)."""
        accs = [a for _, a, _ in self.late(fraction) if math.isfinite(a)]
        return sum(accs) / len(accs) if accs else -math.inf

    def late_loss(self, fraction: float = LATE_FRACTION) -> float:
        """Mean validation loss over :meth:`late` (inf when none is finite)."""
        losses = [x for _, _, x in self.late(fraction) if x is not None and math.isfinite(x)]
        return sum(losses) / len(losses) if losses else math.inf


def noise_band(accuracy: float, n_val: int) -> float:
    """One standard error of an accuracy measured on ``n_val`` images (clipped to 0..1):
    gaps smaller than this are what one evaluation's luck can make.

    >>> round(noise_band(0.95, 225), 4)
    0.0145
    """
    p = min(max(accuracy, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n_val)


def robust_rank(traces: Sequence[Trace], n_val: int | None, *, fraction: float = LATE_FRACTION) -> list[int]:
    """Indices of ``traces``, best first, so that one lucky evaluation does not decide.

    1. Each trial is scored by its mean validation accuracy over the last ``fraction`` of
       the protocol (every evaluation there, at least the final one), and by its mean
       validation loss over the same evaluations.
    2. Accuracies within one standard error of the best, ``sqrt(p (1 - p) / n_val)`` at
       the best score ``p`` (half a point at p = 0.95 on 225 images; one image is 0.44),
       are a tie: among them the lower late loss wins, since loss, unlike accuracy, does
       not move in steps of one image.
    3. Then the rest by :func:`rank_key` on the late scores; collapsed trials last.

    ``n_val`` None (the validation size is unknown) makes the band empty: plain late
    accuracy, then loss.

    >>> a = Trace(0.1, ((80, 0.950, 0.15), (100, 0.950, 0.15)), 100)
    >>> b = Trace(0.2, ((80, 0.930, 0.22), (100, 0.956, 0.21)), 100)  # one lucky final evaluation
    >>> rank([Outcome(t.lr, t.evals[-1][1], t.evals[-1][2]) for t in (a, b)])  # the final iterate alone
    [1, 0]
    >>> robust_rank([a, b], n_val=225), robust_rank([a, b], n_val=None)
    ([0, 1], [0, 1])
    """
    if not traces:
        return []
    if n_val is not None and n_val < 1:
        raise ConfigError(f"n_val must be >= 1, got {n_val}")
    outcomes = [Outcome(t.lr, t.late_acc(fraction), t.late_loss(fraction), t.collapsed) for t in traces]
    order = rank(outcomes)
    lead = outcomes[order[0]]
    if lead.collapsed or n_val is None or not math.isfinite(lead.score):
        return order
    band = noise_band(lead.score, n_val)
    close = [i for i in order if not outcomes[i].collapsed and outcomes[i].score >= lead.score - band - 1e-12]
    close.sort(key=lambda i: (outcomes[i].loss if outcomes[i].loss is not None else math.inf, rank_key(outcomes[i])))
    return close + [i for i in order if i not in close]
