"""``lrscout compare --lr-free`` on the colour task and the MNIST tasks, as a user runs it.

For each setting the CLI ranks the user's optimizer(s) at their selected LR against the
installed LR-free optimizers (Prodigy, Schedule-Free, D-Adaptation), each trained once at
its default. Ranking is by validation accuracy, so the best entry is never worse than the
best LR-free one on validation by construction; the table says by how much it differs and
which kind won. Test accuracy of the same methods on the same protocols is in the quality
benchmark's rows (``quality.md``).

    python benchmarks/compare_lrfree.py --out benchmarks/results    # ~15 min on 2 cores

Writes ``compare-lrfree.md`` and ``compare-lrfree.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

#: (name, CLI arguments): the colour task and MNIST tasks of the quality benchmark.
SETTINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cifar3k-resnet18-sgdm-cosine-aug", ("--dataset", "cifar10", "--limit", "3000", "--model", "resnet18",
                                          "--augment", "--optimizers", "sgdm", "--schedules", "cosine",
                                          "--epochs", "3")),
    ("mnist10k-sgd-adam-3ep", ("--dataset", "mnist", "--limit", "10000", "--optimizers", "sgd,adam",
                               "--schedules", "constant", "--epochs", "3")),
    ("mnist10k-rmsprop-1ep-b128", ("--dataset", "mnist", "--limit", "10000", "--optimizers", "rmsprop",
                                   "--batch-size", "128", "--epochs", "1")),
)


def run(name: str, args: tuple[str, ...], out: Path) -> dict:
    folder = out / "compare-lrfree" / name
    cmd = [str(Path(sys.executable).with_name("lrscout")), "compare", *args, "--lr-free", "--data-dir",
           common.DATA_DIR, "--out", str(folder), "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{name}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    return {"name": name, "args": list(args), "wall_seconds": time.perf_counter() - t0,
            "result": json.loads(done.stdout)}


def table(rows: list[dict]) -> str:
    lines = ["| setting | rank | optimizer | schedule | LR | val acc % | cost (runs) |",
             "| :--- | ---: | :--- | :--- | ---: | ---: | ---: |"]
    summary = []
    for row in rows:
        entries = row["result"]["entries"]
        for i, e in enumerate(entries, 1):
            kind = " (LR-free)" if e.get("lr_free") else ""
            lines.append(f"| {row['name']} | {i} | {e['optimizer']}{kind} | {e['schedule']} | {e['lr']:.4g} | "
                         f"{100 * float(e['score']):.2f} | {float(e['cost_runs']):.2f} |")
        tuned = [e for e in entries if not e.get("lr_free")]
        free = [e for e in entries if e.get("lr_free")]
        if tuned and free:
            gap = 100 * (float(tuned[0]["score"]) - float(free[0]["score"]))
            summary.append(f"- {row['name']}: best tuned entry {tuned[0]['optimizer']} ({tuned[0]['schedule']}) "
                           f"{'beats' if gap > 0 else 'trails'} the best LR-free one ({free[0]['optimizer']}) by "
                           f"{abs(gap):.2f} validation points; compare's pick: {entries[0]['optimizer']}; "
                           f"wall {row['wall_seconds'] / 60:.1f} min.")
    return "\n".join(lines + [""] + summary)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=common.BENCH_DIR / "results")
    ap.add_argument("--only", help="comma-separated setting names")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    rows = [run(n, args, a.out) for n, args in SETTINGS if only is None or n in only]
    env = common.environment()
    md = ("# `lrscout compare --lr-free`: tuned optimizers against LR-free ones\n\n" + common.env_line(env)
          + "\n\n" + table(rows) + "\n")
    common.write_result("compare-lrfree", md, {"environment": env, "rows": rows}, a.out)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
