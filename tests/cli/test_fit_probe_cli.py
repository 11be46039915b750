"""``netdoctor check --fit-probe`` runs the fit probe (ND509); without the flag it does not run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

MODEL = """
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn


def build_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1), nn.Softmax(dim=1))


def sample_batch():
    d = load_digits()
    return torch.tensor(d.data[:256] / 16, dtype=torch.float32), torch.tensor(d.target[:256])


def loss_fn(p, t):
    return F.nll_loss(torch.log(p), t)
"""


def test_fit_probe_flag(cli, tmp_path):
    pytest.importorskip("torch")
    path = Path(tmp_path) / "double_softmax.py"
    path.write_text(MODEL)
    plain = json.loads(cli("check", str(path), "--format", "json").out)
    assert not [f for f in plain["findings"] if f["rule"] == "ND509"]
    fitted = json.loads(cli("check", str(path), "--format", "json", "--fit-probe").out)
    (f,) = [f for f in fitted["findings"] if f["rule"] == "ND509"]
    assert f["severity"] == "warning" and f["evidence"]["likely_causes"]
