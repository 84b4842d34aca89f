"""The registry of named schedule kinds and their epoch-based conventions (pure, no torch).

A *kind* is what a user names on the command line or in a spec (``"cosine"``); its
:class:`ScheduleInfo` knows which keyword parameters it accepts, fills in the defaults for a
run of ``epochs x steps_per_epoch`` optimizer steps, and turns the resolved parameters into
a per-step multiplier function from :mod:`lrscout.schedules.functions`.

Conventions (all schedules except ``plateau`` advance once per batch):

========== ========================================================================
kind       parameters (defaults), units
========== ========================================================================
constant   none
step       ``step_size`` in epochs (``max(1, epochs // 3)``), ``gamma`` (0.1)
multistep  ``milestones`` in epochs (50% and 75% of ``epochs``), ``gamma`` (0.1)
cosine     ``warmup_steps`` in steps (5% of all steps; at least 1 when there are
           >= 20 steps, else 0), ``eta_min_ratio`` (0.0)
onecycle   ``pct_start`` (0.3), ``div_factor`` (25), ``final_div_factor`` (1e4),
           ``anneal`` ("cos"); the learning rate given is the peak
plateau    ``ReduceLROnPlateau`` arguments: ``mode`` ("min"), ``factor`` (0.1),
           ``patience`` (10, epochs), ``threshold`` (1e-4), ``threshold_mode``
           ("rel"), ``cooldown`` (0), ``min_lr`` (0.0), ``eps`` (1e-8); stepped
           once per epoch with the validation loss
========== ========================================================================

Epoch counts (``step_size``, ``milestones``) may be fractional; they are converted to the
nearest optimizer step, ``round(epochs * steps_per_epoch)`` (``step_size`` at least 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lrscout.errors import ConfigError, unknown_name

from . import functions as fn
from ._checks import check_choice, check_int, check_real, check_run

Params = dict[str, Any]
Resolver = Callable[[Mapping[str, Any], int, int], Params]
Maker = Callable[[Mapping[str, Any], int, int], fn.Schedule]


@dataclass(frozen=True)
class ScheduleInfo:
    """What lrscout knows about one schedule kind.

    Attributes:
        name: registry key, e.g. ``"cosine"``.
        summary: one line for help texts and reports.
        per_batch: ``True`` if its torch scheduler is stepped after every
            ``optimizer.step()``; ``False`` (``plateau``) if once per epoch with the
            validation loss.
        params: the keyword parameters it accepts.
    """

    name: str
    summary: str
    per_batch: bool
    params: tuple[str, ...]
    _resolve: Resolver = field(repr=False, compare=False)
    _make: Maker = field(repr=False, compare=False)

    def resolve(
        self, params: Mapping[str, Any], *, epochs: int, steps_per_epoch: int
    ) -> Params:
        """Validate ``params`` and return them with every default filled in.

        The result is idempotent: resolving resolved parameters returns them unchanged.
        Raises :class:`ConfigError` for an unknown parameter or a bad value.
        """
        epochs, steps_per_epoch = check_run(epochs, steps_per_epoch)
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            accepted = ", ".join(self.params) or "none"
            raise ConfigError(
                f"schedule {self.name!r} got unknown parameter(s) "
                f"{', '.join(map(repr, unknown))}; accepted: {accepted}"
            )
        return self._resolve(params, epochs, steps_per_epoch)

    def multiplier(
        self, params: Mapping[str, Any], *, epochs: int, steps_per_epoch: int
    ) -> fn.Schedule:
        """The pure ``step -> multiplier`` function for these parameters.

        For ``plateau`` this is the constant schedule: the plan before any reduction.
        """
        resolved = self.resolve(params, epochs=epochs, steps_per_epoch=steps_per_epoch)
        return self._make(resolved, epochs, steps_per_epoch)


def _to_steps(epochs: float, steps_per_epoch: int) -> int:
    return int(round(epochs * steps_per_epoch))


def _tidy(value: float) -> int | float:
    # Keep whole epoch counts as ints so specs and their JSON read naturally.
    return int(value) if float(value).is_integer() else float(value)


# --- constant -------------------------------------------------------------------------


def _resolve_constant(p: Mapping[str, Any], epochs: int, spe: int) -> Params:
    return {}


def _make_constant(p: Mapping[str, Any], epochs: int, spe: int) -> fn.Schedule:
    return fn.constant()


# --- step -----------------------------------------------------------------------------


def _resolve_step(p: Mapping[str, Any], epochs: int, spe: int) -> Params:
    size = p.get("step_size", max(1, epochs // 3))
    return {
        "step_size": _tidy(check_real("step_size (epochs)", size, low=0.0, low_open=True)),
        "gamma": check_real("gamma", p.get("gamma", 0.1), low=0.0, high=1.0, low_open=True),
    }


def _make_step(p: Mapping[str, Any], epochs: int, spe: int) -> fn.Schedule:
    return fn.step(max(1, _to_steps(p["step_size"], spe)), p["gamma"])


# --- multistep ------------------------------------------------------------------------


def _resolve_multistep(p: Mapping[str, Any], epochs: int, spe: int) -> Params:
    milestones = p.get("milestones", (0.5 * epochs, 0.75 * epochs))
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
        raise ConfigError(f"milestones must be a sequence of epochs, got {milestones!r}")
    return {
        "milestones": tuple(
            sorted(_tidy(check_real("milestone (epochs)", m, low=0.0)) for m in milestones)
        ),
        "gamma": check_real("gamma", p.get("gamma", 0.1), low=0.0, high=1.0, low_open=True),
    }


def _make_multistep(p: Mapping[str, Any], epochs: int, spe: int) -> fn.Schedule:
    return fn.multistep([_to_steps(m, spe) for m in p["milestones"]], p["gamma"])


# --- cosine ---------------------------------------------------------------------------


def default_warmup_steps(total_steps: int) -> int:
    """5% of the run, at least one step once the run has 20 steps, none below that."""
    return max(1, int(0.05 * total_steps)) if total_steps >= 20 else 0


def _resolve_cosine(p: Mapping[str, Any], epochs: int, spe: int) -> Params:
    total = epochs * spe
    warm = check_int("warmup_steps", p.get("warmup_steps", default_warmup_steps(total)), minimum=0)
    if warm >= total:
        raise ConfigError(f"warmup_steps must be < total steps {total}, got {warm!r}")
    eta = check_real("eta_min_ratio", p.get("eta_min_ratio", 0.0), low=0.0, high=1.0)
    return {"warmup_steps": warm, "eta_min_ratio": eta}


def _make_cosine(p: Mapping[str, Any], epochs: int, spe: int) -> fn.Schedule:
    return fn.cosine(epochs * spe, p["warmup_steps"], p["eta_min_ratio"])


# --- onecycle -------------------------------------------------------------------------


def _resolve_onecycle(p: Mapping[str, Any], epochs: int, spe: int) -> Params:
    return {
        "pct_start": check_real("pct_start", p.get("pct_start", 0.3), low=0.0, high=1.0),
        "div_factor": check_real("div_factor", p.get("div_factor", 25.0), low=0.0, low_open=True),
        "final_div_factor": check_real(
            "final_div_factor", p.get("final_div_factor", 1e4), low=0.0, low_open=True
        ),
        "anneal": check_choice("anneal", p.get("anneal", "cos"), fn.ANNEAL_STRATEGIES),
    }


def _make_onecycle(p: Mapping[str, Any], epochs: int, spe: int) -> fn.Schedule:
    return fn.onecycle(epochs * spe, **p)


# --- plateau --------------------------------------------------------------------------


def _resolve_plateau(p: Mapping[str, Any], epochs: int, spe: int) -> Params:
    return {
        "mode": check_choice("mode", p.get("mode", "min"), ("min", "max")),
        "factor": check_real(
            "factor", p.get("factor", 0.1), low=0.0, high=1.0, low_open=True, high_open=True
        ),
        "patience": check_int("patience", p.get("patience", 10), minimum=0),
        "threshold": check_real("threshold", p.get("threshold", 1e-4), low=0.0),
        "threshold_mode": check_choice(
            "threshold_mode", p.get("threshold_mode", "rel"), ("rel", "abs")
        ),
        "cooldown": check_int("cooldown", p.get("cooldown", 0), minimum=0),
        "min_lr": check_real("min_lr", p.get("min_lr", 0.0), low=0.0),
        "eps": check_real("eps", p.get("eps", 1e-8), low=0.0),
    }


_INFOS = (
    ScheduleInfo("constant", "the base learning rate throughout", True, (),
                 _resolve_constant, _make_constant),
    ScheduleInfo("step", "decay by gamma every step_size epochs (StepLR)", True,
                 ("step_size", "gamma"), _resolve_step, _make_step),
    ScheduleInfo("multistep", "decay by gamma at each milestone epoch (MultiStepLR)", True,
                 ("milestones", "gamma"), _resolve_multistep, _make_multistep),
    ScheduleInfo("cosine", "linear warmup, then cosine decay to eta_min_ratio", True,
                 ("warmup_steps", "eta_min_ratio"), _resolve_cosine, _make_cosine),
    ScheduleInfo("onecycle", "Smith's 1cycle, as OneCycleLR; lr is the peak", True,
                 ("pct_start", "div_factor", "final_div_factor", "anneal"),
                 _resolve_onecycle, _make_onecycle),
    ScheduleInfo("plateau", "ReduceLROnPlateau on the validation loss, once per epoch", False,
                 ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown",
                  "min_lr", "eps"),
                 _resolve_plateau, _make_constant),
)  # fmt: skip

SCHEDULES: Mapping[str, ScheduleInfo] = MappingProxyType({i.name: i for i in _INFOS})
"""Every schedule kind by name (read-only)."""


def get_schedule(name: str) -> ScheduleInfo:
    """Look up a schedule kind by name (case-insensitive).

    >>> get_schedule("cosine").per_batch
    True

    Raises :class:`ConfigError` listing the choices for an unknown name.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    try:
        return SCHEDULES[key]
    except (KeyError, TypeError):
        raise unknown_name("schedule", str(name), tuple(SCHEDULES)) from None
