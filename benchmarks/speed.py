"""Speed benchmark: the same range test run by lrscout, fastai, pytorch-lr-finder and Lightning.

Every tool sweeps the same exponential LR range over the same batches for the same number
of steps, early stopping off (the range is chosen so that nothing diverges), on the same
freshly initialised model. The floor is a bare training loop doing the same steps with the
same LR ramp and nothing else (no recording beyond the loss value, no snapshot, no restore).

Timing: all tools and the bare loop run in one process, interleaved (the order rotates every
repetition so no tool always runs right after another), several repetitions; we report the
median wall time per step and the median over repetitions of the paired ratio
``tool / bare loop`` of the same repetition. Each tool's time includes building its own
objects (Learner, LRFinder, Trainer, snapshot) and restoring the model afterwards: that is
what a user waits for.

Memory: peak resident memory above the level just before the call, measured once per tool in
a fresh child process per configuration (``/proc/self/clear_refs`` resets the high-water
mark; glibc's mmap threshold is pinned so freed tensors leave RSS and earlier runs cannot
hide a later one's growth). Reported as MiB over the bare loop's peak.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import multiprocessing
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
from common import fmt_lr, md_table, median


@dataclass(frozen=True)
class SpeedCase:
    model: str
    batch_size: int
    steps: int
    reps: int

    @property
    def name(self) -> str:
        return f"{self.model} b{self.batch_size}"


@dataclass(frozen=True)
class SpeedConfig:
    cases: tuple[SpeedCase, ...] = (
        SpeedCase("simplecnn", 64, 100, 15),
        SpeedCase("simplecnn", 256, 100, 9),
        SpeedCase("resnet18", 64, 20, 5),
        SpeedCase("resnet18", 256, 20, 3),
    )
    dataset: str = "mnist"
    limit: int = 10_000
    optimizer: str = "sgdm"
    start_lr: float = 1e-5
    end_lr: float = 1e-1
    threads: int = 1
    memory: bool = True


@dataclass(frozen=True)
class Bookkeeping:
    """The cost of a tool's own work, on a model too small to hide it: a linear layer over
    batches already in memory, where a training step takes tens of microseconds. Each tool
    sweeps ``short`` and ``long`` steps; the difference gives its cost per step, the rest
    its fixed cost (building its objects, snapshot, restore, analysis). A real case's
    overhead is those costs over that case's step time: measured end to end it drowns in
    the repetition noise of a shared machine (+-15-35% between repetitions), far above a
    1% target."""

    short: int = 100
    long: int = 500
    reps: int = 15
    batch_size: int = 64
    features: int = 16
    classes: int = 4


QUICK = SpeedConfig(cases=(SpeedCase("simplecnn", 64, 40, 3),), limit=3000)
QUICK_BOOKKEEPING = Bookkeeping(short=50, long=150, reps=3)

TOOLS = ("bare loop", "lrscout", "fastai", "torch-lr-finder", "lightning")


def _setup(cfg: SpeedConfig, case: SpeedCase) -> tuple[Any, Any, Any]:
    from lrscout.optim import get_optimizer
    from lrscout.task import Task

    from competitors import Setup, Sweep

    task = Task(dataset=cfg.dataset, model=case.model, optimizer=cfg.optimizer, batch_size=case.batch_size,
                device="cpu", data_dir=common.DATA_DIR, limit=cfg.limit)
    splits = task.splits()
    setup = Setup(lambda params, lr: task.build_optimizer(params, lr),
                  splits.loader("train", case.batch_size, seed=0), get_optimizer(cfg.optimizer).default_lr)
    return task, setup, Sweep(cfg.start_lr, cfg.end_lr, case.steps)


def _adapter(tool: str) -> Callable[..., Any]:
    from competitors import FINDERS, bare_loop

    return bare_loop if tool == "bare loop" else FINDERS[tool]


def _warm_up(task: Any, setup: Any, sweep: Any) -> None:
    """Run every tool once, briefly and unmeasured: first calls pay for lazy imports and
    torch's one-time initialisation, which are no part of a range test's cost."""
    short = dataclasses.replace(sweep, num_iter=min(5, sweep.num_iter))  # lrscout needs >= 5
    for tool in TOOLS:
        _adapter(tool)(task.build_model(task.splits().info, seed=0), setup, short)


# ---------------------------------------------------------------------------- memory (child process)


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    m = re.search(field + r":\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def _memory_child(cfg: SpeedConfig, case: SpeedCase) -> dict[str, float | None]:
    """In a fresh process: each tool once, peak RSS above the level before the call (MiB)."""
    import ctypes

    common.init_worker(cfg.threads)
    try:  # M_MMAP_THRESHOLD = -3: big blocks always mmapped, so freeing returns them to the OS
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)
    except OSError:
        pass
    task, setup, sweep = _setup(cfg, case)
    info = task.splits().info
    _warm_up(task, setup, sweep)
    out: dict[str, float | None] = {}
    for tool in TOOLS:
        model = task.build_model(info, seed=0)
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to current RSS
        except OSError:
            return {t: None for t in TOOLS}
        base = _status_kib("VmRSS")
        _adapter(tool)(model, setup, sweep)
        out[tool] = (_status_kib("VmHWM") - base) / 1024
        del model
    return out


def measure_memory(cfg: SpeedConfig, case: SpeedCase) -> dict[str, float | None]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_memory_child, (cfg, case))


# ---------------------------------------------------------------------------- bookkeeping (this process)


def measure_bookkeeping(cfg: SpeedConfig, bk: Bookkeeping,
                        progress: Callable[[str], None]) -> dict[str, dict[str, list[float]]]:
    """Seconds of every tool's sweep of ``bk.short`` and of ``bk.long`` steps on
    :class:`Bookkeeping`'s linear model, per repetition (interleaved, order rotated)."""
    import torch
    from torch import nn

    from lrscout.optim import build_optimizer, get_optimizer

    from competitors import Setup, Sweep

    gen = torch.Generator().manual_seed(0)
    batches = torch.utils.data.TensorDataset(torch.randn(10, bk.batch_size, bk.features, generator=gen),
                                             torch.randint(0, bk.classes, (10, bk.batch_size), generator=gen))
    loader = torch.utils.data.DataLoader(batches, batch_size=None)  # whole batches: no per-image collation
    setup = Setup(lambda params, lr: build_optimizer(cfg.optimizer, params, lr), loader,
                  get_optimizer(cfg.optimizer).default_lr)

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Linear(bk.features, bk.classes)

    for tool in TOOLS:  # first calls pay for imports and lazy initialisation
        _adapter(tool)(model(), setup, Sweep(cfg.start_lr, cfg.end_lr, 5))
    seconds: dict[str, dict[str, list[float]]] = {t: {"short": [], "long": []} for t in TOOLS}
    for rep in range(bk.reps):
        for tool in TOOLS[rep % len(TOOLS):] + TOOLS[: rep % len(TOOLS)]:
            for length, steps in (("short", bk.short), ("long", bk.long)):
                gc.collect()
                found = _adapter(tool)(model(), setup, Sweep(cfg.start_lr, cfg.end_lr, steps))
                seconds[tool][length].append(found.seconds)
    progress("  speed bookkeeping: " + ", ".join(f"{t} {1e6 * _fit(seconds[t], bk)[0]:.0f} us/step" for t in TOOLS))
    return seconds


def _fit(sweeps: dict[str, list[float]], bk: Bookkeeping) -> tuple[float, float]:
    """(seconds per step, fixed seconds) of one tool, from its fastest short and long sweeps."""
    a, b = min(sweeps["short"]), min(sweeps["long"])
    per_step = (b - a) / (bk.long - bk.short)
    return per_step, a - per_step * bk.short


def bookkeeping_rows(seconds: dict[str, dict[str, list[float]]], bk: Bookkeeping,
                     rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tool's own cost (fastest repetitions, the bare loop's subtracted): per step, from
    the long and the short sweep's difference, and fixed, what the short sweep leaves; and
    both as a share of each measured case's sweep (its steps at its bare median step)."""
    bare_step, bare_fixed = _fit(seconds["bare loop"], bk)
    cases = {r["case"]: (r["ms_per_step"] / 1000, r["steps"][0]) for r in rows if r["tool"] == "bare loop"}
    out = []
    for tool in TOOLS[1:]:
        step, fixed = _fit(seconds[tool], bk)
        step, fixed = step - bare_step, fixed - bare_fixed
        out.append({"tool": tool, "us_per_step": 1e6 * step, "fixed_ms": 1e3 * fixed, "bare_us_per_step": 1e6 * bare_step,
                    "pct_of_case": {c: 100 * (fixed + step * n) / (t * n) for c, (t, n) in cases.items() if t > 0}})
    return out


def bookkeeping_table(bk_rows: list[dict[str, Any]]) -> str:
    cases = list(dict.fromkeys(c for r in bk_rows for c in r["pct_of_case"]))
    body = [[f"**{r['tool']}**" if r["tool"] == "lrscout" else r["tool"], f"{r['us_per_step']:.0f}",
             f"{r['fixed_ms']:.1f}"] + [f"{r['pct_of_case'][c]:.2f}%" for c in cases] for r in bk_rows]
    return md_table(["tool", "own work, us / step", "fixed, ms"] + [f"share of a {c} sweep" for c in cases], body)


# ---------------------------------------------------------------------------- timing (this process)


def measure_time(cfg: SpeedConfig, case: SpeedCase, progress: Callable[[str], None]) -> dict[str, Any]:
    task, setup, sweep = _setup(cfg, case)
    info = task.splits().info
    _warm_up(task, setup, sweep)
    seconds: dict[str, list[float]] = {t: [] for t in TOOLS}
    steps: dict[str, list[int]] = {t: [] for t in TOOLS}
    for rep in range(case.reps):
        order = TOOLS[rep % len(TOOLS):] + TOOLS[: rep % len(TOOLS)]
        for tool in order:
            model = task.build_model(info, seed=0)
            gc.collect()
            found = _adapter(tool)(model, setup, sweep)
            seconds[tool].append(found.seconds)
            steps[tool].append(found.steps)
        progress(f"  speed {case.name}: rep {rep + 1}/{case.reps} " +
                 ", ".join(f"{t} {seconds[t][-1]:.2f}s" for t in TOOLS))
    return {"seconds": seconds, "steps": steps}


def _summarise(case: SpeedCase, timing: dict[str, Any], memory: dict[str, float | None] | None) -> list[dict[str, Any]]:
    bare = timing["seconds"]["bare loop"]
    rows = []
    for tool in TOOLS:
        secs = timing["seconds"][tool]
        n = timing["steps"][tool]
        ratios = [s / b for s, b in zip(secs, bare)]
        mem = memory.get(tool) if memory else None
        mem_bare = memory.get("bare loop") if memory else None
        rows.append({
            "case": case.name, "model": case.model, "batch_size": case.batch_size, "tool": tool,
            "steps": sorted(set(n)), "reps": len(secs),
            "ms_per_step": 1000 * median(s / max(k, 1) for s, k in zip(secs, n)),
            "seconds_median": median(secs),
            "ratio": median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            "ratio_of_minima": min(secs) / min(bare),
            "overhead_pct": 100 * (median(ratios) - 1),
            "peak_mib": mem, "peak_over_bare_mib": None if mem is None or mem_bare is None else mem - mem_bare,
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        tool = f"**{r['tool']}**" if r["tool"] == "lrscout" else r["tool"]
        steps = "/".join(map(str, r["steps"]))
        over = "-" if r["tool"] == "bare loop" else f"{r['overhead_pct']:+.1f}%"
        spread = f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f}"
        mem = "n/a" if r["peak_over_bare_mib"] is None else (
            "-" if r["tool"] == "bare loop" else f"{r['peak_over_bare_mib']:+.1f}")
        out.append([r["case"], tool, steps, f"{r['ms_per_step']:.1f}", f"{r['ratio']:.3f}", spread,
                    f"{r['ratio_of_minima']:.3f}", over, mem])
    return md_table(["model, batch", "tool", "steps", "ms / step (median)", "x bare loop (median)", "range over reps",
                     "x bare loop (fastest reps)", "overhead (median)", "peak MiB over bare"], out)


def render(cfg: SpeedConfig, rows: list[dict[str, Any]], env: dict[str, Any], seconds: float, quick: bool,
           bk_rows: list[dict[str, Any]] | None = None, bk: Bookkeeping | None = None) -> str:
    lines = [
        "# Speed benchmark: range-test overhead over a bare training loop" + (" (QUICK)" if quick else ""),
        "",
        common.env_line(env) + f" Benchmark wall time {seconds / 60:.1f} min.",
        "",
        f"Same range test for every tool: {cfg.dataset} ({cfg.limit} images), optimizer {cfg.optimizer}, "
        f"LR {fmt_lr(cfg.start_lr)} -> {fmt_lr(cfg.end_lr)} exponential, early stopping off, CPU, "
        f"{cfg.threads} torch thread(s). Interleaved repetitions, order rotated each time; 'x bare loop' is the "
        "median over repetitions of the tool's time divided by the bare loop's time in the same repetition; "
        "'fastest reps' divides the tool's fastest repetition by the bare loop's fastest (the estimate least "
        "disturbed by other load on a shared machine). Times "
        "include building the tool's objects and restoring the model. Peak memory: RSS high-water mark above the "
        "level before the call, one fresh process per configuration, minus the bare loop's.",
        "",
        table(rows),
        "",
        verdict(rows),
    ]
    if bk_rows and bk is not None:
        lines += [
            "",
            "## Per-step bookkeeping",
            "",
            f"Each tool's own work, measured where nothing hides it: sweeps of {bk.short} and {bk.long} steps on a "
            f"linear layer ({bk.features} -> {bk.classes}, whole batches of {bk.batch_size} from memory; bare step "
            f"{bk_rows[0]['bare_us_per_step']:.0f} us), fastest of {bk.reps} interleaved repetitions. Per step: the "
            "two sweeps' difference over their steps; fixed: what is left of the short sweep (building the tool's "
            "objects, snapshot, restore, analysis); both less the bare loop's. The share is what both add to each "
            "case above (its steps at its median bare step).",
            "",
            bookkeeping_table(bk_rows),
            "",
            bookkeeping_verdict(bk_rows),
        ]
    return "\n".join(lines)


def run(cfg: SpeedConfig, *, quick: bool, out_dir: Path, progress: Callable[[str], None] = print,
        bookkeeping: Bookkeeping | None = None) -> dict[str, Any]:
    import torch

    common.init_worker(cfg.threads)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    bk = bookkeeping or (QUICK_BOOKKEEPING if quick else Bookkeeping())
    bk_seconds = measure_bookkeeping(cfg, bk, progress)
    raw["bookkeeping"] = bk_seconds
    for case in cfg.cases:
        timing = measure_time(cfg, case, progress)
        memory = measure_memory(cfg, case) if cfg.memory else None
        raw[case.name] = {"timing": timing, "memory": memory}
        rows += _summarise(case, timing, memory)
    bk_rows = bookkeeping_rows(bk_seconds, bk, rows)
    seconds = time.perf_counter() - t0
    env = common.environment()
    env["torch_threads"] = torch.get_num_threads()
    markdown = render(cfg, rows, env, seconds, quick, bk_rows, bk)
    payload = {"benchmark": "speed", "quick": quick, "config": dataclasses.asdict(cfg), "environment": env,
               "seconds": seconds, "rows": rows, "bookkeeping": bk_rows,
               "bookkeeping_config": dataclasses.asdict(bk), "raw": raw}
    common.write_result("speed", markdown, payload, out_dir)
    return {"markdown": markdown, "payload": payload, "rows": rows}


def lrscout_overhead(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {r["case"]: r["overhead_pct"] for r in rows if r["tool"] == "lrscout" and math.isfinite(r["overhead_pct"])}


def verdict(rows: list[dict[str, Any]], target_pct: float = 1.0) -> str:
    """One sentence per case: lrscout's overhead against the target and each competitor."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        by_tool = {r["tool"]: r for r in rows if r["case"] == case}
        ours = by_tool.get("lrscout")
        if ours is None:
            continue
        lower = [t for t, r in by_tool.items() if t not in ("lrscout", "bare loop") and r["overhead_pct"] < ours["overhead_pct"]]
        status = "within" if ours["overhead_pct"] <= target_pct else "OVER"
        beaten = f"; lower: {', '.join(lower)}" if lower else "; lower than every competitor"
        out.append(f"{case}: lrscout {ours['overhead_pct']:+.1f}% ({status} the {target_pct:.0f}% target{beaten})")
    return "lrscout range-test overhead over the bare loop (median): " + "; ".join(out) + "."


def bookkeeping_verdict(bk_rows: list[dict[str, Any]], target_pct: float = 1.0) -> str:
    """lrscout's own per-step cost against the target, on every measured case."""
    ours = next((r for r in bk_rows if r["tool"] == "lrscout"), None)
    if ours is None or not ours["pct_of_case"]:
        return ""
    worst = max(ours["pct_of_case"].values())
    others = [r for r in bk_rows if r["tool"] != "lrscout"]
    lower = [r["tool"] for r in others if r["us_per_step"] < ours["us_per_step"]]
    return (f"lrscout's own work: {ours['us_per_step']:.0f} us per step and {ours['fixed_ms']:.1f} ms per sweep, at "
            f"most {worst:.2f}% of a measured case's sweep ({'within' if worst <= target_pct else 'OVER'} the "
            f"{target_pct:.0f}% target); "
            + (f"lower: {', '.join(lower)}." if lower else "lower than every competitor's."))
