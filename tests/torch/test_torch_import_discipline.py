"""Checking a PyTorch model never imports TensorFlow or Keras (subprocess, clean interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import torch
from torch import nn
import netdoctor
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
report = netdoctor.check(model, torch.randn(16, 4), torch.randint(0, 2, (16,)), loss_fn=nn.CrossEntropyLoss())
print(json.dumps({"rules": len(report.rules_run),
                  "loaded": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
"""


def test_checking_a_torch_model_imports_no_tensorflow_or_keras():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rules"] >= 15  # the check really ran
    assert result["loaded"] == []
