"""lrscout: choose learning rates for PyTorch vision training, and prove the choice.

The public API is the names in ``__all__``; everything else is private and may change.
"""

from .engine import find
from .errors import LrscoutError
from .finetune import finetune, param_groups  # the function shadows the subpackage name
from .results import FindResult
from .schedules import schedule_for
from .select import CompareResult, SelectResult, compare, select  # the function shadows the subpackage name
from .task import Task
from .train import Diagnosis, Guard, TrainResult, diagnose, train

__all__ = ["CompareResult", "Diagnosis", "FindResult", "Guard", "LrscoutError", "SelectResult", "Task", "TrainResult", "compare", "diagnose", "find", "finetune", "param_groups", "schedule_for", "select", "train"]
__version__ = "0.1.0"
