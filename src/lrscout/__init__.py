"""lrscout: choose learning rates for PyTorch vision training, and prove the choice.

The public API is the names in ``__all__``; everything else is private and may change.
"""

from .engine import find
from .errors import LrscoutError
from .finetune import param_groups
from .results import FindResult
from .task import Task

__all__ = ["FindResult", "LrscoutError", "Task", "find", "param_groups"]
__version__ = "0.1.0"
