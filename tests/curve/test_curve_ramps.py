"""lr_ramp: exact LR sequences and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from lrscout.curve import lr_ramp
from lrscout.errors import ConfigError


def test_exp_ramp_closed_form() -> None:
    lrs = lr_ramp(1e-3, 1.0, 5)
    np.testing.assert_allclose(lrs, [1e-3, 10**-2.25, 10**-1.5, 10**-0.75, 1.0], rtol=1e-12)
    assert np.all(np.diff(np.log10(lrs)) == pytest.approx(0.75))


def test_linear_ramp_closed_form() -> None:
    lrs = lr_ramp(0.1, 0.5, 5, mode="linear")
    np.testing.assert_allclose(lrs, [0.1, 0.2, 0.3, 0.4, 0.5], rtol=1e-12)


@pytest.mark.parametrize("mode", ["exp", "linear"])
@pytest.mark.parametrize("start, end, n", [(1e-7, 10.0, 100), (3e-5, 0.3, 7), (0.1, 0.11, 5)])
def test_ramp_ends_exact_and_increasing(mode: str, start: float, end: float, n: int) -> None:
    lrs = lr_ramp(start, end, n, mode=mode)
    assert lrs.shape == (n,) and lrs.dtype == np.float64
    assert lrs[0] == start and lrs[-1] == end
    assert np.all(np.diff(lrs) > 0)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ((0.0, 1.0, 10), "start_lr must be > 0, got 0.0"),
        ((-1e-3, 1.0, 10), "-0.001"),
        ((1.0, 1.0, 10), "start_lr=1.0, end_lr=1.0"),
        ((2.0, 1.0, 10), "start_lr=2.0, end_lr=1.0"),
        ((1e-3, 1.0, 4), "num_iter must be >= 5, got 4"),
        ((1e-3, float("inf"), 10), "inf"),
    ],
)
def test_ramp_rejects_bad_values_with_them_in_the_message(args: tuple, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("-", r"\-")):
        lr_ramp(*args)


def test_ramp_unknown_mode_lists_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown mode 'cos'; choose one of: exp, linear"):
        lr_ramp(1e-3, 1.0, 10, mode="cos")
