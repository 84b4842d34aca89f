"""What each ingredient of ``select``'s choice buys on short protocols (issue 11).

For each (protocol, seed) of the chosen tasks it runs ``lrscout.select`` in process, then
trains every LR of its candidate ladder on the full protocol (cached like the quality
benchmark's runs), and stores the short-trial evidence beside the full-run outcomes. Rules
for promoting and choosing can then be compared offline on the same evidence
(``--rules``): the current rule, the noise band at promotion, the range test's own
suggestion, and the best candidate of the ladder (what any rule over these candidates can
reach at most).

    python benchmarks/ablation_short.py --tasks digits-sgdm-1ep-b64,... --seeds 3 --out /tmp/ab.json

Development tasks only while a rule is being chosen: held-out tasks are run once, after.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import quality  # noqa: E402
from common import fmt_lr, lr_key  # noqa: E402


def early_trials(protocol: quality.Protocol, seed: int, ladder: list[float], fractions: list[float],
                 from_top: tuple[int, ...] = (2, 3, 4, 5, 6)) -> list[dict[str, Any]]:
    """Trials of the ladder points ``from_top`` (1 = the top) cut at each fraction of the
    protocol: what an early elimination between finalists could read."""
    from lrscout.schedules import schedule_for
    from lrscout.selection.selection import steps_per_epoch
    from lrscout.selection.trial import TrialSpec, run_trial

    task = protocol.task(seed)
    full = schedule_for(1.0, protocol.schedule, protocol.epochs, steps_per_epoch(task))
    out = []
    for f in fractions:
        steps = max(1, int(round(full.total_steps * f)))
        for j in from_top:
            if len(ladder) - j < 0:
                continue
            lr = ladder[len(ladder) - j]
            spec = TrialSpec(trial_id=f"early{j}", candidate=len(ladder) - j, lr=lr, rung=0, steps=steps,
                             schedule=schedule_for(lr, full.kind, full.epochs, full.steps_per_epoch,
                                                   **full.params).to_json())
            t = run_trial(task, spec)
            out.append({"frac": f, "lr": lr, "steps": steps, "val_acc": t.val_acc, "val_loss": t.val_loss,
                        "collapsed": t.collapsed})
    return out


def evidence(protocol: quality.Protocol, seed: int, cache_root: Path) -> dict[str, Any]:
    import lrscout
    task = protocol.task(seed)
    r = lrscout.select(task, epochs=protocol.epochs, schedule=protocol.schedule)
    ladder = r.config["ladder"]
    key = lambda lr: {"protocol": protocol.key(), "lr": lr_key(lr), "lr_free": None, "seed": seed,  # noqa: E731
                      "code": quality.code_hash(quality.TRAIN_CODE)}
    full = {}
    for lr in sorted(set(ladder) | {r.lr, r.find.lr}):
        run = quality.train_run(protocol, seed, lr, None, key(lr), str(cache_root))  # every digit (common.lr_key)
        full[fmt_lr(lr)] = {k: run[k] for k in ("val_acc", "test_acc", "val_loss", "failed")}
    # every other ladder LR as a rung-0 trial of the same plan, so other windows can be scored
    from lrscout.schedules import schedule_for
    from lrscout.selection.selection import _trial_spec, steps_per_epoch
    from lrscout.selection.trial import run_trial

    spec_protocol = schedule_for(1.0, protocol.schedule, protocol.epochs, steps_per_epoch(task))
    tried = {round(t.spec.lr, 12) for t in r.trials if t.spec.rung == 0}
    extra = []
    for c, lr in enumerate(ladder):
        if round(lr, 12) in tried:
            continue
        t = run_trial(task, _trial_spec(c, lr, 0, r.plan, spec_protocol))
        extra.append({"lr": t.spec.lr, "rung": 0, "steps": t.spec.steps, "val_acc": t.val_acc,
                      "val_loss": t.val_loss, "collapsed": t.collapsed, "extra": True})
    return {
        "extra_trials": extra,
        "protocol": protocol.name, "seed": seed, "chosen": r.lr, "find_lr": r.find.lr, "ladder": list(ladder),
        "plan": r.plan.to_json(), "cost_runs": r.cost_runs,
        "trials": [{"lr": t.spec.lr, "rung": t.spec.rung, "steps": t.spec.steps, "val_acc": t.val_acc,
                    "val_loss": t.val_loss, "collapsed": t.collapsed} for t in r.trials],
        "full": full,
    }


def rules(row: dict[str, Any], n_val: int) -> dict[str, float]:
    """The LR each rule picks from one (protocol, seed)'s evidence."""
    from lrscout.selection.halving import noise_band
    short = [t for t in row["trials"] if t["rung"] == 0 and not t["collapsed"]]
    full = row["full"]
    picks: dict[str, float] = {"select (as run)": row["chosen"], "find": row["find_lr"]}
    if short:
        best = max(short, key=lambda t: (t["val_acc"], -(t["val_loss"] or math.inf)))
        picks["promote: best short acc"] = best["lr"]
        close = [t for t in short if t["val_acc"] >= best["val_acc"] - noise_band(best["val_acc"], n_val) - 1e-12]
        picks["promote: band, lowest loss"] = min(close, key=lambda t: t["val_loss"] or math.inf)["lr"]
        picks["promote: band, lowest LR"] = min(close, key=lambda t: t["lr"])["lr"]
        picks["promote: lowest short loss"] = min(short, key=lambda t: t["val_loss"] or math.inf)["lr"]
        picks["upper: best full val of rung 0"] = max(short, key=lambda t: full[fmt_lr(t["lr"])]["val_acc"])["lr"]
    picks["upper: best full val of ladder"] = max(row["ladder"], key=lambda lr: full[fmt_lr(lr)]["val_acc"])
    if "extra_trials" in row:
        picks.update(windows(row, n_val))
    return picks


def windows(row: dict[str, Any], n_val: int) -> dict[str, float]:
    """Which ladder LRs rung 0 tries: the plan's window, shifted, or grown toward the edge
    where the leader sits (the short results of every ladder LR are in the evidence)."""
    ladder = row["ladder"]
    by_lr = {fmt_lr(t["lr"]): t for t in row["trials"] + row["extra_trials"] if t["rung"] == 0}
    short = [by_lr.get(fmt_lr(lr)) for lr in ladder]
    n = row["plan"]["rungs"][0]["size"]
    k = row["plan"]["rungs"][-1]["size"]
    top = len(ladder)

    def choose(tried: list[int]) -> float:
        ok = [i for i in tried if short[i] is not None and not short[i]["collapsed"]] or tried
        lead = sorted(ok, key=lambda i: (-short[i]["val_acc"], short[i]["val_loss"] or math.inf))[:k]
        return ladder[max(lead, key=lambda i: row["full"][fmt_lr(ladder[i])]["val_acc"])]

    def leader(tried: list[int]) -> int:
        ok = [i for i in tried if not short[i]["collapsed"]]
        return max(ok, key=lambda i: (short[i]["val_acc"], -(short[i]["val_loss"] or math.inf))) if ok else min(tried)

    def bracket(start: int, slots: int) -> list[int]:
        tried = list(range(max(0, top - start), top))
        for _ in range(slots):
            lead = leader(tried)
            if lead == min(tried) and lead > 0:
                tried.append(lead - 1)
            else:
                break
        return tried

    out = {}
    for shift in (1, 2):
        lo = max(0, top - n - shift)
        out[f"window: top {n} shifted down {shift}"] = choose(list(range(lo, lo + n)))
    out[f"bracket: top {n - 1}, 1 slot down"] = choose(bracket(n - 1, 1))
    out[f"bracket: top {n}, 1 slot down [costs more than the budget]"] = choose(bracket(n, 1))
    out[f"bracket: top {n}, 2 slots down [costs more than the budget]"] = choose(bracket(n, 2))
    out["upper: best short acc of ladder"] = choose(list(range(top)))
    window = list(range(max(0, top - n), top))
    lead = leader(window)
    continued = bool(row["plan"]["continued"])
    # a verified plan (session 11 on: every rung the same finalists) is a continued plan
    # whose rule is the pair's; score the pair and verified rules on it as on a horizon plan
    verified = continued and row["plan"]["rungs"][0]["size"] == k
    single = k == 1 or verified
    below = lead - 1 if (continued and lead - 1 in window and not short[lead - 1]["collapsed"]) else lead
    out["horizon: leader's lower neighbour in window (continued)"] = ladder[below] if k == 1 else choose(window)
    any_below = lead - 1 if (continued and lead > 0) else lead
    out["horizon: leader's lower neighbour anywhere (continued)"] = ladder[any_below] if k == 1 else choose(window)
    for sh in (0, 1, 2):
        lo = max(0, top - n - sh)
        win = list(range(lo, lo + n))
        ld = leader(win)
        inside = ld - 1 if (ld - 1 in win and not short[ld - 1]["collapsed"]) else ld
        out[f"window shift {sh}, leader"] = choose(win)
        if continued and k == 1:
            out[f"horizon: window shift {sh}, neighbour in window"] = ladder[inside]
            out[f"horizon: window shift {sh}, neighbour anywhere"] = ladder[max(ld - 1, 0)]
            out[f"horizon: window shift {sh}, neighbour anywhere (over budget)"] = float(ld - 1 not in win)
        else:  # restarted or several finalists: the plain choice, as the library does
            out[f"horizon: window shift {sh}, neighbour in window"] = choose(window)
            out[f"horizon: window shift {sh}, neighbour anywhere"] = choose(window)
            out[f"horizon: window shift {sh}, neighbour anywhere (over budget)"] = 0.0
    for lower in (1, 2, 3):  # two full-length finalists (the pair plan: the horizon plan's cost)
        first = max(0, top - 2 - lower)
        pair = [i for i in (first, first + 1) if i < top]
        ordinal = {1: "1st", 2: "2nd", 3: "3rd"}
        a, b = (ordinal.get(top - i, f"{top - i}th") for i in (pair[-1], pair[0]))
        name = f"pair: two full runs, {a} and {b} from the top"
        out[name] = full_choice(row, [ladder[i] for i in pair], n_val) if (continued and single) else choose(window)
    for a, b in ((3, 5), (2, 4), (4, 6)):  # two full runs spread over three ladder points (session 14)
        lrs = [ladder[top - j] for j in (a, b) if top - j >= 0]
        name = f"pair spread: two full runs, {a}{'nd' if a == 2 else 'rd' if a == 3 else 'th'} and {b}th from the top"
        out[name] = full_choice(row, lrs, n_val) if (continued and single) else choose(window)
    for a, b in ((2, 4), (3, 5), (3, 6)):  # more verified finalists (a larger budget: one per extra run)
        lrs = [ladder[top - j] for j in range(a, b + 1) if top - j >= 0]
        name = f"verified: best of {len(lrs)} full runs, {a}{'nd' if a == 2 else 'rd'} to {b}th from the top [budget +{len(lrs) - 2}]"
        out[name] = full_choice(row, lrs, n_val) if (continued and single) else choose(window)
    if "frac_trials" in row:
        out.update(eliminations(row, n_val, single and continued))
    if continued and k == 1 and n >= 3:
        small = list(range(max(0, top - n + 1), top))
        lead2 = leader(small)
        out["horizon: top n-1 window, lower neighbour anywhere"] = ladder[max(lead2 - 1, 0)]
        out["horizon: top n-1 window, leader"] = ladder[lead2]
    else:
        out["horizon: top n-1 window, lower neighbour anywhere"] = out["horizon: leader's lower neighbour anywhere (continued)"]
        out["horizon: top n-1 window, leader"] = choose(window)
    return out


def eliminations(row: dict[str, Any], n_val: int, applies: bool) -> dict[str, float]:
    """Three candidates (3rd to 5th from the top, and 2nd to 4th) cut early, two go on to
    the end: the early cut drops the worst (collapsed first, then the lowest accuracy), or
    drops the top only when it is behind the next by more than the noise band (else the
    bottom). Costs two full runs plus the fraction: within the default budget only with a
    cheaper range test than today's (a fifth of the budget)."""
    out: dict[str, float] = {}
    for first in (3, 2):
        out.update(_eliminate(row, n_val, applies, first))
    return out


def _eliminate(row: dict[str, Any], n_val: int, applies: bool, first: int) -> dict[str, float]:
    """:func:`eliminations` for the three ladder points from the ``first``-th from the top down."""
    from lrscout.selection.halving import noise_band
    ladder, top = row["ladder"], len(row["ladder"])
    cands = [ladder[top - j] for j in (first, first + 1, first + 2) if top - j >= 0]
    name = {2: "2nd-4th", 3: "3rd-5th"}[first]
    out: dict[str, float] = {}
    for f in sorted({t["frac"] for t in row["frac_trials"]}):
        at = {fmt_lr(t["lr"]): t for t in row["frac_trials"] if t["frac"] == f}
        early = [at.get(fmt_lr(lr)) for lr in cands]
        worst, behind = f"eliminate: {name}, drop the worst at {f:g}", f"eliminate: {name}, drop the top if behind at {f:g}"
        if not applies or len(cands) < 3 or any(e is None for e in early):
            out[worst] = out[behind] = full_choice(row, cands[:2], n_val) if applies else row["chosen"]
            continue
        drop = min(range(3), key=lambda i: (not early[i]["collapsed"], early[i]["val_acc"], -i))
        out[worst] = full_choice(row, [c for i, c in enumerate(cands) if i != drop], n_val)
        lag = early[0]["collapsed"] or early[0]["val_acc"] < early[1]["val_acc"] - noise_band(early[1]["val_acc"], n_val)
        out[behind] = full_choice(row, cands[1:] if lag else cands[:2], n_val)
    return out


FAMILIES = {"sgd": "SGD family", "sgdm": "SGD family", "adam": "adaptive", "adamw": "adaptive",
            "rmsprop": "adaptive"}


def family(name: str) -> str:
    """The optimizer family of a quality task (SGD with or without momentum, or adaptive)."""
    p = next(q for q in quality.QualityConfig().protocols() if q.name == name)
    return FAMILIES.get(p.optimizer, p.optimizer)


def full_choice(row: dict[str, Any], lrs: list[float], n_val: int) -> float:
    """The LR of ``lrs`` that ``select``'s robust choice takes between finalists with one
    full-length evaluation each (:func:`lrscout.selection.halving.robust_rank`)."""
    from lrscout.selection.halving import Trace, robust_rank
    runs = [row["full"][fmt_lr(lr)] for lr in lrs]
    traces = [Trace(lr, ((1, r["val_acc"], r["val_loss"]),), 1, bool(r["failed"])) for lr, r in zip(lrs, runs)]
    return lrs[robust_rank(traces, n_val)[0]]


def score_rules(rows: list[dict[str, Any]], bench: dict[str, Any]) -> str:
    """Markdown: mean and worst regret (test points against the benchmark's grid oracle) per
    rule, over all rows and per optimizer family."""
    parts = [score_table(rows, bench)]
    for fam in sorted({family(r["protocol"]) for r in rows}):
        sub = [r for r in rows if family(r["protocol"]) == fam]
        parts.append(f"\n### {fam} ({len({r['protocol'] for r in sub})} tasks)\n\n" + score_table(sub, bench))
    return "\n".join(parts)


def score_table(rows: list[dict[str, Any]], bench: dict[str, Any]) -> str:
    """One markdown table of :func:`score_rules`."""
    oracle: dict[str, dict[int, float]] = {}
    n_val: dict[str, int] = {}
    if bench is None:  # no grid yet: the ladder's best full run by validation stands in for the oracle
        for row in rows:
            best = max(row["ladder"], key=lambda lr: row["full"][fmt_lr(lr)]["val_acc"])
            oracle.setdefault(row["protocol"], {})[row["seed"]] = row["full"][fmt_lr(best)]["test_acc"]
    for t in (bench or {}).get("tasks", []):
        lr = fmt_lr(t["oracle"]["lr"])
        oracle[t["task"]] = {r["seed"]: r["test_acc"] for r in bench["raw"]["runs"]
                             if r["protocol"] == t["task"] and r.get("lr") is not None and fmt_lr(r["lr"]) == lr}
    for name in {r["protocol"] for r in rows}:
        from lrscout.task import Task  # the validation size of the protocol's data
        p = next(q for q in quality.QualityConfig().protocols() if q.name == name)
        n_val[name] = len(p.task(0).splits().val)
    table: dict[str, list[float]] = {}
    per_task: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["protocol"] not in oracle:
            continue
        for rule, lr in rules(row, n_val[row["protocol"]]).items():
            if rule.endswith("(over budget)"):
                table.setdefault(rule, []).append(lr)
                continue
            got = row["full"].get(fmt_lr(lr))
            if got is None:
                continue
            regret = 100 * (oracle[row["protocol"]][row["seed"]] - got["test_acc"])
            table.setdefault(rule, []).append(regret)
            per_task.setdefault((rule, row["protocol"]), []).append(regret)
    lines = ["| rule | mean regret (pts) | worst task (pts) | worst seed (pts) | n |", "| :--- | ---: | ---: | ---: | ---: |"]
    for rule, regrets in table.items():
        worst_task = max((sum(v) / len(v) for (r, _), v in per_task.items() if r == rule), default=math.nan)
        lines.append(f"| {rule} | {sum(regrets) / len(regrets):+.2f} | {worst_task:+.2f} | {max(regrets):+.2f} | "
                     f"{len(regrets)} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="")
    ap.add_argument("--rules", type=Path, help="score the rules on the evidence in --out against this quality.json")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--early", default="", help="add early-cut trials at these fractions (e.g. 0.125,0.25) "
                    "to the evidence in --out (or to new evidence)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.rules:
        bench = None if str(args.rules) == "ladder" else json.loads(args.rules.read_text())
        print(score_rules(json.loads(args.out.read_text()), bench))
        return 0
    fractions = [float(x) for x in args.early.split(",") if x]
    if fractions and args.out.exists() and not args.tasks:  # extend existing evidence
        rows = json.loads(args.out.read_text())
        by_name = {p.name: p for p in quality.QualityConfig().protocols()}
        for row in rows:
            row["frac_trials"] = early_trials(by_name[row["protocol"]], row["seed"], row["ladder"], fractions)
            print(row["protocol"], row["seed"], flush=True)
            args.out.write_text(json.dumps(rows, indent=1))
        return 0
    cfg = quality.QualityConfig(only=tuple(args.tasks.split(",")))
    cache_root = common.CACHE_DIR / "full"
    rows = []
    for p in cfg.protocols():
        for seed in range(args.seeds):
            rows.append(evidence(p, seed, cache_root))
            if fractions:
                rows[-1]["frac_trials"] = early_trials(p, seed, rows[-1]["ladder"], fractions)
            print(json.dumps({k: rows[-1][k] for k in ("protocol", "seed", "chosen", "find_lr")}), flush=True)
            args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
