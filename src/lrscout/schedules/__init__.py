"""Learning-rate schedules: pure ``step -> multiplier`` functions, a registry of named
kinds, a torch adapter, and :class:`ScheduleSpec` to carry a chosen learning rate into
training.

Layers, imports flowing one way::

    functions   pure factories (constant, step, multistep, linear_warmup, cosine_decay,
                join, cosine, onecycle); no torch
    registry    SCHEDULES / get_schedule: kinds, epoch conventions, defaults; no torch
    torch_adapter  build_scheduler: LambdaLR per batch, ReduceLROnPlateau per epoch
    spec        ScheduleSpec, schedule_for

Example::

    spec = schedule_for(find_result, "onecycle", epochs=10, steps_per_epoch=len(loader))
    sched = spec.build(optimizer)   # step it after every optimizer.step()
"""

from .functions import (
    Schedule,
    constant,
    cosine,
    cosine_decay,
    join,
    linear_warmup,
    multistep,
    onecycle,
    step,
)
from .registry import SCHEDULES, ScheduleInfo, get_schedule
from .spec import ScheduleSpec, schedule_for
from .torch_adapter import build_scheduler

__all__ = [
    "SCHEDULES",
    "Schedule",
    "ScheduleInfo",
    "ScheduleSpec",
    "build_scheduler",
    "constant",
    "cosine",
    "cosine_decay",
    "get_schedule",
    "join",
    "linear_warmup",
    "multistep",
    "onecycle",
    "schedule_for",
    "step",
]
