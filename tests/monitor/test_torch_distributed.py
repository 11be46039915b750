"""netdoctor.watch under torch.distributed (2 CPU processes, gloo, DistributedDataParallel):
statistics are averaged across ranks on sampled steps, and only rank 0 logs and writes."""

from __future__ import annotations

import json
import logging
import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

STEPS, EVERY, NAN_AT = 40, 5, 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import netdoctor

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    handler = logging.FileHandler(os.path.join(out, f"log{rank}.txt"))
    logging.getLogger("netdoctor.monitor").addHandler(handler)
    try:
        torch.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        g = torch.Generator().manual_seed(100 + rank)
        x = torch.randn(32, 8, generator=g) * (1 + rank)  # different data: different losses per rank
        y = x.sum(1, keepdim=True)
        own: list[float] = []
        mon = netdoctor.watch(model, opt, every=EVERY, log_to=os.path.join(out, f"run{rank}.jsonl"))
        for t in range(STEPS):
            xb = x.clone()
            if t == NAN_AT and rank == 1:
                xb[0, 0] = float("nan")
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(xb), y)
            loss.backward()
            opt.step()
            own.append(loss.item())
            mon.step(loss)
        mon.close()
        h = mon.history()
        result = {
            "own": own, "history": [float(v) for v in h.loss_values], "steps": [int(s) for s in h.loss_steps],
            "grad": [s.grad_norm for s in h.samples], "dead": [float(s.act_dead[0]) for s in h.samples],
            "findings": [(f.code, f.step) for f in mon.report().findings],
            "hooks": sum(len(m._forward_hooks) for m in model.modules()),
        }
        with open(os.path.join(out, f"result{rank}.json"), "w") as fh:
            json.dump(result, fh)
    finally:
        handler.close()
        # both ranks leave together: a rank that tears down its gloo pairs while the other still talks
        # to it can abort the other process ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def test_ddp_statistics_are_reduced_and_only_rank0_writes(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1))
    # the recorded loss of every step is the mean over both ranks, identical on both
    assert r0["steps"] == list(range(STEPS))
    for t in range(NAN_AT):
        mean = (r0["own"][t] + r1["own"][t]) / 2
        assert r0["history"][t] == pytest.approx(mean, rel=1e-5) and r1["history"][t] == pytest.approx(mean, rel=1e-5)
    assert r0["own"][0] != pytest.approx(r1["own"][0], rel=1e-2)
    assert r0["grad"] == pytest.approx(r1["grad"], nan_ok=True) and r0["dead"] == pytest.approx(r1["dead"], nan_ok=True)
    # a NaN on rank 1 only is seen by both ranks at its step
    assert ("ND601", NAN_AT) in map(tuple, r0["findings"]) and r0["findings"] == r1["findings"]
    # only rank 0 prints and writes
    assert (tmp_path / "run0.jsonl").exists() and not (tmp_path / "run1.jsonl").exists()
    assert "ND601" in (tmp_path / "log0.txt").read_text() and (tmp_path / "log1.txt").read_text() == ""
    assert r0["hooks"] == 0 and r1["hooks"] == 0
