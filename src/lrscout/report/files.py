"""Write results to a run directory: JSON (atomic) and PNG plots."""

from __future__ import annotations

from pathlib import Path

from .._io import atomic_write_json
from ..results import FindResult
from .plots import save_figure


def save_find(result: FindResult, out_dir: str | Path) -> tuple[Path, Path]:
    """``out_dir/find.json`` and ``out_dir/find.png``; returns both paths."""
    out = Path(out_dir)
    json_path = atomic_write_json(out / "find.json", result.to_json())
    ax = result.plot()
    png_path = out / "find.png"
    save_figure(ax.figure, png_path)
    return json_path, png_path
