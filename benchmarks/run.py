"""Run lrscout's benchmarks: ``python benchmarks/run.py`` (or ``make bench``).

    python benchmarks/run.py --hour            make bench: all three, the short-protocol quality sets
                                               (development and held-out 2-8, 2 seeds), speed without
                                               ResNet-18 at batch 256; about an hour on 2 cores from an
                                               empty cache; results in benchmarks/results/hour/
    python benchmarks/run.py                   make bench-full: every quality task (the long development
                                               protocols, held-out 1 with the colour task), 3 seeds;
                                               about 3 hours from an empty cache, minutes when cached
    python benchmarks/run.py --quick           a few minutes: tiny settings, results under benchmarks/cache/
    python benchmarks/run.py --only speed      one of them (speed, quality, finetune)
    python benchmarks/run.py --seeds 2         fewer seeds per task or setting

Writes ``benchmarks/results/{quality,speed,finetune}.{md,json}`` (``--hour``: under
``benchmarks/results/hour/``) and, for a run of all three (either tier), the summary tables
into README.md between ``<!-- bench:start -->`` and ``<!-- bench:end -->``. Finished quality runs and finder results are cached in
``benchmarks/cache/`` (delete it, or pass ``--fresh``, to start from scratch); the
fine-tuning benchmark reruns in ~4 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # each process is single-threaded; see common.pool
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import finetune  # noqa: E402
import quality  # noqa: E402
import speed  # noqa: E402

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def _log(msg: str) -> None:
    print(msg, flush=True)


#: Where each tier writes its results (the README links them).
TIER_DIRS = {"full": common.RESULTS_DIR, "hour": common.RESULTS_DIR / "hour"}


def readme_section(q: dict | None, s: dict | None, f: dict | None = None, *, tier: str = "full") -> str:
    """The README block: summary tables with date and machine, links to the full results.
    ``tier`` says which run measured them: ``"full"`` (``make bench-full``) or ``"hour"``
    (``make bench``), whose results live in their own folder."""
    where = TIER_DIRS[tier].relative_to(common.REPO_DIR).as_posix()
    parts = [README_START, "## Benchmarks", ""]
    if tier == "hour":
        parts += ["Measured by `make bench` (installs the `bench` extra, runs `python benchmarks/run.py --hour`: the "
                  "short-protocol quality sets at 2 seeds, speed without ResNet-18 at batch 256, and fine-tuning; "
                  "under an hour on 2 cores from an empty cache). `make bench-full` adds the long development "
                  "protocols, held-out 1 and the colour task at 3 seeds (about 3 hours; its last results are in "
                  "[benchmarks/results/](benchmarks/results/)); see [benchmarks/README.md](benchmarks/README.md).", ""]
    else:
        parts += ["Reproduce with `make bench-full` (installs the `bench` extra, runs `python benchmarks/run.py`: "
                  "about 3 hours on 2 cores from an empty cache); `make bench` runs the short-protocol sets, speed "
                  "and fine-tuning in under an hour (`run.py --hour`); see [benchmarks/README.md](benchmarks/README.md).",
                  ""]
    if q is not None:
        payload = q["payload"]
        tasks = payload["tasks"]
        n_grid = len(tasks[0]["grid"]) if tasks else 0
        colour = any(t["task"].startswith("cifar") for t in tasks)
        labels = [quality.SPLIT_LABELS[k].split(" (")[0].split()[-1] for k in quality.SPLIT_LABELS
                  if k not in ("dev", "heldout") and any(t.get("split") == k for t in tasks)]
        later = (", ".join(labels[:-1]) + " and " + labels[-1]) if len(labels) > 1 else "".join(labels)
        first = ("held-out 1 (seen once with an earlier rule, so no longer unseen), "
                 if any(t.get("split") == "heldout" for t in tasks) else "")
        epochs = [t["protocol"]["epochs"] for t in tasks] or [0]
        batches = [t["protocol"]["batch_size"] for t in tasks] or [0]
        pooled = quality.pooled_table(payload)
        parts += ["### Learning-rate quality (regret against a grid-search oracle)", "",
                  common.env_line(payload["environment"]) + f" Wall time {payload['seconds'] / 60:.1f} min "
                  f"({payload.get('computed', '?')} of {payload.get('total', '?')} items computed, the rest cached).", "",
                  f"{len(tasks)} tasks (SimpleCNN on digits, MNIST subsets and USPS"
                  + ("; ResNet-18 on a CIFAR-10 subset with augmentation" if colour else "") + "; SGD, SGD+momentum, "
                  f"Adam, AdamW, RMSprop; constant, cosine and step schedules; {min(epochs)} to {max(epochs)} epochs, "
                  f"batches {min(batches)}-{max(batches)}) in sets side by side: development (lrscout's rules were "
                  f"measured and tuned on them), {first}held-out {later} (each fixed before any run of it, scored "
                  "after the rules were chosen; see [benchmarks/README.md](benchmarks/README.md)); "
                  f"oracle = best of {n_grid} log-spaced LRs by mean validation accuracy. Regret in test "
                  "accuracy points (lower is better); cost = seconds / training-run equivalents per selection. "
                  "Per-task tables and notes on where lrscout loses: "
                  f"[{where}/quality.md]({where}/quality.md).", "",
                  quality.split_table(payload) if payload.get("splits") else quality.summary_table(payload), ""]
        if pooled is not None:
            parts += ["Held-out sets 2 and later pooled, each mean with its 95% bootstrap interval over tasks: an "
                      "interval that spans a target means these tasks cannot tell whether it is met.", "", pooled, ""]
        notes = quality.losses_note(payload)
        if notes:
            parts += ["Where lrscout loses:", ""] + notes + [""]
        if not payload.get("select_available"):
            parts += ["`lrscout.select` was not available when this was measured; its rows are missing.", ""]
    if s is not None:
        payload = s["payload"]
        parts += ["### Range-test speed (same sweep, same steps, interleaved)", "",
                  common.env_line(payload["environment"]) + f" Wall time {payload['seconds'] / 60:.1f} min.", "",
                  f"Details: [{where}/speed.md]({where}/speed.md).", "",
                  speed.table(payload["rows"]), "", speed.verdict(payload["rows"]), ""]
        if payload.get("bookkeeping"):
            parts += ["Each tool's own work, measured on a linear layer where nothing hides it (sweeps of two lengths; "
                      "see the details):", "", speed.bookkeeping_table(payload["bookkeeping"]), "",
                      speed.bookkeeping_verdict(payload["bookkeeping"]), ""]
    if f is not None:
        payload = f["payload"]
        parts += ["### Fine-tuning (digits-pretrained SimpleCNN -> MNIST subsets)", "",
                  common.env_line(payload["environment"]) + f" Wall time {payload['seconds'] / 60:.1f} min.", "",
                  "Each cell is a complete `lrscout.finetune` run (range test, halving, the winner's run), 3 epochs "
                  "one-cycle, test accuracy on the 10,000 official test images; gains are paired by seed. "
                  f"Details and ablations: [{where}/finetune.md]({where}/finetune.md).", "",
                  finetune.readme_table(payload), ""]
    parts.append(README_END)
    return "\n".join(parts)


def update_readme(block: str, readme: Path = common.REPO_DIR / "README.md") -> None:
    text = readme.read_text() if readme.exists() else ""
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny settings; results go to benchmarks/cache/quick/")
    ap.add_argument("--hour", action="store_true",
                    help="the short-protocol quality sets at 2 seeds (no long tasks), speed without ResNet-18 at batch "
                         "256; results in benchmarks/results/hour/")
    ap.add_argument("--only", choices=("speed", "quality", "finetune"), help="run one benchmark")
    ap.add_argument("--seeds", type=int, help="seeds per task (default 3)")
    ap.add_argument("--tasks", help="comma-separated quality task names: a reduced run of just these")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the quality runs (default 2)")
    ap.add_argument("--no-select", action="store_true", help="leave out lrscout.select")
    ap.add_argument("--fresh", action="store_true", help="ignore and clear the cache first")
    ap.add_argument("--no-readme", action="store_true", help="do not update README.md")
    ap.add_argument("--readme-only", action="store_true",
                    help="rebuild the README section from benchmarks/results/*.json (with --hour: results/hour/) "
                         "without running anything")
    ap.add_argument("--out", type=Path, help="where to write the result files (default benchmarks/results/)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    common.quiet()

    tier = "hour" if args.hour else "full"
    if args.readme_only:
        src = TIER_DIRS[tier]
        loaded = {n: json.loads((src / f"{n}.json").read_text()) for n in ("quality", "speed", "finetune")}
        update_readme(readme_section({"payload": loaded["quality"]}, {"payload": loaded["speed"]},
                                     {"payload": loaded["finetune"]}, tier=tier))
        _log(f"README.md benchmark section rebuilt from {src}")
        return 0

    cache_root = common.CACHE_DIR / ("quick" if args.quick else "full")
    out_dir = args.out or (common.CACHE_DIR / "quick" / "results" if args.quick
                           else TIER_DIRS[tier])
    if args.fresh and cache_root.exists():
        shutil.rmtree(cache_root)

    qcfg = quality.QUICK if args.quick else quality.QualityConfig()
    qcfg = dataclasses.replace(qcfg, jobs=args.jobs, select=not args.no_select)
    if args.hour:
        args.seeds = args.seeds or 2
        qcfg = dataclasses.replace(qcfg, long_tasks=False)
    if args.seeds:
        qcfg = dataclasses.replace(qcfg, digits_seeds=tuple(range(args.seeds)), mnist_seeds=tuple(range(args.seeds)),
                                   heldout_seeds=tuple(range(args.seeds)))
    if args.tasks:
        qcfg = dataclasses.replace(qcfg, only=tuple(t.strip() for t in args.tasks.split(",") if t.strip()))
    scfg = speed.QUICK if args.quick else speed.SpeedConfig()
    if args.hour:  # ResNet-18 at batch 256 alone takes 10-14 min of the speed benchmark's 15-28
        scfg = dataclasses.replace(scfg, cases=tuple(c for c in scfg.cases if (c.model, c.batch_size) != ("resnet18", 256)))

    t0 = time.perf_counter()
    q = s = None
    if args.only in (None, "speed"):  # first, while nothing else of ours runs
        _log("speed benchmark ...")
        s = speed.run(scfg, quick=args.quick, out_dir=out_dir, progress=_log)
        _log(s["markdown"])
    if args.only in (None, "quality"):
        if qcfg.select and not quality.has_select():
            _log("note: lrscout.select is not available at this commit; its rows are left out")
        _log("quality benchmark ...")
        q = quality.run(qcfg, quick=args.quick, out_dir=out_dir, cache_root=cache_root, progress=_log)
        _log(q["markdown"].split("## Tasks")[0])
    f = None
    if args.only in (None, "finetune"):
        _log("fine-tuning benchmark ...")
        fcfg = finetune.QUICK if args.quick else finetune.FinetuneConfig()
        if args.seeds:
            fcfg = dataclasses.replace(fcfg, settings=tuple((o, n, args.seeds, arms) for o, n, _, arms in fcfg.settings))
        f = finetune.run(fcfg, jobs=args.jobs, out_dir=out_dir, progress=_log)
    if not (args.quick or args.no_readme) and args.only is None and args.out is None and not args.tasks:
        update_readme(readme_section(q, s, f, tier=tier))
        _log("README.md benchmark section updated")
    _log(f"results in {out_dir}; total {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
