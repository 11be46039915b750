"""log_to= a TensorBoard SummaryWriter (the event file read back with tensorboard) and a wandb run
(offline mode: WANDB_MODE=offline, files under tmp_path, no network call)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import netdoctor  # noqa: E402

torch.set_num_threads(1)


def spiky_run(log_to, steps: int = 300) -> "netdoctor.monitor.MonitorCore":
    """Outlier batches every 40 steps: per-step series, per-layer samples and an ND604 finding."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((1000, 8)).astype(np.float32))
    y = x.sum(1, keepdim=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    with netdoctor.watch(model, opt, every=25, log_to=log_to) as mon:
        for t in range(steps):
            i = slice((t * 16) % 992, (t * 16) % 992 + 16)
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x[i]), y[i] * (1000.0 if t % 40 == 39 else 1.0))
            loss.backward()
            opt.step()
            mon.step(loss)
    assert mon.report().by_code("ND604")
    return mon


def test_tensorboard_summary_writer_gets_scalars_and_findings(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    spiky_run(writer)
    writer.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"netdoctor/loss", "netdoctor/grad_norm", "netdoctor/grad_norm/0", "netdoctor/grad_norm/2",
            "netdoctor/update_ratio/0", "netdoctor/dead_frac/1", "netdoctor/lr"} <= tags
    loss = acc.Scalars("netdoctor/loss")
    assert len(loss) == 300 and [e.step for e in loss[:3]] == [0, 1, 2]
    grad = {e.step: e.value for e in acc.Scalars("netdoctor/grad_norm")}
    assert grad[39] > 20 * np.median(list(grad.values()))  # the spike of the outlier batch, every step recorded
    assert [e.step for e in acc.Scalars("netdoctor/update_ratio/0")] == list(range(0, 300, 25))
    texts = [acc.Tensors(t) for t in acc.Tags()["tensors"] if t.startswith("netdoctor/findings")]
    body = b" ".join(ev.tensor_proto.string_val[0] for events in texts for ev in events).decode()
    assert "ND604 gradient-spikes" in body


def test_wandb_offline_run_gets_metrics_and_findings(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="netdoctor-test", dir=str(tmp_path), mode="offline")
    try:
        spiky_run(run)
        summary = dict(run.summary)
    finally:
        run.finish()
    assert "ND604" in summary["netdoctor/ND604"] or "spike" in summary["netdoctor/ND604"]
    assert summary["netdoctor/loss"] > 0 and "netdoctor/grad_norm/0" in summary
    (log,) = tmp_path.rglob("offline-run-*/run-*.wandb")  # the offline run's record log, synced later
    data = log.read_bytes()
    assert b"netdoctor/ND604" in data and b"netdoctor/update_ratio/0" in data and b"netdoctor/dead_frac/1" in data
