"""The benchmark's cache key follows what the code does, not how its text looks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import quality  # noqa: E402

BASE = '''
"""Module doc."""
from dataclasses import dataclass


@dataclass
class Row:
    """A row."""
    lr: float
    steps: int = 10


def scale(x: float, k: int = 2) -> float:
    """Why it scales."""
    return x * k  # double by default
'''


def test_prose_types_and_layout_do_not_change_the_key() -> None:
    edited = BASE.replace('"""Why it scales."""', '"""Another reason, longer."""') \
        .replace("x: float, k: int = 2) -> float", "x, k=2)") \
        .replace("  # double by default", "") \
        .replace("return x * k", "return (x\n            * k)")
    assert quality.behaviour_dump(edited) == quality.behaviour_dump(BASE)


def test_code_and_dataclass_fields_change_the_key() -> None:
    dump = quality.behaviour_dump(BASE)
    assert quality.behaviour_dump(BASE.replace("x * k", "x * k + 1")) != dump
    assert quality.behaviour_dump(BASE.replace("k: int = 2", "k: int = 3")) != dump
    assert quality.behaviour_dump(BASE.replace("steps: int = 10", "steps: int = 20")) != dump
    assert quality.behaviour_dump(BASE.replace("    lr: float\n", "")) != dump  # a field removed


def test_the_hash_covers_the_training_code() -> None:
    h = quality.code_hash(quality.TRAIN_CODE)
    assert len(h) == 12 and h == quality.code_hash(quality.TRAIN_CODE)
    assert h != quality.code_hash(quality.LRSCOUT_CODE)
