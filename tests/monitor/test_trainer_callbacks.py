"""The Lightning and Hugging Face Trainer callbacks on real (tiny) runs: gradients seen (not None),
the same findings as netdoctor.watch, on_error warn/stop/raise, pre-flight check, loggers."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from netdoctor.monitor import TrainingError  # noqa: E402

torch.set_num_threads(1)


# -- Lightning -------------------------------------------------------------------------

def _lightning():
    return pytest.importorskip("lightning")


def lit_module(lr: float):
    L = _lightning()

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=lr)

    return Module()


def loader(n: int = 1024, batch: int = 32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=g)
    y = x[:, :4].argmax(1)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=False)


def fit(cb, lr: float, epochs: int = 2, val: bool = False, **kw):
    L = _lightning()
    trainer = L.Trainer(max_epochs=epochs, callbacks=[cb], enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1, **kw)
    trainer.fit(lit_module(lr), loader(), loader(128) if val else None)
    return trainer


def test_lightning_healthy_run_sees_gradients_and_ends_clean(tmp_path):
    from netdoctor.integrations.lightning import NetdoctorCallback

    cb = NetdoctorCallback(every=8)
    fit(cb, 0.1, logger=False, val=True)
    assert cb.preflight_report is not None and "ND301" in cb.preflight_report.rules_run  # gradients on batch 0
    report = cb.report()
    assert report.findings == () and not report.skipped, [f.message for f in report.findings]
    h = cb.history()
    assert h.steps == 64 and all(s.grad_norm is not None and s.grad_norm > 0 for s in h.samples)
    _, g = h.step_grad_norms()
    assert g.size == 64 and np.isfinite(g).all()
    # the module's logged val_loss, once per epoch (not the sanity check), at the epoch's last step
    assert h.val_steps.tolist() == [31, 63] and np.isfinite(h.val_values).all() and h.val_values[1] < np.log(4)


@pytest.mark.parametrize("on_error", ["warn", "stop", "raise"])
def test_lightning_divergence_on_error(tmp_path, on_error):
    L = _lightning()
    from lightning.pytorch.loggers import CSVLogger

    from netdoctor.integrations.lightning import NetdoctorCallback

    cb = NetdoctorCallback(every=4, on_error=on_error, preflight=False)
    csv = CSVLogger(tmp_path)
    if on_error == "raise":
        with pytest.raises(TrainingError, match="ND60"):
            fit(cb, 50.0, epochs=6, logger=csv)
        return
    trainer = fit(cb, 50.0, epochs=6, logger=csv)
    codes = {f.code for f in cb.report().findings}
    assert codes & {"ND601", "ND602"}
    if on_error == "stop":
        assert trainer.should_stop and trainer.global_step < 6 * 32
    else:
        assert trainer.global_step == 6 * 32
    csv.save()
    text = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "netdoctor/ND60" in text  # findings reached the trainer's logger


# -- Hugging Face Trainer ---------------------------------------------------------------

def tiny_bert_trainer(tmp_path, cb, lr: float, steps: int = 40, max_grad_norm: float = 1.0,
                      eval_steps: int | None = None):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=32, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 64, (256, 12), generator=g)
    labels = (ids[:, 0] > 34).long()
    data = [{"input_ids": i, "attention_mask": torch.ones_like(i), "labels": lab} for i, lab in zip(ids, labels)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=steps, learning_rate=lr,
                                          per_device_train_batch_size=16, logging_steps=1000, save_strategy="no",
                                          report_to=[], use_cpu=True, max_grad_norm=max_grad_norm,
                                          disable_tqdm=True, seed=0,
                                          **({"eval_strategy": "steps", "eval_steps": eval_steps,
                                              "per_device_eval_batch_size": 64} if eval_steps else {}))
    return transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[cb],
                                eval_dataset=data[:64] if eval_steps else None), model


def test_hf_trainer_callback_sees_gradients_before_they_are_zeroed(tmp_path):
    from netdoctor.integrations.transformers import NetdoctorCallback

    cb = NetdoctorCallback(every=5)
    trainer, model = tiny_bert_trainer(tmp_path, cb, 1e-3, eval_steps=20)
    trainer.train()
    h = cb.history()
    assert h.val_steps.tolist() == [19, 39] and np.isfinite(h.val_values).all()  # eval_loss of each evaluation
    assert h.steps == 40 and h.samples and all(s.grad_norm is not None and s.grad_norm > 0 for s in h.samples)
    assert all(s.layer_grad is not None and (s.layer_grad > 0).any() for s in h.samples)
    assert np.isfinite(h.loss_values).all() and h.loss_values[0] == pytest.approx(np.log(2), abs=0.3)
    assert h.optimizer == "AdamW" and h.scheduler == "LambdaLR"
    assert not cb.report().skipped and not cb.report().by_code("ND601")
    assert not model._forward_hooks  # the loss hook is gone after training


def test_hf_trainer_callback_records_the_norm_before_the_trainers_clipping(tmp_path):
    """The Trainer clips at max_grad_norm before any callback runs; the monitor must record the
    norm before clipping (the Trainer's logged grad_norm), not the clipped one (at most the limit)."""
    from netdoctor.integrations.transformers import NetdoctorCallback

    cb = NetdoctorCallback(every=3)
    trainer, model = tiny_bert_trainer(tmp_path, cb, 3e-3, steps=12, max_grad_norm=0.1)
    trainer.args.logging_steps = 1
    trainer.train()
    logged = [e["grad_norm"] for e in trainer.state.log_history if "grad_norm" in e]
    h = cb.history()
    assert len(logged) == 12 and min(logged) > 0.1  # clipping was active on every step
    np.testing.assert_allclose(h.grad_values, logged, rtol=1e-4)
    for s in h.samples:
        assert s.grad_norm == pytest.approx(logged[s.step], rel=1e-4)
    assert "_get_grad_norm" not in vars(trainer)  # the wrapper is gone after train()


@pytest.mark.parametrize("on_error", ["stop", "raise"])
def test_hf_trainer_on_error(tmp_path, on_error):
    from netdoctor.integrations.transformers import NetdoctorCallback

    cb = NetdoctorCallback(every=2, on_error=on_error, fail_on="warning")
    trainer, _ = tiny_bert_trainer(tmp_path, cb, 5.0, steps=120, max_grad_norm=0)
    if on_error == "raise":
        with pytest.raises(TrainingError):
            trainer.train()
        return
    trainer.train()
    assert cb.report().findings and trainer.state.global_step < 120


DDP_SCRIPT = '''
import json, logging, os, sys
import torch, lightning as L
from torch import nn
from netdoctor.integrations.lightning import NetdoctorCallback

torch.set_num_threads(1)
out = sys.argv[1]


class Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=50.0)


if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 16, generator=g)
    data = torch.utils.data.TensorDataset(x, x[:, :4].argmax(1))
    cb = NetdoctorCallback(every=4, preflight=False)
    rank = int(os.environ.get("LOCAL_RANK", 0))
    logging.getLogger("netdoctor.monitor").addHandler(logging.FileHandler(os.path.join(out, f"log{rank}.txt")))
    trainer = L.Trainer(max_epochs=4, strategy="ddp", devices=2, accelerator="cpu", callbacks=[cb], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=32))
    h = cb.history()
    json.dump({"world": trainer.world_size, "steps": h.steps, "grad": [s.grad_norm for s in h.samples],
               "codes": sorted({f.code for f in cb.report().findings})}, open(os.path.join(out, f"r{rank}.json"), "w"))
'''


def test_lightning_ddp_two_processes_gloo(tmp_path):
    import json
    import subprocess
    import sys

    _lightning()
    script = tmp_path / "ddp_fit.py"
    script.write_text(DDP_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"r{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == 2 and r0["steps"] == r1["steps"] == 4 * 8  # 512 samples / 2 ranks / 32
    assert all(g is not None for g in r0["grad"]) and r0["grad"] == r1["grad"]  # all-reduced: the same on each rank
    assert r0["codes"] and r0["codes"] == r1["codes"]
    assert "netdoctor ND6" in (tmp_path / "log0.txt").read_text()
    assert (tmp_path / "log1.txt").read_text() == ""  # rank 1 never logs


def test_hf_trainer_callback_warns_once_when_the_norm_before_clipping_is_out_of_reach(tmp_path, caplog):
    """A Trainer whose _get_grad_norm cannot be wrapped (here: already an instance attribute)
    clips where the monitor cannot see the norm before clipping: one warning, not one per train()."""
    from netdoctor.integrations.transformers import NetdoctorCallback

    cb = NetdoctorCallback(every=3)
    trainer, _ = tiny_bert_trainer(tmp_path, cb, 1e-3, steps=3, max_grad_norm=0.1)
    trainer._get_grad_norm = trainer._get_grad_norm  # bound method pinned on the instance: not wrapped
    with caplog.at_level("WARNING"):
        trainer.train()
        trainer.train()
    assert sum("norm before" in r.getMessage() and "clipping is not reachable" in r.getMessage()
               for r in caplog.records) == 1
