"""Quality benchmark: how good is each method's learning rate, and what did it cost?

For every task (a full protocol: data, model, optimizer, schedule, epochs, batch size,
seeds):

Tasks come in two sets (``Protocol.split``): the **development** set, on which lrscout's
rules and thresholds were measured and tuned, and the **held-out** set
(:data:`HELDOUT`), added with issue 11 and never used to tune anything: short
protocols (1 and 2 epochs, batches of 128, 256 and 16), a long cosine run, step decay
(StepLR every 10 epochs, gamma 0.1), USPS, and a colour task with BatchNorm and
augmentation (ResNet-18 on a CIFAR-10 subset). Later held-out sets (:data:`HELDOUT2`,
:data:`HELDOUT3`, :data:`HELDOUT4`, :data:`HELDOUT5`) were each fixed before any run of them, after the
previous one had been seen. All are reported side by side; only the held-out rows say how
well a rule carries over. (Fashion-MNIST and KMNIST are not in
``../shared/datasets``: nothing is downloaded, so they are not here.)

1. **Oracle.** Train every LR of a dense log grid (``per_decade`` points per decade) for
   every seed; the oracle LR is the one with the best *mean validation* accuracy; its
   *test* accuracy is the reference.
2. **Methods.** Each method picks an LR once per seed (model initialised and batches
   shuffled with that seed), then that LR is trained with the same protocol and seed and
   scored on test. A method with no usable suggestion falls back to the optimizer's
   habitual LR, and the run is counted as a failure.
3. **Reference** ("grid, own validation"): per seed, the grid LR that seed's own
   validation accuracy prefers; what a chooser reading the user's validation split reaches
   with all grid runs. Not ranked with the choosers. The **resolution** rows
   (:data:`NEAR_ORACLE`): the oracle LR moved an eighth of a decade down and up, trained
   on every seed: what a chooser that knows the oracle to a factor 1.33 scores.
4. **LR-free optimizers** (Prodigy, Schedule-Free AdamW, D-Adaptation Adam) replace the
   task's optimizer with their recommended defaults; their rows answer "what if you used
   no LR at all" and are the same runs for every task of the same data, model, length and
   batch (:meth:`Protocol.lr_free_group`; before session 11 they were shared by dataset
   alone, so the short and held-out tasks were compared with another protocol's LR-free
   runs).

Per method and task: chosen LR (geometric mean over seeds), distance to the oracle LR in
decades (mean ``|log10(lr / lr_oracle)|``), test accuracy (mean +- std), regret in accuracy
points (oracle mean test accuracy minus the method's; worst = the worst seed), selection
cost in seconds and in training-run equivalents (seconds / the task's median training-run
time), and failures: runs that collapsed by lrscout's own rule
(:func:`lrscout.selection.halving.collapse_note`: a NaN, or accuracy within chance of the
majority class with a loss no better than a uniform guess; re-flagged by the current rule
when tables are built, :func:`refresh_failed`).

Every training run and every finder result is cached (``benchmarks/cache/``), keyed by the
protocol, LR, seed and a hash of the code that produced it; a rerun only does what is
missing.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import common
from common import Cache, fmt_lr, lr_key, mean, median, md_table, std

log = logging.getLogger("bench.quality")

SRC = common.REPO_DIR / "src" / "lrscout"
#: Code whose change invalidates cached training runs (the protocol's implementation).
TRAIN_CODE = ("training/loop.py", "data.py", "models.py", "models", "optim.py", "task.py", "schedules")
#: Code whose change invalidates cached lrscout selections (find and select, not finetune/CLI).
LRSCOUT_CODE = ("engine", "curve", "selection", "backends", "schedules", "training", "state.py", "results.py",
                "protocol.py", "optim.py", "task.py", "data.py", "models.py", "models", "errors.py")


def code_hash(paths: Iterable[str] | None = None) -> str:
    """sha1 over what lrscout source files do (all of ``src/lrscout`` when ``paths`` is None).

    Each file is hashed as its syntax tree without docstrings, comments, layout or the
    annotations of function signatures (:func:`behaviour_dump`), so an edit of types or
    prose does not invalidate an hour of cached training runs; any change to code does."""
    files: list[Path] = []
    for rel in paths if paths is not None else [""]:
        p = SRC / rel
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    h = hashlib.sha1()
    for f in files:
        if f.exists():
            h.update(str(f.relative_to(SRC)).encode())
            h.update(behaviour_dump(f.read_text()).encode())
    return h.hexdigest()[:12]


def behaviour_dump(source: str) -> str:
    """The syntax tree of ``source`` as text, less what cannot change what it computes:
    docstrings, comments, formatting, and parameter and return annotations (annotated
    assignments keep theirs: a dataclass field is declared by one)."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
        if isinstance(node, ast.arg):
            node.annotation = None
    return ast.dump(tree, include_attributes=False)


# ---------------------------------------------------------------------------- protocols


@dataclass(frozen=True)
class Protocol:
    """One task: everything that defines a training run except LR and seed."""

    name: str
    dataset: str
    optimizer: str
    schedule: str  # "constant" or a kind in lrscout.schedules.SCHEDULES
    epochs: int
    batch_size: int
    seeds: tuple[int, ...]
    limit: int | None = None
    model: str = "simplecnn"
    augment: bool = False
    split: str = "dev"  # "dev": rules were tuned on it; "heldout": never looked at while tuning

    def task(self, seed: int = 0) -> Any:
        from lrscout.task import Task

        return Task(dataset=self.dataset, model=self.model, optimizer=self.optimizer, batch_size=self.batch_size,
                    seed=seed, device="cpu", data_dir=common.DATA_DIR, limit=self.limit, augment=self.augment)

    def key(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("seeds", "name", "split"):
            d.pop(k)
        if not d["augment"]:
            d.pop("augment")  # keys of the protocols from before augmentation existed stay valid
        return d

    def lr_free_group(self) -> str:
        """Name of the LR-free runs this task shares: an LR-free optimizer replaces the task's
        optimizer and schedule, so tasks with the same data, model, length and batch share
        its runs (the 10-epoch digits tasks do), and no others do."""
        data = self.dataset + (f"{self.limit // 1000}k" if self.limit else "")
        return f"{data}-{self.model}-{self.epochs}ep-b{self.batch_size}" + ("-aug" if self.augment else "")

    def describe(self) -> str:
        sched = "constant LR" if self.schedule == "constant" else f"{self.schedule} schedule"
        if self.schedule == "step":
            sched = f"step decay (x0.1 every {max(1, self.epochs // 3)} epochs)"
        data = self.dataset + (f" ({self.limit} train+val images)" if self.limit else "")
        aug = ", augmented" if self.augment else ""
        epochs = f"{self.epochs} epoch" + ("s" if self.epochs != 1 else "")
        return f"{data}{aug}, {self.model}, {self.optimizer}, {sched}, {epochs}, batch {self.batch_size}"


#: A task row: (name, dataset, optimizer, schedule, epochs, batch, limit, model, augment).
TaskRows = tuple[tuple[str, str, str, str, int, int, int | None, str, bool], ...]

#: The task sets and how tables name them; every task belongs to one.
SPLIT_LABELS = {"dev": "dev", "heldout": "held-out 1 (seen)", "heldout2": "held-out 2", "heldout3": "held-out 3",
                "heldout4": "held-out 4", "heldout5": "held-out 5", "heldout6": "held-out 6",
                "heldout7": "held-out 7", "heldout8": "held-out 8"}


#: The held-out protocols: (name, dataset, optimizer, schedule, epochs, batch, limit, model, augment).
#: Chosen before any run of them and not used to tune anything (issue 11). ``step`` is
#: lrscout's StepLR (step_size = epochs // 3 = 10 epochs here, gamma 0.1).
HELDOUT: TaskRows = (
    ("digits-sgd-1ep-b128", "digits", "sgd", "constant", 1, 128, None, "simplecnn", False),
    ("digits-adam-2ep-b256", "digits", "adam", "constant", 2, 256, None, "simplecnn", False),
    ("mnist3k-sgdm-cosine-1ep-b16", "mnist", "sgdm", "cosine", 1, 16, 3000, "simplecnn", False),
    ("mnist-rmsprop-1ep-b128", "mnist", "rmsprop", "constant", 1, 128, 10_000, "simplecnn", False),
    ("usps-adam-3ep", "usps", "adam", "constant", 3, 64, None, "simplecnn", False),
    ("digits-sgdm-step-30ep", "digits", "sgdm", "step", 30, 64, None, "simplecnn", False),
    ("digits-sgdm-cosine-60ep", "digits", "sgdm", "cosine", 60, 64, None, "simplecnn", False),
    ("cifar3k-resnet18-sgdm-cosine-aug", "cifar10", "sgdm", "cosine", 3, 64, 3000, "resnet18", True),
)


#: Short development protocols (added in session 10): rules for protocols of a few dozen
#: steps are measured and tuned on these, never on the held-out short protocols.
DEV_SHORT: TaskRows = (
    ("digits-sgdm-1ep-b64", "digits", "sgdm", "constant", 1, 64, None, "simplecnn", False),
    ("digits-sgd-2ep-b256", "digits", "sgd", "constant", 2, 256, None, "simplecnn", False),
    ("digits-rmsprop-2ep-b128", "digits", "rmsprop", "constant", 2, 128, None, "simplecnn", False),
    ("digits-adam-cosine-1ep-b32", "digits", "adam", "cosine", 1, 32, None, "simplecnn", False),
    ("mnist3k-adam-1ep-b32", "mnist", "adam", "constant", 1, 32, 3000, "simplecnn", False),
    # session 11: adaptive optimizers on the shortest protocols, where the first held-out
    # set showed the horizon rule of session 10 failing (Adam at 10 steps, RMSprop at 66)
    ("digits-adam-1ep-b128", "digits", "adam", "constant", 1, 128, None, "simplecnn", False),
    ("mnist3k-rmsprop-2ep-b256", "mnist", "rmsprop", "constant", 2, 256, 3000, "simplecnn", False),
    ("digits-adamw-2ep-b64", "digits", "adamw", "constant", 2, 64, None, "simplecnn", False),
    ("mnist3k-adam-2ep-b128", "mnist", "adam", "constant", 2, 128, 3000, "simplecnn", False),
    # session 12: plain SGD (no momentum) on short protocols; the two worst held-out tasks of
    # session 11 were plain SGD at 2 epochs, and the development set had one such protocol
    ("digits-sgd-1ep-b32", "digits", "sgd", "constant", 1, 32, None, "simplecnn", False),
    ("mnist3k-sgd-1ep-b32", "mnist", "sgd", "constant", 1, 32, 3000, "simplecnn", False),
    ("usps-sgd-1ep-b64", "usps", "sgd", "constant", 1, 64, None, "simplecnn", False),
    ("mnist-sgd-2ep-b128", "mnist", "sgd", "constant", 2, 128, 10_000, "simplecnn", False),
    ("digits-sgd-3ep-b64", "digits", "sgd", "constant", 3, 64, None, "simplecnn", False),
)


#: The second held-out set (session 11), fixed before any run of it: the first one was
#: seen with the horizon rule of session 10, so it no longer tells whether a rule carries
#: over. Run once, after the rules were chosen on the development set.
HELDOUT2: TaskRows = (
    ("usps-sgdm-1ep-b128", "usps", "sgdm", "constant", 1, 128, None, "simplecnn", False),
    ("mnist-adam-1ep-b256", "mnist", "adam", "constant", 1, 256, 10_000, "simplecnn", False),
    ("digits-rmsprop-1ep-b32", "digits", "rmsprop", "constant", 1, 32, None, "simplecnn", False),
    ("mnist3k-sgd-2ep-b64", "mnist", "sgd", "constant", 2, 64, 3000, "simplecnn", False),
    ("usps-adamw-2ep-b128", "usps", "adamw", "constant", 2, 128, None, "simplecnn", False),
    ("digits-adam-step-15ep", "digits", "adam", "step", 15, 64, None, "simplecnn", False),
)


#: The third held-out set (session 11), fixed before any run of it, after held-out 2 had
#: been scored once with the 1/3-decade horizon ladder: short constant-LR protocols, the
#: regime a later rule change (two verified finalists) acts on. Run once, after that
#: rule was chosen on the development set.
HELDOUT3: TaskRows = (
    ("usps-rmsprop-1ep-b64", "usps", "rmsprop", "constant", 1, 64, None, "simplecnn", False),
    ("mnist-sgdm-1ep-b128", "mnist", "sgdm", "constant", 1, 128, 10_000, "simplecnn", False),
    ("digits-adamw-1ep-b32", "digits", "adamw", "constant", 1, 32, None, "simplecnn", False),
    ("mnist3k-adam-1ep-b64", "mnist", "adam", "constant", 1, 64, 3000, "simplecnn", False),
    ("usps-sgd-2ep-b256", "usps", "sgd", "constant", 2, 256, None, "simplecnn", False),
    ("digits-sgdm-3ep-b128", "digits", "sgdm", "constant", 3, 128, None, "simplecnn", False),
)


#: The fourth held-out set (session 12), fixed and committed before any run of it, before
#: the session's development runs: held-out 2 and 3 have been scored, so they no longer
#: tell whether a rule carries over. Every optimizer family, 1 to 5 epochs, batches 32 to
#: 256, one cosine schedule. Run once, after the session's rules were chosen.
HELDOUT4: TaskRows = (
    ("mnist3k-sgd-1ep-b64", "mnist", "sgd", "constant", 1, 64, 3000, "simplecnn", False),
    ("usps-sgd-2ep-b128", "usps", "sgd", "constant", 2, 128, None, "simplecnn", False),
    ("digits-sgd-5ep-b128", "digits", "sgd", "constant", 5, 128, None, "simplecnn", False),
    ("digits-sgdm-2ep-b32", "digits", "sgdm", "constant", 2, 32, None, "simplecnn", False),
    ("mnist3k-sgdm-cosine-2ep-b64", "mnist", "sgdm", "cosine", 2, 64, 3000, "simplecnn", False),
    ("mnist-rmsprop-2ep-b128", "mnist", "rmsprop", "constant", 2, 128, 10_000, "simplecnn", False),
    ("usps-adam-2ep-b256", "usps", "adam", "constant", 2, 256, None, "simplecnn", False),
    ("digits-adamw-3ep-b256", "digits", "adamw", "constant", 3, 256, None, "simplecnn", False),
)


#: The fifth held-out set (session 13), fixed and committed before any run of it: held-out
#: 1-4 have all been scored. No rule of ``select`` was changed in session 13, so this set
#: measures the rules of session 12 on protocols they have never seen. Combinations not in
#: any earlier set: every optimizer family, 1 to 5 epochs, batches 32 to 256, one cosine.
HELDOUT5: TaskRows = (
    ("usps-sgdm-2ep-b32", "usps", "sgdm", "constant", 2, 32, None, "simplecnn", False),
    ("mnist3k-rmsprop-1ep-b32", "mnist", "rmsprop", "constant", 1, 32, 3000, "simplecnn", False),
    ("digits-adam-3ep-b32", "digits", "adam", "constant", 3, 32, None, "simplecnn", False),
    ("mnist-adamw-1ep-b128", "mnist", "adamw", "constant", 1, 128, 10_000, "simplecnn", False),
    ("usps-sgd-1ep-b128", "usps", "sgd", "constant", 1, 128, None, "simplecnn", False),
    ("digits-sgd-2ep-b64", "digits", "sgd", "constant", 2, 64, None, "simplecnn", False),
    ("mnist3k-adam-cosine-2ep-b128", "mnist", "adam", "cosine", 2, 128, 3000, "simplecnn", False),
    ("digits-rmsprop-5ep-b256", "digits", "rmsprop", "constant", 5, 256, None, "simplecnn", False),
)


#: The sixth held-out set (session 14), fixed and committed before any run of it and before
#: the session's rule change (the verified pair's spacing, chosen on the development
#: evidence): held-out 1-5 have all been scored. Combinations not in any earlier set: three
#: plain-SGD protocols (the weak spot of every earlier set), batches 16 to 256, 1 to 5 epochs,
#: one cosine.
HELDOUT6: TaskRows = (
    ("digits-sgd-1ep-b16", "digits", "sgd", "constant", 1, 16, None, "simplecnn", False),
    ("mnist-sgd-1ep-b256", "mnist", "sgd", "constant", 1, 256, 10_000, "simplecnn", False),
    ("usps-sgd-3ep-b64", "usps", "sgd", "constant", 3, 64, None, "simplecnn", False),
    ("mnist3k-sgdm-1ep-b256", "mnist", "sgdm", "constant", 1, 256, 3000, "simplecnn", False),
    ("usps-sgdm-cosine-2ep-b128", "usps", "sgdm", "cosine", 2, 128, None, "simplecnn", False),
    ("usps-rmsprop-2ep-b32", "usps", "rmsprop", "constant", 2, 32, None, "simplecnn", False),
    ("mnist3k-adamw-2ep-b32", "mnist", "adamw", "constant", 2, 32, 3000, "simplecnn", False),
    ("digits-adam-5ep-b64", "digits", "adam", "constant", 5, 64, None, "simplecnn", False),
)


#: The seventh held-out set (session 15), fixed and committed before any run of it: held-out
#: 1-6 have all been scored. No rule of ``select`` was changed in session 15, so this set
#: measures session 14's rules on protocols they have never seen. Combinations not in any
#: earlier set: three plain-SGD protocols, a short step decay (StepLR every epoch), batches
#: 16 to 256, 1 to 3 epochs.
HELDOUT7: TaskRows = (
    ("usps-adam-1ep-b32", "usps", "adam", "constant", 1, 32, None, "simplecnn", False),
    ("mnist3k-sgd-2ep-b128", "mnist", "sgd", "constant", 2, 128, 3000, "simplecnn", False),
    ("digits-sgdm-step-3ep-b64", "digits", "sgdm", "step", 3, 64, None, "simplecnn", False),
    ("mnist-adam-2ep-b64", "mnist", "adam", "constant", 2, 64, 10_000, "simplecnn", False),
    ("usps-rmsprop-1ep-b256", "usps", "rmsprop", "constant", 1, 256, None, "simplecnn", False),
    ("digits-sgd-2ep-b32", "digits", "sgd", "constant", 2, 32, None, "simplecnn", False),
    ("mnist3k-adamw-1ep-b16", "mnist", "adamw", "constant", 1, 16, 3000, "simplecnn", False),
    ("usps-sgd-1ep-b32", "usps", "sgd", "constant", 1, 32, None, "simplecnn", False),
)


#: The eighth held-out set (session 16), fixed and committed before any run of it and before
#: any run of the rule it judges: held-out 1-7 have all been scored, and every one of them
#: has 6-8 tasks, whose 95% interval is over a point wide. Twice as many tasks, so that a
#: paired comparison of two rules on it can tell a few tenths. Combinations not in any
#: earlier set, a new MNIST split size (6,000 train+val images), every optimizer family, 1
#: to 6 epochs, batches 32 to 256, two cosine schedules and a plain-SGD step decay.
#:
#: Registered before any run: session 16 scores on it both the rule of session 14 (two
#: verified finalists, the 3rd and 4th ladder points from the top, after a range test of a
#: fifth of the budget) and the rule chosen on the development evidence alone
#: (``benchmarks/results/ablation-short.md``, session 16: three candidates, the 3rd to 5th
#: ladder points, cut at an eighth of the protocol, the worst dropped, two to the end, after
#: a range test of 0.15 of the budget), and keeps the new rule only if its mean regret over
#: this set (3 seeds) is below the old rule's. Outcome: +0.95 against +0.61, reverted
#: (``results/ablation-short.md``, session 16); the set has been seen since.
HELDOUT8: TaskRows = (
    ("digits-sgd-1ep-b64", "digits", "sgd", "constant", 1, 64, None, "simplecnn", False),
    ("usps-sgd-2ep-b32", "usps", "sgd", "constant", 2, 32, None, "simplecnn", False),
    ("mnist6k-sgd-1ep-b128", "mnist", "sgd", "constant", 1, 128, 6000, "simplecnn", False),
    ("mnist6k-sgd-3ep-b256", "mnist", "sgd", "constant", 3, 256, 6000, "simplecnn", False),
    ("digits-sgd-4ep-b32", "digits", "sgd", "constant", 4, 32, None, "simplecnn", False),
    ("usps-sgdm-3ep-b256", "usps", "sgdm", "constant", 3, 256, None, "simplecnn", False),
    ("mnist6k-sgdm-2ep-b64", "mnist", "sgdm", "constant", 2, 64, 6000, "simplecnn", False),
    ("digits-adam-1ep-b64", "digits", "adam", "constant", 1, 64, None, "simplecnn", False),
    ("usps-adam-2ep-b64", "usps", "adam", "constant", 2, 64, None, "simplecnn", False),
    ("mnist6k-adamw-2ep-b256", "mnist", "adamw", "constant", 2, 256, 6000, "simplecnn", False),
    ("usps-adamw-1ep-b64", "usps", "adamw", "constant", 1, 64, None, "simplecnn", False),
    ("digits-rmsprop-3ep-b64", "digits", "rmsprop", "constant", 3, 64, None, "simplecnn", False),
    ("mnist6k-rmsprop-1ep-b64", "mnist", "rmsprop", "constant", 1, 64, 6000, "simplecnn", False),
    ("usps-sgdm-cosine-3ep-b64", "usps", "sgdm", "cosine", 3, 64, None, "simplecnn", False),
    ("digits-adam-cosine-4ep-b128", "digits", "adam", "cosine", 4, 128, None, "simplecnn", False),
    ("usps-sgd-step-6ep-b128", "usps", "sgd", "step", 6, 128, None, "simplecnn", False),
)


@dataclass(frozen=True)
class QualityConfig:
    digits_seeds: tuple[int, ...] = (0, 1, 2)
    mnist_seeds: tuple[int, ...] = (0, 1, 2)
    digits_epochs: int = 10
    mnist_epochs: int = 3
    mnist_limit: int = 10_000
    batch_size: int = 64
    grid_low: float = 1e-4
    grid_high: float = 10.0
    per_decade: int = 4
    optimizers: tuple[tuple[str, str], ...] = (
        ("sgd", "constant"), ("sgdm", "cosine"), ("adam", "constant"), ("rmsprop", "constant"))
    datasets: tuple[str, ...] = ("digits", "mnist")
    jobs: int = 2
    select: bool = True  # include lrscout.select when the package has it
    dev_short: TaskRows = DEV_SHORT
    heldout: TaskRows = HELDOUT
    heldout_seeds: tuple[int, ...] = (0, 1, 2)
    heldout2: TaskRows = HELDOUT2
    heldout3: TaskRows = HELDOUT3
    heldout4: TaskRows = HELDOUT4
    heldout5: TaskRows = HELDOUT5
    heldout6: TaskRows = HELDOUT6
    heldout7: TaskRows = HELDOUT7
    heldout8: TaskRows = HELDOUT8
    #: the 8 long development protocols and held-out 1 (10-60 epochs, the colour task):
    #: False leaves them out (``run.py --hour``: the short-protocol sets fit in an hour)
    long_tasks: bool = True
    only: tuple[str, ...] = ()  # run just these task names (a reduced run; empty: all)

    def protocols(self) -> list[Protocol]:
        out = []
        for ds in self.datasets if self.long_tasks else ():
            seeds = self.digits_seeds if ds == "digits" else self.mnist_seeds
            epochs = self.digits_epochs if ds == "digits" else self.mnist_epochs
            limit = None if ds == "digits" else self.mnist_limit
            for opt, sched in self.optimizers:
                name = f"{ds}-{opt}" + ("" if sched == "constant" else f"-{sched}")
                out.append(Protocol(name, ds, opt, sched, epochs, self.batch_size, tuple(seeds), limit))
        for split in SPLIT_LABELS:
            seeds = tuple(self.digits_seeds if split == "dev" else self.heldout_seeds)
            for name, ds, opt, sched, epochs, batch, limit, model, augment in self.split_rows(split):
                out.append(Protocol(name, ds, opt, sched, epochs, batch, seeds, limit, model, augment, split=split))
        if self.only:
            unknown = sorted(set(self.only) - {p.name for p in out})
            if unknown:
                raise ValueError(f"unknown task(s) {unknown}; known: {[p.name for p in out]}")
            out = [p for p in out if p.name in self.only]
        return out

    def split_rows(self, split: str) -> TaskRows:
        """The task rows of ``split`` (a key of :data:`SPLIT_LABELS`): the short development
        protocols, held-out 1 (none without the long tasks), or the field named after the set."""
        if split == "dev":
            return self.dev_short
        if split == "heldout":
            return self.heldout if self.long_tasks else ()
        rows: TaskRows = getattr(self, split)
        return rows

    def grid(self) -> list[float]:
        lo, hi = math.log10(self.grid_low), math.log10(self.grid_high)
        n = int(round((hi - lo) * self.per_decade)) + 1
        return [float(fmt_lr(10 ** (lo + i / self.per_decade))) for i in range(n)]


QUICK = QualityConfig(digits_seeds=(0, 1), mnist_seeds=(0,), digits_epochs=3, mnist_epochs=2, mnist_limit=3000,
                      grid_low=1e-4, grid_high=1.0, per_decade=2,
                      optimizers=(("sgdm", "cosine"), ("adam", "constant")),
                      dev_short=DEV_SHORT[:1], heldout=HELDOUT[:1], heldout_seeds=(0,), heldout2=(), heldout3=(),
                      heldout4=(), heldout5=(), heldout6=(), heldout7=(), heldout8=())


# ---------------------------------------------------------------------------- one training run


def train_run(protocol: Protocol, seed: int, lr: float | None, lr_free: str | None, cache_key: dict[str, Any],
              cache_root: str) -> dict[str, Any]:
    """Train one (protocol, LR or LR-free optimizer, seed) and score it; cached."""
    cache = Cache(Path(cache_root))
    name = f"{protocol.name}-{lr_free or lr_key(lr or 0)}-s{seed}"
    hit = cache.get("runs", name, cache_key)
    if hit is not None:
        return hit
    from lrscout.optim import set_mode
    from lrscout.schedules import schedule_for
    from lrscout.training.loop import evaluate, fit

    from competitors import LR_FREE

    task = protocol.task(seed)
    splits = task.splits()
    model = task.build_model(splits.info, seed=seed)
    train_loader = splits.loader("train", protocol.batch_size, seed=seed, augment=protocol.augment)
    steps = len(train_loader)
    if lr_free is not None:
        optimizer, scheduler = LR_FREE[lr_free].build(model.parameters(), protocol.epochs * steps)
    else:
        assert lr is not None
        optimizer = task.build_optimizer(model.parameters(), lr)
        scheduler = None
        if protocol.schedule != "constant":
            scheduler = schedule_for(lr, protocol.schedule, protocol.epochs, steps).build(optimizer)
    t0 = time.perf_counter()
    result = fit(model, optimizer, train_loader, splits.loader("val", 512), epochs=protocol.epochs,
                 scheduler=scheduler)
    set_mode(optimizer, False)
    test_loss, test_acc = evaluate(model, splits.loader("test", 512))
    seconds = time.perf_counter() - t0
    record = {
        "protocol": protocol.name, "seed": seed, "lr": lr, "lr_free": lr_free,
        "val_acc": result.final_val_acc, "test_acc": test_acc, "val_loss": result.final_val_loss,
        "test_loss": test_loss if math.isfinite(test_loss) else None,
        "stopped": result.stopped, "seconds": seconds, "steps": len(result.step_loss),
    }
    return cache.put("runs", name, cache_key, {**record, "failed": run_collapsed(record, val_stats(splits))})


def val_stats(splits: Any) -> tuple[float, int, int, float]:
    """(majority-class share, size, number of classes, loss of guessing the class
    frequencies) of a task's validation split: what lrscout's collapse rule needs to know
    about the data."""
    from lrscout.protocol import label_stats

    majority, n, prior = label_stats(splits.val.tensors[1])
    return majority, n, splits.info.num_classes, prior


def run_collapsed(run: dict[str, Any], stats: tuple[float, int, int, float]) -> bool:
    """Whether a training run collapsed (diverged, or learned nothing) by lrscout's one rule,
    :func:`lrscout.selection.halving.collapse_note`, as its trials use it."""
    from lrscout.selection.halving import collapse_note

    majority, n_val, classes, prior = stats
    loss = run.get("val_loss")
    finite = loss is not None and math.isfinite(loss)
    return collapse_note(run["val_acc"], loss if finite else None, stopped=run.get("stopped"), majority=majority,
                         n_val=n_val, num_classes=classes, prior=prior) is not None


# ---------------------------------------------------------------------------- selection methods

#: finder -> the method rows it produces (one range test can give several suggestions).
FINDER_ROWS: dict[str, tuple[str, ...]] = {
    "lrscout-find": ("lrscout-find",),
    "lrscout-select": ("lrscout-select",),
    "lrscout-select@3.5": ("lrscout-select@3.5",),
    "fastai": ("fastai-valley", "fastai-steep", "fastai-minimum", "fastai-slide"),
    "torch-lr-finder": ("torch-lr-finder",),
    "lightning": ("lightning",),
}

#: lrscout.select rows -> their budget in training runs (None: select's default). The
#: second row shows what a larger budget buys.
SELECT_BUDGETS: dict[str, float | None] = {"lrscout-select": None, "lrscout-select@3.5": 3.5}

_warm = False


def _warm_up(task: Any, splits: Any) -> None:
    """A few throwaway steps so the first timed finder in a process does not pay for
    torch's lazy initialisation (oneDNN primitives, allocator growth)."""
    global _warm
    if _warm:
        return
    import torch

    model = task.build_model(splits.info, seed=12345)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for i, (x, y) in enumerate(splits.loader("train", task.batch_size, seed=0)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if i == 5:
            break
    _warm = True


#: What a user runs: a fresh Python process that imports lrscout, loads the data and selects.
_SELECT_CHILD = """
import json, sys
import lrscout
from lrscout.task import Task
args = json.loads(sys.argv[1])
r = lrscout.select(Task(**args["task"]), epochs=args["epochs"], schedule=args["schedule"], **args["kwargs"])
print("RESULT " + json.dumps({"lr": r.lr, "runs": r.cost_runs, "score": r.score, "seconds": r.seconds,
      "candidates": [c.lr for c in r.candidates], "find_lr": r.find.lr, "find_runs": r.config["find_cost_runs"],
      "plan": r.plan.to_json(), "notes": list(r.notes)}))
"""


class SelectKilled(RuntimeError):
    """The selection's process was killed by a signal (the benchmark stopped, the OOM
    killer): no outcome of lrscout's, so it is never cached as a failed selection."""


def _run_select(protocol: Protocol, seed: int, budget: float | None = None) -> tuple[float | None, dict[str, Any], float]:
    """``lrscout.select`` on the task with its defaults (candidates; budget unless given), in a
    fresh process as a user runs it: its chosen LR, its own record (cost in training runs of
    the protocol, range test included), and the wall seconds of the whole process
    (interpreter start-up, imports and data loading included)."""
    import json
    import os
    import subprocess
    import sys

    args = {"task": protocol.task(seed).to_json(), "epochs": protocol.epochs, "schedule": protocol.schedule,
            "kwargs": {} if budget is None else {"budget": budget}}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(common.REPO_DIR / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _SELECT_CHILD, json.dumps(args)], capture_output=True, text=True,
                         env=env, cwd=str(common.REPO_DIR), timeout=3600)
    wall = time.perf_counter() - t0
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode < 0:
        raise SelectKilled(f"the selection process was killed by signal {-out.returncode}")
    if out.returncode != 0 or not lines:
        raise RuntimeError((out.stderr.strip().splitlines() or ["select failed"])[-1])
    record = json.loads(lines[-1][len("RESULT "):])
    extra = {k: v for k, v in record.items() if k != "lr"}
    extra["seconds_in_process"] = extra.pop("seconds")
    return float(record["lr"]), extra, wall


def select_run(protocol: Protocol, seed: int, finder: str, cache_key: dict[str, Any], cache_root: str) -> dict[str, Any]:
    """Run one finder on (protocol, seed); cached. Returns suggestions by row name."""
    cache = Cache(Path(cache_root))
    name = f"{protocol.name}-{finder}-s{seed}"
    hit = cache.get("select", name, cache_key)
    if hit is not None:
        return hit
    from competitors import FINDERS, Setup

    task = protocol.task(seed)
    splits = task.splits()
    _warm_up(task, splits)
    error = None
    extra: dict[str, Any] = {}
    try:
        if finder in SELECT_BUDGETS:
            lr, extra, seconds = _run_select(protocol, seed, SELECT_BUDGETS[finder])
            steps = None
            suggestions: dict[str, float | None] = {finder: lr}
        else:
            adapter = FINDERS["lrscout" if finder == "lrscout-find" else finder]
            model = task.build_model(splits.info, seed=seed)
            setup = Setup(lambda params, lr: task.build_optimizer(params, lr),
                          splits.loader("train", protocol.batch_size, seed=seed, augment=protocol.augment),
                          _default_lr(protocol.optimizer))
            found = adapter(model, setup)
            suggestions, seconds, steps, extra = found.suggestions, found.seconds, found.steps, found.extra
    except SelectKilled:
        raise
    except Exception as exc:  # a finder that crashes is a failed selection, not a crashed benchmark
        log.warning("%s failed on %s seed %d: %s", finder, protocol.name, seed, exc)
        error = f"{type(exc).__name__}: {exc}"[:300]
        suggestions, seconds, steps = {row: None for row in FINDER_ROWS[finder]}, math.nan, None
    return cache.put("select", name, cache_key, {
        "protocol": protocol.name, "seed": seed, "finder": finder, "suggestions": suggestions,
        "seconds": seconds, "steps": steps, "error": error, "extra": extra,
    })


def available_lr_free() -> list[str]:
    """The LR-free optimizers whose package is installed (all of them with the bench extra)."""
    import importlib.util

    from competitors import LR_FREE

    modules = {"prodigy": "prodigyopt", "schedulefree": "schedulefree", "dadapt-adam": "dadaptation"}
    return [n for n in LR_FREE if importlib.util.find_spec(modules.get(n, n)) is not None]


def has_select() -> bool:
    import lrscout

    return callable(getattr(lrscout, "select", None))


# ---------------------------------------------------------------------------- orchestration


@dataclass
class Collected:
    runs: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)  # (protocol, lr|lrfree, seed)
    selections: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)  # (protocol, finder, seed)
    cached: int = 0  # items read from the cache rather than computed in this run

    @property
    def total(self) -> int:
        return len(self.runs) + len(self.selections)


def _default_lr(optimizer: str) -> float:
    from lrscout.optim import get_optimizer

    return get_optimizer(optimizer).default_lr


def collect(cfg: QualityConfig, cache_root: Path, progress: Callable[[str], None] = print) -> Collected:
    """Run (or read from cache) every selection and training run the tables need."""
    from competitors import LR_FREE

    import importlib.metadata as md

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    train_hash = code_hash(TRAIN_CODE)
    lrscout_hash = code_hash(LRSCOUT_CODE)
    finder_version = {
        "lrscout-find": lrscout_hash, **{name: lrscout_hash for name in SELECT_BUDGETS},
        "fastai": version("fastai"), "torch-lr-finder": version("torch-lr-finder"),
        "lightning": version("pytorch-lightning"),
    }
    finders = ["lrscout-find"] + [f for f in ("fastai", "torch-lr-finder", "lightning") if finder_version[f]]
    missing = [f for f in ("fastai", "torch-lr-finder", "lightning") if not finder_version[f]]
    if missing:  # the bench extra installs them; without it their rows are left out, and said so
        progress(f"  quality: not installed, left out: {', '.join(missing)}")
    lr_free = available_lr_free()
    if cfg.select and has_select():
        finders[1:1] = list(SELECT_BUDGETS)
    protocols = cfg.protocols()
    grid = cfg.grid()
    out = Collected()
    root = str(cache_root)

    def run_key(p: Protocol, lr: float | None, lr_free: str | None, seed: int) -> dict[str, Any]:
        proto = p.key()
        if lr_free is not None:  # the LR-free optimizer replaces the task's optimizer and schedule
            proto = {**proto, "optimizer": lr_free, "schedule": "lr-free"}
        return {"protocol": proto, "lr": None if lr is None else lr_key(lr), "lr_free": lr_free, "seed": seed,
                "code": train_hash}

    pending: dict[cf.Future[dict[str, Any]], tuple[str, tuple[str, str, int]]] = {}
    submitted: set[tuple[str, str, int]] = set()
    t_start = time.perf_counter()
    done_count = 0

    with common.pool(cfg.jobs) as ex:

        def submit_run(p: Protocol, lr: float | None, seed: int, lr_free: str | None = None) -> None:
            tag = lr_free if lr_free is not None else lr_key(lr or 0)
            k = (p.name if lr_free is None else p.lr_free_group(), tag, seed)
            if k in submitted:
                return
            submitted.add(k)
            proto = p if lr_free is None else dataclasses.replace(p, name=p.lr_free_group())
            fut = ex.submit(train_run, proto, seed, None if lr is None else float(lr), lr_free,
                            run_key(p, lr, lr_free, seed), root)
            pending[fut] = ("run", k)

        # selections first (their LRs feed more training runs), in a seeded random order so no
        # finder is always timed next to the same neighbour in the other worker
        jobs = [(p, seed, finder) for p in protocols for seed in p.seeds for finder in finders]
        random.Random(0).shuffle(jobs)
        for p, seed, finder in jobs:
            key = {"protocol": p.key(), "finder": finder, "seed": seed, "version": finder_version[finder]}
            fut = ex.submit(select_run, p, seed, finder, key, root)
            pending[fut] = ("select", (p.name, finder, seed))
        for p in protocols:
            for seed in p.seeds:
                submit_run(p, _default_lr(p.optimizer), seed)
                for lr in grid:
                    submit_run(p, lr, seed)
                for name in lr_free:
                    submit_run(p, None, seed, lr_free=name)
        by_name = {p.name: p for p in protocols}

        def drain() -> None:
            nonlocal done_count
            while pending:
                finished, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for fut in finished:
                    kind, k = pending.pop(fut)
                    result = fut.result()
                    done_count += 1
                    out.cached += bool(result.get("from_cache"))
                    if kind == "select":
                        out.selections[k] = result
                        p = by_name[k[0]]
                        for lr in result["suggestions"].values():
                            submit_run(p, lr if lr is not None else _default_lr(p.optimizer), k[2])
                    else:
                        out.runs[k] = result
                    if done_count % 25 == 0 or not pending:
                        progress(f"  quality: {done_count} done, {len(pending)} pending, "
                                 f"{time.perf_counter() - t_start:.0f} s")

        drain()
        # the resolution floor needs the oracle, so it waits for the whole grid
        for p in protocols:
            oracle = grid_oracle(p, grid, lambda lr, s: out.runs.get((p.name, lr_key(lr), s)))
            for seed in p.seeds if oracle is not None else ():
                for lr in near_oracle(oracle):
                    submit_run(p, lr, seed)
        drain()
    refresh_failed(protocols, out.runs)
    return out


def refresh_failed(protocols: list[Protocol], runs: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    """Mark each run collapsed or not by lrscout's rule *now*: a cached run keeps the flag
    of the code that trained it, and the rule (:func:`lrscout.selection.halving.collapse_note`)
    can change without the training code changing (session 12 widened its chance band)."""
    by_name = {p.lr_free_group(): p for p in protocols} | {p.name: p for p in protocols}
    stats: dict[tuple[str, int | None, int], tuple[float, int, int]] = {}
    for (name, _, seed), r in runs.items():
        p = by_name.get(name)
        if p is None:
            continue
        k = (p.dataset, p.limit, seed)
        if k not in stats:
            stats[k] = val_stats(p.task(seed).splits())
        r["failed"] = run_collapsed(r, stats[k])


# ---------------------------------------------------------------------------- tables


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _pts(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:+.{digits}f}"


def _costs(row: dict[str, Any]) -> tuple[str, str]:
    """The cost cells (seconds, runs) of a method or summary row: 0 for rows that choose
    nothing (the default LR, LR-free optimizers), "-" for the resolution rows, which are
    not choosers with a cost, else the measured cost."""
    if row["method"] in NEAR_ORACLE:
        return "-", "-"
    if row["kind"] in ("default", "lr-free"):
        return "0", "0"
    return f"{row['seconds']:.1f}", f"{row['runs_equiv']:.2f}"


@dataclass(frozen=True)
class Pick:
    """One seed of one method: the LR it chose, the LR trained, the selection record."""

    seed: int
    lr: float | None  # chosen (None: no suggestion, or an LR-free optimizer)
    used: float | None  # trained (the default LR when the finder gave none)
    selection: dict[str, Any] | None = None
    no_lr: bool = False
    lr_free: str | None = None


#: The reference row: per seed, the grid LR that seed's own validation split prefers.
OWN_VALIDATION = "grid, own validation"
#: Rows that are not LR choosers of the task's optimizer: they never "win" a task.
NOT_CHOOSERS = ("lr-free", "reference")


def own_validation_pick(grid: list[float], run: Callable[[float], dict[str, Any] | None]) -> float | None:
    """The grid LR with the best validation accuracy of one seed's runs (ties: lower
    validation loss, then lower LR); ``None`` when a grid run is missing. The grid oracle
    picks by the *mean* over seeds; this is what one seed's validation split allows, so its
    regret is the floor that noise puts under any chooser that reads one validation split."""
    done = [(lr, run(lr)) for lr in grid]
    if any(r is None for _, r in done):
        return None
    def key(item: tuple[float, dict[str, Any] | None]) -> tuple[float, float, float]:
        lr, r = item
        assert r is not None
        loss = r["val_loss"] if r["val_loss"] is not None and math.isfinite(r["val_loss"]) else math.inf
        return (r["val_acc"], -loss, -lr)
    return max(done, key=key)[0]


#: The resolution rows: the oracle LR moved an eighth of a decade (a factor 1.33) down and
#: up, trained on every seed. Their regret is what a chooser that always lands that close
#: to the oracle scores, knowing the oracle: it says how finely a task's accuracy turns with
#: the LR (steeply beside a collapse cliff), how much of the oracle's lead is the luck of
#: being the best of 21 noisy grid points, and which targets a chooser can meet at all.
NEAR_ORACLE = ("oracle LR / 10^(1/8)", "oracle LR x 10^(1/8)")
NEAR_ORACLE_DECADES = 0.125


def near_oracle(oracle_lr: float) -> tuple[float, float]:
    """The LRs of the two :data:`NEAR_ORACLE` rows (below, above), as the cache keys them."""
    f = 10 ** NEAR_ORACLE_DECADES
    return float(fmt_lr(oracle_lr / f)), float(fmt_lr(oracle_lr * f))


def grid_rows(p: Protocol, grid: list[float],
              run: Callable[[float, int], dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One row per grid LR: mean validation and test accuracy over ``p``'s seeds, the test
    spread, collapsed runs and how many runs there are (missing ones left out)."""
    rows = []
    for lr in grid:
        rs = [r for r in (run(lr, s) for s in p.seeds) if r is not None]
        rows.append({
            "lr": lr, "val_acc": mean(r["val_acc"] for r in rs), "test_acc": mean(r["test_acc"] for r in rs),
            "test_std": std(r["test_acc"] for r in rs), "failed": sum(r["failed"] for r in rs), "n": len(rs),
        })
    return rows


def oracle_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The oracle among :func:`grid_rows`: the best mean validation accuracy (ties: the lower LR)."""
    return max(rows, key=lambda g: (g["val_acc"], -g["lr"]))


def grid_oracle(p: Protocol, grid: list[float], run: Callable[[float, int], dict[str, Any] | None]) -> float | None:
    """The oracle LR of ``p`` (:func:`oracle_row`); ``None`` while a grid run is missing."""
    rows = grid_rows(p, grid, run)
    if any(g["n"] < len(p.seeds) for g in rows):
        return None
    lr: float = oracle_row(rows)["lr"]
    return lr


def analyse(cfg: QualityConfig, data: Collected) -> dict[str, Any]:
    """Per-task oracle, method rows and the cross-task summary, as plain data."""
    from competitors import LR_FREE

    protocols = cfg.protocols()
    grid = cfg.grid()
    tasks: list[dict[str, Any]] = []
    for p in protocols:
        runs = lambda tag, s: data.runs.get((p.name, tag, s))  # noqa: E731
        table = grid_rows(p, grid, lambda lr, s: runs(lr_key(lr), s))
        best = oracle_row(table)
        oracle_lr = best["lr"]
        oracle_test = {s: runs(lr_key(oracle_lr), s)["test_acc"] for s in p.seeds}
        oracle_mean = mean(oracle_test.values())
        ok_runs = [r for (pn, _, _), r in data.runs.items() if pn == p.name and not r["failed"]]
        run_seconds = median(r["seconds"] for r in ok_runs)
        run_steps = max((r.get("steps") or 0 for r in ok_runs), default=0)

        def cost_runs(sel: dict[str, Any]) -> float | None:
            """Selection cost in training runs: by optimizer steps when the finder reports them
            (load-independent), else the finder's own count, else by wall time."""
            if sel.get("steps") and run_steps:
                return sel["steps"] / run_steps
            if isinstance(sel.get("extra", {}).get("runs"), (int, float)):
                return float(sel["extra"]["runs"])
            if sel.get("seconds") and math.isfinite(sel["seconds"]) and run_seconds:
                return sel["seconds"] / run_seconds
            return None

        methods: list[dict[str, Any]] = []

        def method_row(name: str, kind: str, per_seed: list[Pick]) -> dict[str, Any]:
            done = [(pk, runs(lr_key(pk.used), pk.seed) if pk.lr_free is None else data.runs.get((p.lr_free_group(), pk.lr_free, pk.seed)))
                    for pk in per_seed]
            accs = [r["test_acc"] for _, r in done if r is not None]
            lrs = [pk.lr for pk in per_seed if pk.lr]
            regrets = [oracle_test[pk.seed] - r["test_acc"] for pk, r in done if r is not None]
            sels = [pk.selection for pk in per_seed if pk.selection is not None]
            secs = [x["seconds"] for x in sels if x.get("seconds") is not None and math.isfinite(x["seconds"])]
            cruns = [c for c in (cost_runs(x) for x in sels) if c is not None]
            return {
                "method": name, "kind": kind,
                "lr": float(np.exp(np.mean(np.log(lrs)))) if lrs else None,
                "lrs": [pk.lr for pk in per_seed],
                "decades": mean(abs(math.log10(lr / oracle_lr)) for lr in lrs) if lrs else None,
                "test_acc": mean(accs), "test_std": std(accs),
                "regret": oracle_mean - mean(accs) if accs else math.nan,
                "regret_worst": max(regrets) if regrets else math.nan,
                "failures": sum(1 for pk, r in done if pk.no_lr or r is None or r["failed"]), "n": len(per_seed),
                "seconds": mean(secs) if secs else 0.0,
                "runs_equiv": mean(cruns) if cruns else 0.0,
                "runs_equiv_time": (mean(secs) / run_seconds) if secs and run_seconds else 0.0,
            }

        default = _default_lr(p.optimizer)
        methods.append(method_row(f"default ({fmt_lr(default)})", "default",
                                  [Pick(s, default, default) for s in p.seeds]))
        # the noise floor: per seed, the grid LR with that seed's best validation accuracy (what
        # any chooser that reads one seed's validation split reaches at most, at 21 runs)
        own = [Pick(s, lr, lr) for s in p.seeds if (lr := own_validation_pick(grid, lambda x, s=s: runs(lr_key(x), s)))]
        if len(own) == len(p.seeds):
            methods.append({**method_row(OWN_VALIDATION, "reference", own), "runs_equiv": float(len(grid))})
        for name, lr in zip(NEAR_ORACLE, near_oracle(oracle_lr)):
            if all(runs(lr_key(lr), s) is not None for s in p.seeds):
                methods.append(method_row(name, "reference", [Pick(s, lr, lr) for s in p.seeds]))
        for finder, rows in FINDER_ROWS.items():
            sels = {s: data.selections.get((p.name, finder, s)) for s in p.seeds}
            if not any(sels.values()):
                continue
            for row in rows:
                per_seed = []
                for s in p.seeds:
                    sel = sels[s]
                    lr = sel["suggestions"].get(row) if sel else None
                    per_seed.append(Pick(s, lr, lr if lr is not None else default, selection=sel, no_lr=lr is None))
                methods.append(method_row(row, "finder", per_seed))
        for name in available_lr_free():
            methods.append(method_row(name, "lr-free", [Pick(s, None, None, lr_free=name) for s in p.seeds]))
        choosers = [m for m in methods if m["kind"] not in NOT_CHOOSERS]
        best_regret = min(m["regret"] for m in choosers)
        for m in methods:
            m["best"] = m["kind"] not in NOT_CHOOSERS and math.isclose(m["regret"], best_regret, abs_tol=1e-9)
        tasks.append({
            "task": p.name, "split": p.split, "protocol": dataclasses.asdict(p), "describe": p.describe(),
            "oracle": {"lr": oracle_lr, "val_acc": best["val_acc"], "test_acc": oracle_mean,
                       "test_std": std(oracle_test.values()), "grid_runs": len(grid)},
            "run_seconds": run_seconds, "run_steps": run_steps, "grid": table, "methods": methods,
        })

    splits = {name: summarise([t for t in tasks if t.get("split", "dev") == name]) for name in SPLIT_LABELS}
    return {"tasks": tasks, "summary": summarise(tasks), "splits": splits}


#: The held-out sets pooled in :func:`pooled_table`, every one from held-out 2 on: each was
#: fixed before any run of it (held-out 1 was seen with an earlier rule while it was still
#: being chosen, so it stays out).
HELDOUT_POOL = tuple(k for k in SPLIT_LABELS if k not in ("dev", "heldout"))


#: Resamples behind each bootstrap interval of the tables.
BOOTSTRAP_DRAWS = 4000


def bootstrap_interval(values: Sequence[float], *, level: float = 0.95, draws: int = BOOTSTRAP_DRAWS,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` over resamples with replacement.

    The unit is the task (its seeds share data and grid, so they are not independent).
    Why: a set of 6-8 short tasks moves its mean regret by about a point from one rule to
    a neighbouring one, and a bare mean hides how little a difference of 0.2 points means.

    >>> bootstrap_interval([0.0, 0.0, 0.0])
    (0.0, 0.0)
    >>> lo, hi = bootstrap_interval([-1.0, 0.0, 1.0, 2.0]); lo < 0.5 < hi
    True
    """
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return (math.nan, math.nan)
    means = np.random.default_rng(seed).choice(v, size=(draws, v.size), replace=True).mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def summarise(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method over ``tasks``: regret (mean with its bootstrap interval over tasks,
    median, worst task, worst seed), cost, failures."""
    names: list[str] = []
    for t in tasks:
        for m in t["methods"]:
            key = "default" if m["kind"] == "default" else m["method"]
            if key not in names:
                names.append(key)
    summary = []
    for name in names:
        rows = [m for t in tasks for m in t["methods"] if (m["kind"] == "default" and name == "default") or m["method"] == name]
        summary.append({
            "method": name, "kind": rows[0]["kind"], "tasks": len(rows),
            "regret_mean": mean(r["regret"] for r in rows),
            "regret_interval": list(bootstrap_interval([r["regret"] for r in rows])),
            "regret_median": median(r["regret"] for r in rows),
            "regret_worst_task": max(r["regret"] for r in rows),
            "regret_worst_seed": max(r["regret_worst"] for r in rows),
            "decades": mean(r["decades"] for r in rows if r["decades"] is not None) if rows[0]["kind"] != "lr-free" else None,
            "seconds": mean(r["seconds"] for r in rows),
            "runs_equiv": mean(r["runs_equiv"] for r in rows),
            "runs_equiv_time": mean(r["runs_equiv_time"] for r in rows),
            "failures": sum(r["failures"] for r in rows), "n": sum(r["n"] for r in rows),
            "wins": sum(1 for r in rows if r.get("best")),
        })
    return summary


def split_table(result: dict[str, Any]) -> str:
    """Development and held-out rows side by side: mean / worst-task regret, failures, cost.
    ``heldout`` is the first held-out set (seen with session 10's rules), ``heldout2`` and
    ``heldout3`` the ones of session 11, ``heldout4`` session 12's, ``heldout5`` session 13's, ``heldout6`` session
    14's, ``heldout7`` session 15's, ``heldout8`` session 16's; a set with no task in this run is left out."""
    splits = result.get("splits") or {}
    present = [k for k in SPLIT_LABELS if any(t.get("split", "dev") == k for t in result["tasks"])]
    by = {k: {s["method"]: s for s in splits.get(k, [])} for k in present}
    names: list[str] = []
    for k in present:
        names += [n for n in by[k] if n not in names]

    def cells(s: dict[str, Any] | None) -> list[str]:
        if s is None:
            return ["-"] * 5
        seconds, runs = _costs(s)
        return [_pts(s["regret_mean"]), _pts(s["regret_worst_task"]), f"{s['failures']}/{s['n']}", runs, seconds]

    rows = [[f"**{n}**" if n.startswith("lrscout") else n, *[c for k in present for c in cells(by[k].get(n))]]
            for n in names]
    head = []
    for k in present:
        n = len({t["task"] for t in result["tasks"] if t.get("split", "dev") == k})
        head += [f"{SPLIT_LABELS[k]} ({n}): {h}" for h in ("mean regret", "worst task", "failed", "cost (runs)", "cost (s)")]
    return md_table(["method", *head], rows)


def pooled_table(result: dict[str, Any]) -> str | None:
    """Development against the held-out sets of :data:`HELDOUT_POOL` pooled, each mean regret with its 95% bootstrap
    interval over tasks and the median: how far the sets can tell two methods apart.
    Computed from the tasks, so a result saved by an older run renders too. None when the
    run has no task of :data:`HELDOUT_POOL` (or no development task)."""
    dev_tasks = [t for t in result["tasks"] if t.get("split", "dev") == "dev"]
    held_tasks = [t for t in result["tasks"] if t.get("split") in HELDOUT_POOL]
    if not dev_tasks or not held_tasks:
        return None
    dev = {s["method"]: s for s in summarise(dev_tasks)}
    held = {s["method"]: s for s in summarise(held_tasks)}
    n_dev, n_held = len({t["task"] for t in dev_tasks}), len({t["task"] for t in held_tasks})
    present = sorted({int(t["split"].removeprefix("heldout")) for t in held_tasks})
    label = f"held-out {present[0]}-{present[-1]}" if len(present) > 1 else f"held-out {present[0]}"

    def cells(s: dict[str, Any] | None) -> list[str]:
        if s is None:
            return ["-"] * 3
        lo, hi = s["regret_interval"]
        return [_pts(s["regret_mean"], 2), f"{_pts(lo, 2)} .. {_pts(hi, 2)}", _pts(s["regret_median"], 2)]

    rows = []
    for name in [*held, *[n for n in dev if n not in held]]:
        s = held.get(name)
        runs = "-" if s is None else _costs(s)[1]
        rows.append([f"**{name}**" if name.startswith("lrscout") else name, *cells(dev.get(name)), *cells(s),
                     "-" if s is None else _pts(s["regret_worst_task"]), runs])
    return md_table(["method", f"dev ({n_dev}): mean", "95% interval", "median",
                     f"{label} pooled ({n_held}): mean", "95% interval", "median", "worst task", "cost (runs)"],
                    rows)


def summary_table(result: dict[str, Any]) -> str:
    grid = max((t["oracle"]["grid_runs"] for t in result["tasks"]), default=0)
    rows = [["oracle (grid search)", "+0.0", "+0.0", "-", "0.00", "-", f"{grid} per seed", "-", "-"]]
    for s in result["summary"]:
        dec = "-" if s["decades"] is None else f"{s['decades']:.2f}"
        rows.append([f"**{s['method']}**" if s["method"].startswith("lrscout") else s["method"],
                     _pts(s["regret_mean"]), _pts(s["regret_worst_task"]), _pts(s["regret_worst_seed"]), dec,
                     *_costs(s),
                     f"{s['failures']}/{s['n']}", s["wins"] if s["kind"] not in NOT_CHOOSERS else "-"])
    return md_table(["method", "mean regret (pts)", "worst task (pts)", "worst seed (pts)", "decades from oracle",
                     "cost (s)", "cost (runs)", "failed runs", "tasks won"], rows)


def task_table(t: dict[str, Any]) -> str:
    o = t["oracle"]
    rows = [["oracle (grid)", fmt_lr(o["lr"]), "0.00", f"{_pct(o['test_acc'])} ± {_pct(o['test_std'])}", "+0.0", "-",
             f"{t['run_seconds'] * o['grid_runs']:.0f}", f"{o['grid_runs']:.0f} per seed", "-"]]
    for m in t["methods"]:
        name = m["method"] + (" ★" if m["best"] else "")
        name = f"**{name}**" if m["method"].startswith("lrscout") else name
        lr = "-" if m["lr"] is None else fmt_lr(float(f"{m['lr']:.3g}"))
        dec = "-" if m["decades"] is None else f"{m['decades']:.2f}"
        rows.append([name, lr, dec, f"{_pct(m['test_acc'])} ± {_pct(m['test_std'])}", _pts(m["regret"]),
                     _pts(m["regret_worst"]), *_costs(m), f"{m['failures']}/{m['n']}"])
    return md_table(["method", "LR (geo. mean)", "decades", "test acc % (mean ± std)", "regret (pts)",
                     "worst seed (pts)", "cost (s)", "cost (runs)", "failed"], rows)


def losses_note(result: dict[str, Any]) -> list[str]:
    """Plain sentences: every task where a non-lrscout chooser beat lrscout."""
    notes = []
    for t in result["tasks"]:
        ms = {m["method"]: m for m in t["methods"]}
        choosers = [m for m in t["methods"] if m["kind"] not in NOT_CHOOSERS]
        for ours in ("lrscout-find", "lrscout-select"):
            if ours not in ms:
                continue
            mine = ms[ours]
            better = [m for m in choosers if not m["method"].startswith("lrscout") and m["regret"] < mine["regret"] - 1e-9]
            if better:
                b = min(better, key=lambda m: m["regret"])
                if mine["lr"]:
                    side = math.log10(mine["lr"] / t["oracle"]["lr"])
                    lr_text = (f"LR {mine['lr']:.3g} is {abs(side):.2f} decades {'below' if side < 0 else 'above'} "
                               f"the oracle's {t['oracle']['lr']:.3g}")
                else:
                    lr_text = f"no LR chosen ({mine['failures']}/{mine['n']} failed)"
                notes.append(f"- {t['task']}: {ours} regret {_pts(mine['regret'])} pts, {lr_text}; beaten by "
                             f"{len(better)} method(s), best {b['method']} at {_pts(b['regret'])} pts (LR {b['lr']:.3g}).")
    return notes


def render(cfg: QualityConfig, result: dict[str, Any], env: dict[str, Any], seconds: float, quick: bool,
           computed: int, total: int) -> str:
    protos = cfg.protocols()
    lines = [
        "# Quality benchmark: the learning rate each method chooses, against the oracle" + (" (QUICK)" if quick else ""),
        "",
        common.env_line(env) + f" Wall time {seconds / 60:.1f} min with {cfg.jobs} worker processes, "
        f"{computed} of {total} selections and training runs computed (the rest read from the cache).",
        "",
        "Regret = oracle mean test accuracy minus the method's, in accuracy points (lower is better; negative means "
        "the method beat the oracle on test). The oracle is the best of a "
        f"{len(cfg.grid())}-point log grid ({fmt_lr(cfg.grid_low)} .. {fmt_lr(cfg.grid_high)}, {cfg.per_decade} per "
        "decade) by mean validation accuracy over seeds, scored on test. Cost (s) = wall seconds of one selection, "
        "including building the tool's objects (timed on a shared machine: noisy); cost (runs) = optimizer steps the "
        "selection took / steps of one full training run (for lrscout.select: its own count of training-run "
        "equivalents). Failed = runs "
        "that collapsed by lrscout's own rule (a NaN, or chance accuracy with a loss no better than a uniform "
        "guess), or a finder that gave no LR (then the default LR was trained). ★ = best chooser on the task (LR-free optimizers excluded: they change the optimizer).",
        "",
        "## Development and held-out tasks",
        "",
        "Development tasks are the ones lrscout's rules were measured and tuned on; held-out tasks were added "
        "afterwards and never used to tune anything. Cost (s) for lrscout-select is the wall time of a fresh "
        "Python process that imports lrscout, loads the data and selects (start-up included); for the other "
        "finders, the in-process time of their call.",
        "",
        split_table(result),
        "",
    ]
    pooled = pooled_table(result)
    if pooled is not None:
        lines += [
            "### Held-out sets pooled, with their uncertainty",
            "",
            f"Mean regret over tasks with a 95% bootstrap interval (tasks resampled with replacement, "
            f"{BOOTSTRAP_DRAWS} draws), "
            "and the median task. The held-out sets from 2 on were each fixed before any run of them and scored "
            "with rules chosen without them; once scored, a set is seen. An interval that spans a target means these tasks "
            "cannot tell whether the method meets it.",
            "",
            pooled,
            "",
        ]
    lines += [
        "## Summary over all tasks",
        "",
        summary_table(result),
        "",
        "## Tasks",
        "",
        md_table(["task", "set", "protocol", "seeds"],
                 [[p.name, p.split, p.describe(), ", ".join(map(str, p.seeds))] for p in protos]),
        "",
    ]
    notes = losses_note(result)
    lines += ["## Where lrscout loses", ""] + (notes or ["- nowhere in this run."]) + [""]
    for t in result["tasks"]:
        o = t["oracle"]
        lines += [f"### {t['task']}", "", f"{t['describe']}. Oracle LR {fmt_lr(o['lr'])} (val {_pct(o['val_acc'])}%); "
                  f"one training run takes {t['run_seconds']:.1f} s.", "", task_table(t), "",
                  "<details><summary>grid</summary>", "",
                  md_table(["LR", "val acc %", "test acc % (mean ± std)", "failed"],
                           [[fmt_lr(g["lr"]), _pct(g["val_acc"]), f"{_pct(g['test_acc'])} ± {_pct(g['test_std'])}",
                             f"{g['failed']}/{g['n']}"] for g in t["grid"]]),
                  "", "</details>", ""]
    from competitors import LR_FREE

    lines += ["## How each competitor was run", ""]
    lines += ["See `benchmarks/competitors.py` (module docstring) for each tool's documented defaults. LR-free "
              "optimizers: " + "; ".join(f"{f.name}: {f.note}" for f in LR_FREE.values()) + "."]
    return "\n".join(lines)


def run(cfg: QualityConfig, *, quick: bool, out_dir: Path, cache_root: Path, progress: Callable[[str], None] = print
        ) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = collect(cfg, cache_root, progress)
    seconds = time.perf_counter() - t0
    result = analyse(cfg, data)
    env = common.environment()
    computed, total = data.total - data.cached, data.total
    markdown = render(cfg, result, env, seconds, quick, computed, total)
    payload = {
        "benchmark": "quality", "quick": quick, "config": dataclasses.asdict(cfg), "environment": env,
        "seconds": seconds, "computed": computed, "total": total, "select_available": has_select(), **result,
        "raw": {"runs": [v for v in data.runs.values()], "selections": [v for v in data.selections.values()]},
    }
    common.write_result("quality", markdown, payload, out_dir)
    return {"markdown": markdown, "payload": payload}
