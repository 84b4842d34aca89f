"""Stateful engines that drive a model: the LR range test."""

from .rangetest import find, find_task

__all__ = ["find", "find_task"]
