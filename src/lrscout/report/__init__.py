"""Presentation: plots, HTML pages and result files, as functions of the results.

    plots       plot_find, new_axes, save_figure (matplotlib, Agg backend)
    page        the self-contained HTML page's building blocks (shared by every report)
    files       save_find (find.json + find.png), save_select, save_compare (JSON + report.html)
    selection   plot_candidates, plot_compare, ... (figures of selections and comparisons)
    html        render_select, render_compare
    training    plot_train, plot_diagnosis; save_train, save_diagnosis
    finetuning  plot_grid, render_finetune, save_finetune

This package sits below the results in the layering (tests/package/test_imports.py): it
imports result classes only for type checking, so a result's ``.plot()`` convenience can
call into it without an import circle, and ``select`` / ``compare`` / ``train`` /
``finetune`` write their files through it. :func:`save` is the one entry point that writes
any result's files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from torch import nn


def save(result: Any, out_dir: str | Path, *, model: nn.Module | None = None) -> list[Path]:
    """Write ``result``'s files into ``out_dir``; returns the paths written.

    ``FindResult``: ``find.json``, ``find.png``; ``SelectResult``: ``select.json``,
    ``report.html`` (and ``model.pt``, the chosen run's weights, when it holds them);
    ``CompareResult``: ``compare.json``, ``report.html``;
    ``TrainResult``: ``train.json``, ``train.png``; ``Diagnosis``: ``diagnosis.json``,
    ``diagnosis.png``; ``FinetuneResult``: the files of :func:`save_finetune` (``model``:
    also its weights as ``last.pt``).

    Example::

        result = lrscout.select(task, epochs=10)
        lrscout.report.save(result, "runs/select")
    """
    from .files import save_compare, save_find, save_select
    from .finetuning import save_finetune
    from .training import save_diagnosis, save_train

    kind = type(result).__name__  # results are known here by name only: no import of a higher layer
    if model is not None and kind != "FinetuneResult":
        raise ConfigError(f"model is saved only with a FinetuneResult, not a {kind}")
    if kind == "FinetuneResult":
        return save_finetune(result, out_dir, model)
    savers = {"FindResult": save_find, "SelectResult": save_select, "CompareResult": save_compare,
              "TrainResult": save_train, "Diagnosis": save_diagnosis}
    if kind not in savers:
        raise ConfigError(f"no files for a {kind}; known results: {', '.join([*savers, 'FinetuneResult'])}")
    return list(savers[kind](result, out_dir))  # type: ignore[operator]


__all__ = ["save"]
