"""Read a loss log written by anyone: CSV, JSON, or TensorBoard event files.

    CSV / TSV     a header row; the loss column is found by name (``loss``,
                  ``train_loss``, ``train/loss``, ... see ``LOSS_NAMES``) or given, the
                  step column likewise (``step``, ``global_step``, ``iteration``, ...;
                  the row number when there is none). Without a header: one column of
                  losses, or ``step,loss``. Rows whose loss cell is empty are skipped
                  (loggers that put validation metrics on rows of their own).
    JSON          a list of numbers; a list of ``[step, loss]`` pairs; a list of records
                  (``{"step": 1, "loss": 2.3}``); a dict of equal-length lists; or any of
                  these one level down (lrscout's own ``train.json`` keeps its curve
                  under ``"steps"``). ``null`` is read as NaN (how JSON writers store it);
                  a record without the loss key is skipped.
    TensorBoard   an ``events.out.tfevents.*`` file or a directory holding one run's;
                  the scalar tag is found like a CSV column (``train/loss``, ``loss``, ...).

Every problem (missing file, empty log, no loss column, a value that is not a number) is a
:class:`~lrscout.errors.DataError` with one line saying which file and what to do.

Example::

    log = read_loss_log("runs/digits/metrics.csv")
    diagnosis = diagnose(log.steps, log.losses)
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, require

#: Loss column / tag names, best first (compared after lower-casing and mapping
#: separators ``/ . - space`` to ``_``).
LOSS_NAMES = ("loss", "train_loss", "training_loss", "train_loss_step", "loss_train", "train_batch_loss",
              "batch_loss", "trn_loss", "train_loss_epoch", "epoch_loss", "running_loss")
#: Step column names, best first; ``epoch`` last because several steps share one.
STEP_NAMES = ("step", "global_step", "iteration", "iter", "it", "steps", "batch", "trainer_global_step",
              "epoch")
#: Columns whose name says they are not the training loss.
_NOT_TRAIN = re.compile(r"(^|_)(val|valid|validation|test|eval|dev)(_|$)")


@dataclass(frozen=True, eq=False)
class LossLog:
    """A loss curve read from a file: ``steps`` and ``losses`` (float64, same length)."""

    steps: np.ndarray
    losses: np.ndarray
    path: str
    loss_name: str
    step_name: str | None  # None: the row / point index


def _norm(name: str) -> str:
    return re.sub(r"[\s/.\-:]+", "_", name.strip().lower()).strip("_")


def find_column(names: Sequence[str], candidates: Sequence[str]) -> str | None:
    """The first of ``candidates`` among ``names`` (compared normalised), else None."""
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(_norm(n), n)
    return next((by_norm[c] for c in candidates if c in by_norm), None)


def pick_column(names: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str,
                path: str, argument: str) -> str:
    """The column in ``names`` that holds ``what``: ``wanted`` if given, else the first of
    ``candidates``, else (for the loss) the only column with "loss" in its name that is not
    a validation / test metric. :class:`DataError` when there is none."""
    if wanted is not None:
        found = wanted if wanted in names else find_column(names, [_norm(wanted)])
        if found is None:
            raise DataError(f"{path}: no {what} column {wanted!r}; columns are: {', '.join(names)}", argument=argument)
        return found
    found = find_column(names, candidates)
    if found is not None:
        return found
    if what == "loss":
        loose = [n for n in names if "loss" in _norm(n) and not _NOT_TRAIN.search(_norm(n))]
        if len(loose) == 1:
            return loose[0]
        if len(loose) > 1:
            raise DataError(f"{path}: several loss columns ({', '.join(loose)}); choose one with {argument}", argument=argument)
    raise DataError(f"{path}: no {what} column found among: {', '.join(names) or '(none)'}; name it with {argument}", argument=argument)


def _number(value: Any, path: str, where: str) -> float:
    """A cell as a float: numbers and numeric strings ('nan' and 'inf' included), null -> NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        raise DataError(f"{path}: {where}: {value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise DataError(f"{path}: {where}: {value!r} is not a number")


def _finish(path: str, steps: Sequence[float], losses: Sequence[float], loss_name: str,
            step_name: str | None) -> LossLog:
    if not losses:
        raise DataError(f"{path}: the log has no loss values")
    return LossLog(np.asarray(steps, dtype=np.float64), np.asarray(losses, dtype=np.float64), path, loss_name,
                   step_name)


def _from_columns(path: str, columns: dict[str, list[Any]], loss_col: str | None, step_col: str | None,
                  first_row: int) -> LossLog:
    """Columns of equal length (CSV, JSON records or dict of lists) -> LossLog."""
    names = list(columns)
    loss_name = pick_column(names, loss_col, LOSS_NAMES, "loss", path, "loss_col")
    step_name = (pick_column(names, step_col, STEP_NAMES, "step", path, "step_col") if step_col is not None
                 else find_column([n for n in names if n != loss_name], STEP_NAMES))
    steps: list[float] = []
    losses: list[float] = []
    for i, cell in enumerate(columns[loss_name]):
        if isinstance(cell, str) and not cell.strip():
            continue  # an empty cell: this row logs something else
        losses.append(_number(cell, path, f"row {i + first_row}, column {loss_name!r}"))
        if step_name is None:
            steps.append(float(len(steps)))
        else:
            steps.append(_number(columns[step_name][i], path, f"row {i + first_row}, column {step_name!r}"))
    return _finish(path, steps, losses, loss_name, step_name)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: str, lines: Iterable[str], loss_col: str | None = None, step_col: str | None = None) -> LossLog:
    """Read the loss (and step) column of a CSV given as lines (a text file opened with
    ``newline=""``, or ``text.splitlines(keepends=True)``).

    One streaming pass keeps only the two cells it needs, as floats, so a log of a million
    rows reads in about a second in little memory. Rows are numbered by their line.
    """
    it = iter(lines)
    head = list(itertools.islice(it, 64))  # enough lines to tell the delimiter
    try:
        dialect: Any = csv.Sniffer().sniff("".join(head)[:4096], delimiters=",\t; ")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(itertools.chain(head, it), dialect)
    losses = array("d")
    steps = array("d")
    try:
        first = next((r for r in reader if any(c.strip() for c in r)), None)
        if first is None:
            raise DataError(f"{path}: the log is empty")
        header = [c.strip() for c in first]
        rows: Iterable[list[str]] = reader
        step_name: str | None
        if all(_is_number(c) for c in header if c):
            if loss_col is not None or step_col is not None:
                raise DataError(f"{path}: the CSV has no header row, so columns cannot be chosen by name")
            width = len(header)
            if width not in (1, 2):
                raise DataError(f"{path}: a CSV without a header must have 1 column (loss) or 2 (step, loss), "
                                f"got {width}")
            loss_name, step_name = "loss", ("step" if width == 2 else None)
            loss_j, step_j = width - 1, (0 if width == 2 else None)
            rows = itertools.chain([first], reader)  # the first row is data (reader.line_num is its line)
        else:
            index = {name: j for j, name in enumerate(header)}  # a repeated name: its last column
            loss_name = pick_column(header, loss_col, LOSS_NAMES, "loss", path, "--loss-col")
            step_name = (pick_column(header, step_col, STEP_NAMES, "step", path, "--step-col")
                         if step_col is not None
                         else find_column([n for n in header if n != loss_name], STEP_NAMES))
            loss_j, step_j = index[loss_name], (None if step_name is None else index[step_name])
        any_rows = False
        for r in rows:
            if not r:
                continue
            any_rows = True
            cell = r[loss_j] if loss_j < len(r) else ""
            if not cell.strip():
                continue  # an empty cell: this row logs something else
            try:
                losses.append(float(cell))
                steps.append(float(len(steps)) if step_j is None else float(r[step_j] if step_j < len(r) else ""))
            except ValueError:  # say which cell
                where = f"row {reader.line_num}, column"
                _number(cell, path, f"{where} {loss_name!r}")
                _number(r[step_j] if step_j is not None and step_j < len(r) else "", path, f"{where} {step_name!r}")
                raise
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV (line {reader.line_num}: {exc})") from None
    if not any_rows:
        raise DataError(f"{path}: the log has a header but no rows")
    return _finish(path, steps, losses, loss_name, step_name)


def _json_curve(path: str, data: Any, loss_col: str | None, step_col: str | None, depth: int = 0) -> LossLog:
    if isinstance(data, list):
        if not data:
            raise DataError(f"{path}: the log is empty")
        if all(isinstance(v, dict) for v in data):
            names: dict[str, None] = {}
            for rec in data:
                names.update(dict.fromkeys(rec))
            cols = {n: [rec.get(n, "") for rec in data] for n in names}  # absent key: an empty cell
            return _from_columns(path, cols, loss_col, step_col, first_row=0)
        if all(isinstance(v, (list, tuple)) and len(v) == 2 for v in data):
            return _from_columns(path, {"step": [v[0] for v in data], "loss": [v[1] for v in data]},
                                 None, None, first_row=0)
        return _from_columns(path, {"loss": data}, None, None, first_row=0)
    if isinstance(data, dict):
        if not data:
            raise DataError(f"{path}: the log is empty")
        lists = {k: v for k, v in data.items() if isinstance(v, list)}
        first_error: DataError | None = None
        if lists:  # a dict of lists: the columns as long as the loss column
            try:
                name = pick_column(list(lists), loss_col, LOSS_NAMES, "loss", path, "loss_col")
            except DataError as exc:
                first_error = exc
            else:
                cols = {k: v for k, v in lists.items() if len(v) == len(lists[name])}
                return _from_columns(path, cols, name, step_col, first_row=0)
        if depth == 0:  # one level down: {"steps": {"loss": [...]}} and the like
            for value in data.values():
                if isinstance(value, dict):
                    try:
                        return _json_curve(path, value, loss_col, step_col, depth + 1)
                    except DataError:
                        continue
        if first_error is not None:
            raise first_error
        keys = ", ".join(map(str, data))
        raise DataError(f"{path}: no list of losses found in the JSON (keys: {keys}); name it with loss_col",
                        argument="loss_col")
    raise DataError(f"{path}: a JSON loss log must be a list or an object, got {type(data).__name__}")


def read_json(path: str, text: str, loss_col: str | None = None, step_col: str | None = None) -> LossLog:
    if not text.strip():
        raise DataError(f"{path}: the log is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return _json_curve(path, data, loss_col, step_col)


def _event_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("events.out.tfevents.*") if p.is_file()})


def read_tensorboard(path: str, loss_col: str | None = None) -> LossLog:
    """Scalars of one run from an event file or a directory (tensorboard's EventAccumulator)."""
    require("tensorboard", "tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    p = Path(path)
    if p.is_dir():
        dirs = _event_dirs(p)
        if not dirs:
            raise DataError(f"{path}: no TensorBoard event files (events.out.tfevents.*) in this directory")
        if len(dirs) > 1:
            raise DataError(f"{path}: event files of {len(dirs)} runs ({', '.join(str(d) for d in dirs[:4])}); "
                            "pass one run's directory")
        p = dirs[0]
    acc = EventAccumulator(str(p), size_guidance={"scalars": 0})
    try:
        acc.Reload()
    except Exception as exc:  # corrupt records raise several tensorboard / protobuf types
        raise DataError(f"{path}: cannot read TensorBoard events ({type(exc).__name__}: {exc})") from None
    tags = list(acc.Tags().get("scalars", []))
    if not tags:
        raise DataError(f"{path}: the TensorBoard log has no scalar values")
    tag = pick_column(tags, loss_col, LOSS_NAMES, "loss", path, "loss_col")
    events = sorted(acc.Scalars(tag), key=lambda e: (e.step, e.wall_time))
    return _finish(path, [float(e.step) for e in events], [float(e.value) for e in events], tag, "step")


def read_loss_log(path: str | os.PathLike[str], *, loss_col: str | None = None,
                  step_col: str | None = None) -> LossLog:
    """Read a loss curve from a CSV, JSON or TensorBoard log (format from the name/contents)."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise DataError(f"{name}: no such file or directory")
    if p.is_dir() or p.name.startswith("events.out.tfevents"):
        return read_tensorboard(name, loss_col)
    try:
        with open(p, encoding="utf-8-sig", newline="") as f:
            start = f.read(4096)
            if p.suffix.lower() == ".json" or start.lstrip()[:1] in ("[", "{"):
                return read_json(name, start + f.read(), loss_col, step_col)
            f.seek(0)
            return read_csv(name, f, loss_col, step_col)
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a text log (CSV or JSON) nor a TensorBoard event file") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror})") from None
