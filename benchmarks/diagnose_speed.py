"""How long ``lrscout diagnose`` takes on long logs: reading a CSV, then the diagnosis.

    python benchmarks/diagnose_speed.py [--rows 10000,100000,1000000]

Writes a CSV of a noisy decaying loss (columns step, epoch, lr, loss, event, as lrscout's
own metrics.csv) for each size, then times ``read_loss_log`` and ``diagnose`` separately
(CPU seconds, best of 3) and the peak resident memory of the process.

Measured on the 2-core development machine (AMD EPYC, shared), lrscout at the commit that
made the rolling median near-linear:

==========  ========  ============  ======================================
rows        read (s)  diagnose (s)  before (diagnose, O(n * n/20) median)
==========  ========  ============  ======================================
10,000      0.02      0.03
100,000     0.17      0.19          35 s
1,000,000   1.7       1.5           12.5 min, 1.1 GB
==========  ========  ============  ======================================

Peak resident memory at 1,000,000 rows: 824 MiB, of which ~650 MiB is torch's import.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from lrscout.training import diagnose, read_loss_log


def write_log(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    loss = (2.3 * np.exp(-np.arange(n) / (n / 5)) + 0.05) * (1 + 0.05 * rng.standard_normal(n))
    with open(path, "w") as f:
        f.write("step,epoch,lr,loss,event\n")
        f.writelines(f"{i},{i // 1000 + 1},0.1,{float(v)!r},\n" for i, v in enumerate(loss))


def best_of(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("rows        read (s)  diagnose (s)  verdict")
        for n in (int(r) for r in args.rows.split(",")):
            path = Path(tmp) / f"log{n}.csv"
            write_log(path, n)
            log = read_loss_log(path)
            read_s = best_of(lambda: read_loss_log(path))
            diag_s = best_of(lambda: diagnose(log.steps, log.losses))
            verdict = diagnose(log.steps, log.losses).verdict
            print(f"{n:>10,}  {read_s:8.2f}  {diag_s:12.2f}  {verdict}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MiB (torch's import alone is ~650 MiB)")


if __name__ == "__main__":
    main()
