"""Training: the loop, the divergence guard, and loss-log diagnosis."""

from .loop import EpochStats, FitResult, evaluate, fit

__all__ = ["EpochStats", "FitResult", "evaluate", "fit"]
