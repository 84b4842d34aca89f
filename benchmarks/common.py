"""Shared pieces of the benchmarks: environment record, run cache, worker pool, tables.

Nothing here knows about learning rates; ``quality.py`` and ``speed.py`` build on it.

* :func:`environment` -- what a result needs beside it to be trusted later: date, machine,
  CPU / GPU, thread count, package versions, git commit (and whether the tree was dirty).
* :class:`Cache` -- finished training runs and finder results as one small JSON file per
  key under ``benchmarks/cache/`` (gitignored), so a rerun only does what is missing.
* :func:`pool` -- a spawn-based process pool whose workers each use one torch thread, so
  two workers on two cores do not fight over threads.
* :func:`md_table` / :func:`write_result` -- markdown tables and the JSON written beside them.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as _dt
import hashlib
import importlib.metadata
import json
import logging
import math
import multiprocessing
import os
import platform
import statistics
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / "cache"
RESULTS_DIR = BENCH_DIR / "results"
#: Where the MNIST files live (torchvision layout), relative to the repository.
DATA_DIR = os.environ.get("LRSCOUT_DATA_DIR") or str((REPO_DIR / ".." / "shared" / "datasets").resolve())

PACKAGES = (
    "lrscout", "torch", "torchvision", "numpy", "fastai", "fastcore", "torch-lr-finder",
    "pytorch-lightning", "prodigyopt", "schedulefree", "dadaptation",
)


# ---------------------------------------------------------------------------- environment


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment() -> dict[str, Any]:
    """Date, machine and software a result was measured with."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} x {_cpu_name()}" + (f", {gpu}" if gpu else ", no GPU"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "src", "benchmarks")),
        "versions": versions(),
    }


# ---------------------------------------------------------------------------- cache


def key_hash(obj: Any) -> str:
    """A short stable hash of a JSON-able value (dict keys sorted)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def fmt_lr(lr: float) -> str:
    """The LR as the tables spell it: 6 significant digits."""
    return f"{lr:.6g}"


def lr_key(lr: float) -> str:
    """The LR as the cache keys a training run: :func:`fmt_lr` when that spelling is the
    LR itself (the grid's, the defaults), else every digit (``repr``).

    Why: a method's LR used to be trained as its 6-digit spelling, and on the short
    plain-SGD protocols a relative change of 1e-7 in the LR is enough to send a run
    elsewhere (digits, 2 epochs of batch 32: 96.0% validation accuracy at ``select``'s
    0.2232122179545977, 93.3% at 0.223212). ``select``'s choice is then no longer the run
    it verified; trained at every digit it is, bit for bit.

    >>> lr_key(0.0316228), lr_key(0.1), lr_key(0.2232122179545977)
    ('0.0316228', '0.1', '0.2232122179545977')
    """
    short = fmt_lr(lr)
    return short if float(short) == lr else repr(float(lr))


class Cache:
    """One JSON file per finished item: ``<root>/<kind>/<name>-<hash>.json``.

    Writes are atomic (temp file + rename), so an interrupted run leaves no half files and
    two workers never see a partial result.
    """

    def __init__(self, root: Path = CACHE_DIR) -> None:
        self.root = Path(root)

    def path(self, kind: str, name: str, key: Any) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)
        return self.root / kind / f"{safe}-{key_hash(key)}.json"

    def get(self, kind: str, name: str, key: Any) -> dict[str, Any] | None:
        p = self.path(kind, name, key)
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if data.get("key") != json.loads(json.dumps(key, default=str)):
            return None
        data["from_cache"] = True  # not stored: tells the caller this item cost nothing now
        return data

    def put(self, kind: str, name: str, key: Any, value: dict[str, Any]) -> dict[str, Any]:
        p = self.path(kind, name, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        data = {**value, "key": key}
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, default=str))
        tmp.replace(p)
        return json.loads(json.dumps(data, default=str))


# ---------------------------------------------------------------------------- workers


def quiet() -> None:
    """Silence the competitors' banners and warnings (they do not change any result)."""
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric", "fastai"):
        logging.getLogger(name).setLevel(logging.ERROR)


def init_worker(threads: int = 1) -> None:
    import torch

    torch.set_num_threads(threads)
    quiet()


def pool(jobs: int) -> cf.ProcessPoolExecutor:
    """Spawned workers (no fork after torch has started threads), one torch thread each."""
    return cf.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker
    )


# ---------------------------------------------------------------------------- statistics


def mean(xs: Iterable[float]) -> float:
    xs = [x for x in xs]
    return statistics.fmean(xs) if xs else math.nan


def std(xs: Iterable[float]) -> float:
    xs = [x for x in xs]
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def median(xs: Iterable[float]) -> float:
    xs = [x for x in xs]
    return statistics.median(xs) if xs else math.nan


# ---------------------------------------------------------------------------- output


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one of l/r per column (default: first l, rest r)."""
    align = align or ("l" + "r" * (len(header) - 1))
    sep = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def env_line(env: dict[str, Any]) -> str:
    commit = (env.get("git_commit") or "unknown")[:10] + (" (dirty)" if env.get("git_dirty") else "")
    return (
        f"Measured {env['date']} on {env['machine']}, torch {env['versions'].get('torch')} "
        f"({env['torch_threads']} threads per process), lrscout commit {commit}."
    )


def write_result(name: str, markdown: str, data: dict[str, Any], out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write ``<name>.md`` and ``<name>.json`` (the JSON carries config, env, raw rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{name}.md", out_dir / f"{name}.json"
    md.write_text(markdown.rstrip() + "\n")
    js.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return md, js
