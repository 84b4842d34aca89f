"""The range test under DistributedDataParallel: two CPU ranks (gloo) agree and restore."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def _rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    import lrscout

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
        ddp = nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        g = torch.Generator().manual_seed(100 + rank)  # each rank its own shard
        data = [(torch.randn(16, 1, 4, 4, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(4)]
        result = lrscout.find(ddp, data, opt, start_lr=1e-4, end_lr=100.0, num_iter=40)
        same = all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(
            {"loss": result.history_loss, "lr": result.lr, "restored": same, "state": len(opt.state)}))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not available")
def test_ranks_record_the_same_curve_and_stop_together(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank_main, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["loss"] == r1["loss"]  # all-reduced: identical curves, identical stop step
    assert len(r0["loss"]) < 40  # the sweep to lr=100 diverged and both ranks stopped
    assert r0["lr"] == r1["lr"]
    assert r0["restored"] and r1["restored"] and r0["state"] == 0
