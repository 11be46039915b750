"""The README's examples do what the README says: the quickstart model has findings, the healthy one none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def findings(result) -> dict[str, list[str]]:
    data = json.loads(result.out)
    assert not data["errors"], data["errors"]
    out: dict[str, list[str]] = {}
    for f in data["findings"]:
        out.setdefault(f["rule"], []).append(f["layer"])
    return out


def test_torch_examples(cli):
    pytest.importorskip("torch")
    faulty = cli("check", str(EXAMPLES / "mlp_torch.py"), "--format", "json")
    assert faulty.code == 1, faulty.err
    got = findings(faulty)
    assert "body.0" in got.get("ND301", []), got  # vanishing gradients reach the first layer
    assert "body.0" in got.get("ND101", []), got  # raw, unscaled features
    healthy = cli("check", str(EXAMPLES / "healthy_torch.py"), "--format", "json", "--fail-on", "info")
    assert healthy.code == 0 and findings(healthy) == {}, healthy.out


def test_keras_example(cli):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pytest.importorskip("keras")
    result = cli("check", str(EXAMPLES / "mlp_keras.py"), "--format", "json")
    assert result.code == 1, result.err
    got = findings(result)
    assert "ND503" in got, got  # softmax output into a from_logits=True loss
    assert "hidden1" in got.get("ND101", []), got  # raw 0..255 pixels
