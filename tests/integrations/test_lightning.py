"""A LightningModule file checked as it is: its data, its own training_step, no trace left."""

from __future__ import annotations

import random
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from netdoctor.api import check_model  # noqa: E402
from netdoctor.config import Config  # noqa: E402
from netdoctor.errors import LossError, ModelLoadError  # noqa: E402
from netdoctor.integrations.lightning_module import TrainingStep  # noqa: E402
from netdoctor.modelfile.loader import load_model_file  # noqa: E402

HEAD = '''
import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

def _data(n=96):
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 12, generator=g), torch.randint(0, 3, (n,), generator=g))

class Lit(L.LightningModule):
    def __init__(self, softmax=True):
        super().__init__()
        layers = [nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 3)]
        self.net = nn.Sequential(*layers, *( [nn.Softmax(dim=1)] if softmax else [] ))
        self.seen = 0
    def forward(self, x):
        return self.net(x)
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("loss", loss)
        self.log_dict({"epoch": float(self.current_epoch), "step": float(self.trainer.global_step)})
        return {"loss": loss, "n": len(x)}
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
'''


def _write(tmp_path, body: str, name: str = "lit.py"):
    path = tmp_path / name
    path.write_text(HEAD + textwrap.dedent(body))
    return str(path)


def test_datamodule_first_then_training_step_finds_the_softmax(tmp_path):
    path = _write(tmp_path, '''
    class DM(L.LightningDataModule):
        def setup(self, stage):
            assert stage == "fit"
            self.ds = _data()
        def train_dataloader(self):
            return DataLoader(self.ds, batch_size=32, shuffle=True)

    class Other(L.LightningModule):
        pass
    ''')
    with pytest.raises(ModelLoadError, match=r"several LightningModules \(Lit, Other\).*lit.py::Lit"):
        load_model_file(path)
    loaded = load_model_file(path + "::Lit")
    assert isinstance(loaded.loss_fn, TrainingStep) and loaded.loss_fn.datamodule is not None
    assert "DM: setup('fit')" in loaded.data_source and len(loaded.inputs) == 2 and len(loaded.inputs[0]) == 32
    report = check_model(loaded.model, loaded.inputs, None, framework="torch", config=Config(), loss_fn=loaded.loss_fn)
    assert report.targets[0].loss == "training_step() -> cross_entropy"
    assert [f.code for f in report.findings] == ["ND503"]


def test_data_sources_in_order(tmp_path):
    own = _write(tmp_path, '''
    class Lit2(Lit):
        def train_dataloader(self):
            return DataLoader(_data(40), batch_size=40)
    del Lit
    loader = DataLoader(_data(20), batch_size=20)
    ''', "own.py")
    loaded = load_model_file(own)
    assert loaded.data_source == "Lit2.train_dataloader() (first batch)" and len(loaded.inputs[0]) == 40
    module_level = _write(tmp_path, "val_loader = DataLoader(_data(8), batch_size=8)\n"
                                    "train_loader = DataLoader(_data(20), batch_size=20)\n", "ml.py")
    loaded = load_model_file(module_level)
    assert loaded.data_source == "train_loader (first batch of the DataLoader)" and len(loaded.inputs[0]) == 20
    example = _write(tmp_path, '''
    class Lit3(Lit):
        def __init__(self):
            super().__init__(softmax=False)
            self.example_input_array = torch.zeros(4, 12)
    del Lit
    ''', "ex.py")
    loaded = load_model_file(example)  # all zeros: a placeholder for the shape, not data
    assert loaded.inputs is None and loaded.input_shape == (12,)
    assert loaded.data_source == "example_input_array (all zeros: its shape only)"
    assert any("placeholder for the input shape" in n for n in loaded.notes)
    report = check_model(loaded.model, None, None, framework="torch", config=Config(), input_shape=loaded.input_shape)
    assert report.targets[0].synthetic_inputs and not report.by_code("ND304")  # zeros would cut dL/dW of layer 1
    example = _write(tmp_path, '''
    class Lit3(Lit):
        def __init__(self):
            super().__init__(softmax=False)
            self.example_input_array = torch.rand(4, 12)
    del Lit
    ''', "ex_rand.py")
    loaded = load_model_file(example)
    assert loaded.loss_fn is None and loaded.data_source == "example_input_array (inputs only)"
    assert any("example_input_array has no targets" in n for n in loaded.notes)
    report = check_model(loaded.model, loaded.inputs, None, framework="torch", config=Config())
    skipped = {(s.code, s.part) for s in report.targets[0].skipped}
    assert ("ND503", None) in skipped and ("ND302", "gradient-to-weight limits") in skipped  # never "passed"
    assert not {"ND503", "ND302"} & set(report.targets[0].rules_passed)
    text = " ".join(str(report).split())  # the header wraps at the report's width
    assert "loss: surrogate_mse (surrogate, no targets)" in text
    assert "ND302 exploding-gradients (gradient-to-weight limits)" in text
    # --input-shape is for files without data: the module-level loader wins, with its training_step
    shaped = load_model_file(module_level, input_shape=(12,))
    assert shaped.data_source == "train_loader (first batch of the DataLoader)" and shaped.input_shape is None
    assert isinstance(shaped.loss_fn, TrainingStep)
    assert "--input-shape not used: the data comes from train_loader (first batch of the DataLoader)" in shaped.notes


def test_training_step_leaves_no_trace():
    import sys
    import types

    mod = types.ModuleType("_lit_trace")
    exec(HEAD, mod.__dict__)
    sys.modules["_lit_trace"] = mod
    torchmetrics = pytest.importorskip("torchmetrics")

    class WithMetric(mod.Lit):
        def __init__(self):
            super().__init__(softmax=False)
            self.acc = torchmetrics.classification.MulticlassAccuracy(num_classes=3)
            self.net.append(torch.nn.BatchNorm1d(3))

        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            self.acc(self(batch[0]), batch[1])
            self.seen += 1
            return out

    model = WithMetric()
    x, y = torch.randn(16, 12), torch.randint(0, 3, (16,))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    acc_state = {k: getattr(model.acc, k).clone() for k in model.acc._defaults}
    rng = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    report = check_model(model, (x, y), None, framework="torch", config=Config(), loss_fn=TrainingStep(model))
    assert report.targets[0].loss == "training_step() -> cross_entropy"
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert flags == [m.training for m in model.modules()]
    assert model._trainer is None and "log" not in model.__dict__ and "log_dict" not in model.__dict__
    assert all(torch.equal(v, getattr(model.acc, k)) for k, v in acc_state.items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng[0], torch.get_rng_state()) and rng[1] == random.getstate()
    assert (rng[2] == np.random.get_state()[1]).all()
    with pytest.raises(RuntimeError, match="not attached"):
        model.trainer  # noqa: B018 - the stand-in trainer is gone


def test_manual_optimization_and_unknown_trainer_attributes_are_one_line_errors():
    import types

    mod = types.ModuleType("_lit_err")
    exec(HEAD, mod.__dict__)

    class Manual(mod.Lit):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

    class Reads(mod.Lit):
        def training_step(self, batch, batch_idx):
            self.trainer.strategy.barrier()
            return super().training_step(batch, batch_idx)

    batch = (torch.randn(8, 12), torch.randint(0, 3, (8,)))
    with pytest.raises(LossError, match="manual optimization"):
        check_model(Manual(), batch, None, framework="torch", config=Config(), loss_fn=TrainingStep(Manual()))
    model = Reads()
    with pytest.raises(LossError, match=r"self\.trainer\.strategy"):
        check_model(model, batch, None, framework="torch", config=Config(), loss_fn=TrainingStep(model))
    assert model._trainer is None


def test_library_check_uses_training_step_and_does_not_pretend_to_verify_it():
    import types

    import netdoctor

    mod = types.ModuleType("_lit_api")
    exec(HEAD, mod.__dict__)
    model = mod.Lit()
    report = netdoctor.check(model, torch.randn(300, 12), torch.randint(0, 3, (300,)), verify=True)
    assert report.targets[0].loss == "training_step() -> cross_entropy" and report.targets[0].batch_size == 256
    [f] = report.findings
    assert f.code == "ND503" and f.verification["verdict"] == "not verified"
    assert "training_step" in f.verification["reason"]
