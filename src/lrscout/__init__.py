"""lrscout: choose learning rates for PyTorch vision training, and prove the choice.

The public API is the names in ``__all__``; everything else is private and may change.
Subpackages are nouns (``selection``, ``training``, ``finetuning``) so that no public
function shadows one: ``import lrscout.selection.halving as h`` always gives the module.
"""

from ._version import __version__ as __version__
from .custom import task_from
from .engine import find
from .errors import LrscoutError
from .finetuning import finetune, param_groups
from .protocol import Metric, TrainingTask
from .results import FindResult
from .schedules import schedule_for
from .selection import CompareResult, SelectResult, compare, select
from .selection.objectives import Objective, objective
from .task import Task
from .training import Diagnosis, Guard, TrainResult, diagnose, fit, train

__all__ = [
    "CompareResult", "Diagnosis", "FindResult", "Guard", "LrscoutError", "Metric", "Objective", "SelectResult",
    "Task", "TrainResult", "TrainingTask",
    "compare", "diagnose", "find", "finetune", "fit", "objective", "param_groups", "schedule_for", "select",
    "task_from", "train",
]
