"""The benchmark's cache key follows what the code does; its task sets are what they claim."""

import math
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import quality  # noqa: E402

BASE = '''
"""Module doc."""
from dataclasses import dataclass


@dataclass
class Row:
    """A row."""
    lr: float
    steps: int = 10


def scale(x: float, k: int = 2) -> float:
    """Why it scales."""
    return x * k  # double by default
'''


def test_prose_types_and_layout_do_not_change_the_key() -> None:
    edited = BASE.replace('"""Why it scales."""', '"""Another reason, longer."""') \
        .replace("x: float, k: int = 2) -> float", "x, k=2)") \
        .replace("  # double by default", "") \
        .replace("return x * k", "return (x\n            * k)")
    assert quality.behaviour_dump(edited) == quality.behaviour_dump(BASE)


def test_code_and_dataclass_fields_change_the_key() -> None:
    dump = quality.behaviour_dump(BASE)
    assert quality.behaviour_dump(BASE.replace("x * k", "x * k + 1")) != dump
    assert quality.behaviour_dump(BASE.replace("k: int = 2", "k: int = 3")) != dump
    assert quality.behaviour_dump(BASE.replace("steps: int = 10", "steps: int = 20")) != dump
    assert quality.behaviour_dump(BASE.replace("    lr: float\n", "")) != dump  # a field removed


def test_the_hash_covers_the_training_code() -> None:
    h = quality.code_hash(quality.TRAIN_CODE)
    assert len(h) == 12 and h == quality.code_hash(quality.TRAIN_CODE)
    assert h != quality.code_hash(quality.LRSCOUT_CODE)


@pytest.mark.parametrize("index", [5, 6, 7, 8])
def test_a_new_held_out_set_repeats_no_earlier_protocol(index: int) -> None:
    """A held-out set says something only about protocols no rule was tuned on."""
    def protocol(row: tuple) -> tuple:  # type: ignore[type-arg]
        return row[1:]  # everything but the name

    sets = [quality.DEV_SHORT, quality.HELDOUT, quality.HELDOUT2, quality.HELDOUT3, quality.HELDOUT4,
            quality.HELDOUT5, quality.HELDOUT6, quality.HELDOUT7, quality.HELDOUT8]
    earlier = {protocol(r) for rows in sets[:index] for r in rows}
    earlier |= {(p.dataset, p.optimizer, p.schedule, p.epochs, p.batch_size, p.limit, p.model, p.augment)
                for p in quality.QualityConfig().protocols() if p.split == "dev"}
    new = [protocol(r) for r in sets[index]]
    assert not set(new) & earlier and len(set(new)) == len(new)


def test_the_hour_tier_leaves_out_only_the_long_tasks() -> None:
    full = quality.QualityConfig().protocols()
    hour = quality.QualityConfig(long_tasks=False).protocols()
    assert {p.split for p in hour} == {"dev", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7",
                                          "heldout8"}
    assert {p.name for p in full} - {p.name for p in hour} == \
        {p.name for p in full if p.split == "heldout" or (p.split == "dev" and p.epochs >= 3 and p.name not in
                                                           {r[0] for r in quality.DEV_SHORT})}


def test_bookkeeping_splits_each_tools_cost_into_per_step_and_fixed() -> None:
    """Sweeps of 100 and 500 steps: the difference over 400 steps is the cost per step, the
    rest of the short sweep the fixed cost; both less the bare loop's, and as a share of a
    measured case's sweep (its steps at its bare step time). Fastest repetitions count."""
    import speed

    bk = speed.Bookkeeping(short=100, long=500)

    def sweeps(per_step: float, fixed: float) -> dict[str, list[float]]:
        return {"short": [fixed + 100 * per_step, 9.0], "long": [fixed + 500 * per_step, 9.0]}

    seconds = {t: sweeps(50e-6, 0.001) for t in speed.TOOLS}
    seconds["lrscout"] = sweeps(60e-6, 0.003)  # 10 us a step and 2 ms a sweep more than bare
    rows = [{"case": "simplecnn b64", "tool": "bare loop", "ms_per_step": 4.0, "steps": [100]}]
    out = {r["tool"]: r for r in speed.bookkeeping_rows(seconds, bk, rows)}
    ours = out["lrscout"]
    assert abs(ours["us_per_step"] - 10.0) < 1e-6 and abs(ours["fixed_ms"] - 2.0) < 1e-6
    # (2 ms + 100 x 10 us) over 100 steps of 4 ms
    assert abs(ours["pct_of_case"]["simplecnn b64"] - 0.75) < 1e-9
    assert abs(out["fastai"]["us_per_step"]) < 1e-6
    assert "0.75% of a measured case's sweep (within the 1% target)" in speed.bookkeeping_verdict(list(out.values()))


def test_a_killed_selection_process_is_not_cached_as_a_failed_selection(tmp_path: Path, monkeypatch: Any) -> None:
    """A selection whose process died by a signal (the benchmark was stopped) says nothing
    about lrscout: it raises, and nothing is cached; a selection that exits with an error is
    a failed selection, cached as such."""
    import subprocess

    proto = next(p for p in quality.QualityConfig().protocols() if p.name == "digits-sgdm-1ep-b64")
    key = {"protocol": proto.name, "finder": "lrscout-select", "seed": 0, "version": "test"}

    def killed(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, -9, "", "")

    monkeypatch.setattr(subprocess, "run", killed)
    with pytest.raises(quality.SelectKilled, match="signal 9"):
        quality.select_run(proto, 0, "lrscout-select", key, str(tmp_path))
    assert not list(tmp_path.rglob("*.json"))

    def crashed(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", "Traceback ...\nValueError: bad")

    monkeypatch.setattr(subprocess, "run", crashed)
    got = quality.select_run(proto, 0, "lrscout-select", key, str(tmp_path))
    assert got["error"] == "RuntimeError: ValueError: bad" and got["suggestions"] == {"lrscout-select": None}
    assert len(list(tmp_path.rglob("*.json"))) == 1


def test_pooled_table_gives_each_mean_its_bootstrap_interval_over_tasks() -> None:
    """The held-out sets from 2 on pooled (held-out 1 left out) beside dev: the mean, an interval that holds it
    and widens with the spread between tasks, and the median; a run without held-out tasks has none."""
    def task(name: str, split: str, regret: float) -> dict[str, Any]:
        m = {"method": "lrscout-select", "kind": "lrscout", "regret": regret, "regret_worst": regret, "decades": 0.0,
             "seconds": 1.0, "runs_equiv": 2.4, "runs_equiv_time": 2.4, "failures": 0, "n": 2}
        return {"task": name, "split": split, "methods": [m]}

    tasks = [task("d1", "dev", 0.0), task("d2", "dev", 0.0), task("h1", "heldout2", -0.01), task("h2", "heldout4", 0.01),
             task("h3", "heldout6", 0.06), task("old", "heldout", 0.5)]
    result = {"tasks": tasks}
    held = quality.summarise([t for t in tasks if t["split"] in quality.HELDOUT_POOL])[0]
    assert held["tasks"] == 3 and abs(held["regret_mean"] - 0.02) < 1e-12 and held["regret_median"] == 0.01
    lo, hi = held["regret_interval"]
    assert -0.01 <= lo < 0.02 < hi <= 0.06
    assert quality.summarise(tasks[:2])[0]["regret_interval"] == [0.0, 0.0]
    table = quality.pooled_table(result)
    assert table is not None and "held-out 2-6 pooled (3)" in table and "dev (2)" in table
    assert "| **lrscout-select** | +0.00 | +0.00 .. +0.00 | +0.00 | +2.00 |" in table
    assert quality.pooled_table({"tasks": [t for t in tasks if t["split"] in ("dev", "heldout")]}) is None


def test_the_hour_tier_writes_its_own_readme_block_linking_its_results(tmp_path: Path) -> None:
    """`make bench` refreshes the README block from the hour tier: it says which command measured
    it, links results/hour/, states the tasks' epoch and batch range, and pools the held-out sets."""
    import json

    import run

    payload = json.loads((Path(run.__file__).parent / "results" / "hour" / "quality.json").read_text())
    block = run.readme_section({"payload": payload}, None, None, tier="hour")
    epochs = sorted({t["protocol"]["epochs"] for t in payload["tasks"]})
    assert block.startswith(run.README_START) and block.endswith(run.README_END)
    assert "Measured by `make bench`" in block and "(benchmarks/results/hour/quality.md)" in block
    assert f"{epochs[0]} to {epochs[-1]} epochs" in block and "held-out 1 (seen" not in block
    pooled = sorted({int(t["split"].removeprefix("heldout")) for t in payload["tasks"]
                     if t["split"] in quality.HELDOUT_POOL})
    assert f"held-out {pooled[0]}-{pooled[-1]} pooled" in block
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{run.README_START}\nold\n{run.README_END}\n\nafter\n")
    run.update_readme(block, readme)
    text = readme.read_text()
    assert text.startswith("intro\n\n" + block) and text.endswith("\n\nafter\n") and "\nold\n" not in text


def test_the_resolution_rows_train_the_oracle_an_eighth_of_a_decade_either_way() -> None:
    """The oracle is the grid LR with the best mean validation accuracy (the lower LR on a
    tie), undefined while a grid run is missing; the resolution row's LRs sit a factor
    10**(1/8) below and above it, keyed as the cache keys them, and they show no cost."""
    p = quality.Protocol("t", "digits", "sgd", "constant", 1, 64, (0, 1))
    val = {(0.01, 0): 0.5, (0.01, 1): 0.7, (0.1, 0): 0.9, (0.1, 1): 0.3, (1.0, 0): 0.2, (1.0, 1): 0.2}
    run = lambda lr, s: {"val_acc": val[(lr, s)], "test_acc": 0.5, "failed": False}  # noqa: E731
    assert quality.grid_oracle(p, [0.01, 0.1, 1.0], run) == 0.01  # 0.6 and 0.6: the lower LR
    val[(0.1, 1)] = 0.31
    assert quality.grid_oracle(p, [0.01, 0.1, 1.0], run) == 0.1
    assert quality.grid_oracle(p, [0.01, 0.1, 1.0], lambda lr, s: None if lr == 1.0 else run(lr, s)) is None
    lo, hi = quality.near_oracle(0.1)
    assert lo == float(quality.fmt_lr(lo)) and hi == float(quality.fmt_lr(hi))
    assert abs(math.log10(hi / 0.1) - 0.125) < 1e-5 and abs(math.log10(0.1 / lo) - 0.125) < 1e-5
    row = {"method": quality.NEAR_ORACLE[0], "kind": "reference", "seconds": 0.0, "runs_equiv": 0.0}
    assert quality._costs(row) == ("-", "-")
    assert quality._costs({**row, "method": "lrscout-select", "kind": "finder", "seconds": 6.2, "runs_equiv": 2.4}) \
        == ("6.2", "2.40")


def test_a_chosen_lr_is_trained_and_keyed_with_every_digit() -> None:
    """Grid and default LRs keep their 6-digit cache keys (and their cached runs); a method's
    LR is keyed, and so trained, with all its digits: rounded, it is another run."""
    from common import lr_key

    for lr in quality.QualityConfig().grid() + [0.01, 0.001]:
        assert lr_key(lr) == quality.fmt_lr(lr) and float(lr_key(lr)) == lr
    chosen = 0.2232122179545977
    assert lr_key(chosen) == "0.2232122179545977" and float(lr_key(chosen)) == chosen
    assert quality.fmt_lr(chosen) == "0.223212"
    for lr in quality.near_oracle(0.0316228):
        assert lr_key(lr) == quality.fmt_lr(lr)
