"""Fine-tuning benchmark: does a digits-pretrained backbone beat training from scratch, and do
the selected discriminative LRs beat one LR for every group?

Protocol (``FinetuneConfig``):

* **Pretraining**: SimpleCNN on scikit-learn's 1,797 8x8 digits drawn the MNIST way (scaled
  to 20x20, centred in 28x28), random rotation / scale / shift, Adam one-cycle 3e-3, 20
  epochs; one checkpoint, saved as a plain state dict.
* **Target**: MNIST, seeded subsets of the training files (1,000 images with Adam and with
  SGD + momentum, 8 seeds; 4,000 images with Adam, 3 seeds; 85 % train, 15 % validation),
  3 epochs with a one-cycle schedule, batch 64, tested on the full official test set
  (10,000 images, normalised like the subset).
* **Arms**, each a complete ``lrscout.finetune`` run (range test, successive halving over
  its candidates, the winner's full-length run), equal epochs, one run per seed:

  - ``scratch``: randomly initialised SimpleCNN, one LR for all groups (head LR chosen);
  - ``one_lr``: the pretrained backbone, ``backbone_ratio=1`` (head LR chosen from its own
    range test, at ratio 1);
  - ``one_lr_grid`` (ablation, not a finetune call): the discriminative arm's head-LR
    candidates, all at ratio 1, same halving: only the per-group ratio differs;
  - ``discriminative``: head LR and backbone ratio chosen together (ratios 0.1 / 0.3 / 1
    x up to six head LRs);
  - ``ratio_sweep``: the same with the ratio candidates read off the second range test
    (backbone LR swept with the head LR fixed);
  - ``freeze``: discriminative, with the head alone for the first epoch.

Reported: test accuracy mean and spread over seeds, the chosen LRs, what the choice cost
(trials, epochs trained, seconds). ``python benchmarks/finetune.py`` writes
``results/finetune.md`` and ``results/finetune.json`` (config, environment, raw rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CACHE_DIR, DATA_DIR, RESULTS_DIR, env_line, environment, mean, md_table, pool, std, write_result,
)

WORK_DIR = CACHE_DIR / "finetune"


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 3
    pretrain_epochs: int = 20
    #: (optimizer, MNIST training images, seeds, arms). The small target set gets more
    #: seeds (its test accuracies spread more) and the ablations; Adam and SGD + momentum
    #: because per-parameter step sizes (Adam) blur what per-group LRs do.
    settings: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
        ("adam", 1000, 8, ("scratch", "one_lr", "one_lr_grid", "discriminative", "ratio_sweep", "freeze")),
        ("sgdm", 1000, 8, ("scratch", "one_lr", "one_lr_grid", "discriminative")),
        ("adam", 4000, 3, ("scratch", "one_lr", "one_lr_grid", "discriminative")),
    )


ARMS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    # name -> (label, pretrained, finetune kwargs)
    "scratch": ("scratch, one LR (chosen)", False, {"backbone_ratio": 1.0}),
    "one_lr": ("finetune, one LR (chosen)", True, {"backbone_ratio": 1.0}),
    "one_lr_grid": ("finetune, one LR (chosen from the discriminative arm's head LRs)", True, {}),
    "discriminative": ("finetune, discriminative (chosen)", True, {}),
    "ratio_sweep": ("finetune, discriminative + ratio sweep", True, {"ratio_sweep": True}),
    "freeze": ("finetune, discriminative + freeze 1 epoch", True, {"freeze_epochs": 1}),
}


# ------------------------------------------------------------------ pretraining on digits


def pretrain(epochs: int, path: Path) -> dict[str, Any]:
    """:func:`lrscout.finetune.pretrain_digits`, saved as a plain state dict, with its
    accuracy on the (unaugmented) digits it trained on."""
    from lrscout.data import digits_mnist_style
    from lrscout.finetuning import pretrain_digits

    t0 = time.perf_counter()
    model = pretrain_digits(epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    x, y = digits_mnist_style()
    model.eval()
    with torch.no_grad():
        acc = float((model((x - x.mean()) / x.std()).argmax(1) == y).float().mean())
    return {"seconds": time.perf_counter() - t0, "digits_train_acc": acc}


# ------------------------------------------------------------------ one arm, one seed


def full_test_set(info: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The official 10,000 test images, normalised with the subset's own statistics."""
    from lrscout.data import load_dataset

    full = load_dataset("mnist", data_dir=DATA_DIR)
    assert full.test is not None
    x, y = full.test.tensors
    raw = x * full.info.std[0] + full.info.mean[0]
    return (raw - info.mean[0]) / info.std[0], y


def _one_lr_on_the_same_grid(task: Any, epochs: int) -> tuple[Any, Any]:
    """Ablation: the discriminative arm's head-LR ladder (same range test at the same
    reference ratio), every candidate at ratio 1: only the per-group ratio differs."""
    import statistics

    import lrscout
    from lrscout.finetuning import candidate_grid, param_groups, ratio_candidates, select_groups
    from lrscout.finetuning.run import head_lr_candidates
    from lrscout.finetuning.select2d import MAX_HEAD_LRS

    splits = task.splits()
    model = task.build_model(splits.info)
    optimizer = task.build_optimizer(param_groups(model, 1.0, statistics.median_low(ratio_candidates())), 1.0)
    found = lrscout.find(model, splits.loader("train", task.batch_size, seed=task.seed), optimizer)
    selection = select_groups(task, candidate_grid(head_lr_candidates(found, MAX_HEAD_LRS), (1.0,)), epochs)
    return selection.run.model, selection


def run_arm(optimizer: str, limit: int, arm: str, seed: int, cfg: dict[str, Any], weights: str) -> dict[str, Any]:
    import lrscout
    from lrscout.training import evaluate

    label, pretrained, kwargs = ARMS[arm]
    task = lrscout.Task(dataset="mnist", model="simplecnn", optimizer=optimizer, seed=seed,
                        data_dir=DATA_DIR, limit=limit, weights=weights if pretrained else None)
    t0 = time.perf_counter()
    if arm == "one_lr_grid":
        model, selection = _one_lr_on_the_same_grid(task, cfg["epochs"])
        trials, best = selection.trials, selection.best
        head_lr, ratio, val_acc = best.head_lr, best.ratio, best.val_acc
    else:
        out_dir = WORK_DIR / "runs" / f"{optimizer}-{limit}-{arm}-seed{seed}"
        result = lrscout.finetune(task, cfg["epochs"], out_dir=out_dir, **kwargs)
        model = task.build_model()
        model.load_state_dict(torch.load(out_dir / "last.pt", weights_only=True)["model"])
        trials, head_lr, ratio, val_acc = result.trials, result.head_lr, result.backbone_ratio, result.val_acc
    seconds = time.perf_counter() - t0
    x, y = full_test_set(task.splits().info)
    test_loss, test_acc = evaluate(model, [(x[i : i + 1000], y[i : i + 1000]) for i in range(0, len(y), 1000)])
    return {
        "optimizer": optimizer, "limit": limit, "arm": arm, "label": label, "seed": seed, "test_acc": test_acc, "test_loss": test_loss,
        "val_acc": val_acc, "head_lr": head_lr, "ratio": ratio, "trials": len(trials),
        "trial_epochs": sum(t.epochs for t in trials), "seconds": seconds,
    }


# ------------------------------------------------------------------ report


COMPARISONS = (("one_lr", "scratch"), ("discriminative", "scratch"), ("discriminative", "one_lr"),
               ("discriminative", "one_lr_grid"), ("ratio_sweep", "one_lr"), ("freeze", "discriminative"))


def summarise(rows: list[dict[str, Any]], optimizer: str, limit: int, arms: tuple[str, ...],
              cfg: FinetuneConfig) -> str:
    by_arm: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if (r["optimizer"], r["limit"]) == (optimizer, limit):
            by_arm.setdefault(r["arm"], []).append(r)
    table = []
    for arm in arms:
        rs = sorted(by_arm.get(arm, []), key=lambda r: r["seed"])
        if not rs:
            continue
        accs = [100 * r["test_acc"] for r in rs]
        chosen = ", ".join(f"{r['head_lr']:.2g} x{r['ratio']:g}" for r in rs)
        table.append([
            ARMS[arm][0], f"{mean(accs):.2f} ± {std(accs):.2f}", f"{min(accs):.2f}",
            chosen, f"{mean(r['trial_epochs'] for r in rs):.0f}", f"{mean(r['seconds'] for r in rs):.1f}",
        ])
    header = ["arm", "test acc % (mean ± sd)", "worst seed", "chosen head LR x ratio (per seed)",
              "epochs trained", "seconds"]
    paired = []
    for a, b in COMPARISONS:
        if a in by_arm and b in by_arm:
            da = {r["seed"]: r["test_acc"] for r in by_arm[a]}
            db = {r["seed"]: r["test_acc"] for r in by_arm[b]}
            diffs = [100 * (da[s] - db[s]) for s in sorted(set(da) & set(db))]
            wins = sum(d > 0 for d in diffs)
            paired.append([f"{ARMS[a][0]} − {ARMS[b][0]}", f"{mean(diffs):+.2f} ± {std(diffs):.2f}",
                           f"{wins}/{len(diffs)}"])
    n_train = int(round(limit * 0.85))
    seeds = sorted({r["seed"] for rs in by_arm.values() for r in rs})
    return "\n\n".join([
        f"## {optimizer}, {limit} MNIST training images ({n_train} train / {limit - n_train} validation)",
        f"{cfg.epochs} epochs of {optimizer} + one-cycle, batch 64, seeds {', '.join(map(str, seeds))}.",
        md_table(header, table),
        "Paired differences (same seed: same head initialisation and batches), test accuracy points:",
        md_table(["comparison", "mean ± sd", "wins"], paired),
    ])


QUICK = FinetuneConfig(pretrain_epochs=5, settings=(("adam", 400, 2, ("scratch", "one_lr", "discriminative")),))


def run(cfg: FinetuneConfig, *, jobs: int = 2, name: str = "finetune", out_dir: Path | None = None,
        progress: Any = print) -> dict[str, Any]:
    """Pretrain once, run every (setting, seed, arm), write ``<name>.md`` / ``.json``."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    weights = WORK_DIR / "digits_simplecnn.pt"
    pre = pretrain(cfg.pretrain_epochs, weights)
    progress(f"pretrained on digits in {pre['seconds']:.1f}s (train acc {pre['digits_train_acc']:.3f})")
    cfg_json = dataclasses.asdict(cfg)
    jobs_list = [(opt, limit, arm, seed) for opt, limit, seeds, arms in cfg.settings
                 for seed in range(seeds) for arm in arms]
    rows: list[dict[str, Any]] = []
    with pool(jobs) as ex:
        futures = [ex.submit(run_arm, *job, cfg_json, str(weights)) for job in jobs_list]
        for fut in futures:
            row = fut.result()
            rows.append(row)
            progress(f"{row['optimizer']:>5} {row['limit']:>5} {row['arm']:>15} seed {row['seed']}: "
                     f"test {row['test_acc']:.4f}  head {row['head_lr']:.3g} x{row['ratio']:g}  {row['seconds']:.1f}s")
    seconds = time.perf_counter() - t0
    env = environment()
    intro = (
        "# Fine-tuning: digits-pretrained SimpleCNN -> MNIST\n\n"
        "SimpleCNN pretrained on scikit-learn's digits (MNIST-style: 20x20 in 28x28, augmented), fine-tuned on a "
        "seeded MNIST subset; test accuracy on the 10,000 official test images, which chose nothing. Every arm "
        "except the ablation is a complete `lrscout.finetune` run (range test, successive halving over its "
        "candidates, the winner's full-length run), all at equal epochs. Discriminative arms choose among "
        "backbone ratios 0.1 / 0.3 / 1 x up to six head LRs (select's ladder)."
    )
    sections = [summarise(rows, opt, limit, arms, cfg) for opt, limit, _, arms in cfg.settings]
    markdown = "\n\n".join([intro, *sections, env_line(env) + f" Wall time {seconds:.0f} s."])
    payload = {"benchmark": "finetune", "config": cfg_json, "pretraining": pre, "environment": env,
               "seconds": seconds, "rows": rows}
    md, js = write_result(name, markdown, payload, out_dir or RESULTS_DIR)
    progress(f"wrote {md} and {js}")
    return {"markdown": markdown, "payload": payload}


def readme_table(payload: dict[str, Any]) -> str:
    """One row per setting: mean test accuracy of the main arms and the paired gains."""
    rows = payload["rows"]
    table = []
    for opt, limit, _, _ in payload["config"]["settings"]:
        acc: dict[str, dict[int, float]] = {}
        for r in rows:
            if (r["optimizer"], r["limit"]) == (opt, limit):
                acc.setdefault(r["arm"], {})[r["seed"]] = 100 * r["test_acc"]
        if not {"scratch", "one_lr", "discriminative"} <= set(acc):
            continue

        def gain(a: str, b: str) -> str:
            d = [acc[a][s] - acc[b][s] for s in sorted(set(acc[a]) & set(acc[b]))]
            return f"{mean(d):+.2f} ± {std(d):.2f} ({sum(x > 0 for x in d)}/{len(d)})"

        table.append([f"{opt}, {limit} images, {len(acc['scratch'])} seeds",
                      *(f"{mean(acc[a].values()):.2f}" for a in ("scratch", "one_lr", "discriminative")),
                      gain("one_lr", "scratch"), gain("discriminative", "one_lr")])
    return md_table(["setting", "scratch %", "finetune, one LR %", "finetune, discriminative %",
                     "one LR − scratch (wins)", "discriminative − one LR (wins)"], table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds per setting (default: 8 small, 3 large)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--name", default="finetune", help="results/<name>.md and .json")
    parser.add_argument("--setting", action="append", default=None, metavar="OPT:LIMIT:SEEDS:ARM,ARM",
                        help="replace the settings, e.g. sgdm:500:3:one_lr,discriminative (repeatable)")
    args = parser.parse_args(argv)
    cfg = FinetuneConfig()
    if args.setting:
        settings = []
        for text in args.setting:
            opt, limit, seeds, arms = text.split(":")
            unknown = [a for a in arms.split(",") if a not in ARMS]
            if unknown:
                raise SystemExit(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
            settings.append((opt, int(limit), int(seeds), tuple(arms.split(","))))
        cfg = dataclasses.replace(cfg, settings=tuple(settings))
    if args.seeds is not None:
        cfg = dataclasses.replace(cfg, settings=tuple((o, lim, args.seeds, arms) for o, lim, _, arms in cfg.settings))
    result = run(cfg, jobs=args.jobs, name=args.name)
    print(result["markdown"])


if __name__ == "__main__":
    main()
