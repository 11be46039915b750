"""How verification reaches the user: JSON, the terminal report, HTML and ``netdoctor check --verify``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from verify_helpers import blobs, check

from netdoctor.reporters import render

REPO = Path(__file__).resolve().parents[2]


class ZeroNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)
        nn.init.zeros_(self.fc2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


@pytest.fixture(scope="module")
def report():
    torch.manual_seed(0)
    x, y = blobs()
    x[:, 3] = 2.0  # a constant feature: a finding without a mechanical fix
    return check(ZeroNet(), torch.tensor(x), torch.tensor(y), loss_fn=nn.CrossEntropyLoss(), select=["ND1", "ND2"])


def test_json_carries_verification_per_finding(report):
    data = json.loads(render("json", report))
    by_rule = {f["rule"]: f["verification"] for f in data["findings"]}
    v = by_rule["ND201"]
    assert v["verdict"] == "verified" and v["fix"].startswith("re-initialize `fc2`")
    assert v["before"]["max_abs_weight[fc2]"] == 0.0 and v["after"]["max_abs_weight[fc2]"] > 0
    assert math.isfinite(v["before"]["probe_loss"]) and math.isfinite(v["after"]["probe_loss"])
    assert v["probe"] == {"steps": 30, "optimizer": "Adam(lr=0.001)", "loss": "CrossEntropyLoss", "mode": "full",
                          "seed": 0}
    assert "+ nn.init.kaiming_normal_(self.fc2.weight" in v["diff"]
    assert by_rule["ND103"] == {"verdict": "no automatic fix", "verified": False, "reason": by_rule["ND103"]["reason"],
                                "seconds": by_rule["ND103"]["seconds"]}
    assert data["timings"]["verify"] > 0


def test_terminal_report_shows_before_after_and_the_diff(report):
    text = render("text", report, width=140)
    flat = " ".join(text.split())
    assert "verify: verified · re-initialize `fc2` with He normal (ReLU)" in flat
    assert "max_abs_weight[fc2] 0 -> " in flat and "(30 steps of Adam(lr=0.001))" in flat
    assert "None -> None" not in flat  # gradients were not measured (no ND3 rule selected): not shown
    assert "  self.fc2 = nn.Linear(16, 16)" in text
    assert '+ nn.init.kaiming_normal_(self.fc2.weight, nonlinearity="relu")' in text
    assert "verify: no automatic fix" in text and "data pipeline" in text


def test_html_report_renders_the_verification(report):
    html = report.to_html()
    assert "re-initialize `fc2` with He normal (ReLU)" in html.replace("&#x60;", "`").replace("&#96;", "`")
    assert 'data-metric="probe_loss"' in html


def test_cli_verify_flag(tmp_path, monkeypatch, capsys):
    from netdoctor.cli import main

    monkeypatch.chdir(tmp_path)
    model_file = REPO / "examples" / "rules" / "ND503-output-loss-mismatch" / "bad.py"
    with pytest.raises(SystemExit) as exc:
        main(["check", str(model_file), "--verify", "--select", "ND503", "--format", "json", "--no-progress"])
    assert exc.value.code == 1
    data = json.loads(capsys.readouterr().out)
    [f] = data["findings"]
    assert f["rule"] == "ND503" and f["verification"]["verdict"] == "verified"
    assert f["verification"]["diff"].startswith("- nn.Softmax(dim=1),  # model[3]")
    with pytest.raises(SystemExit):
        main(["check", str(model_file), "--select", "ND503", "--format", "json", "--no-progress"])
    assert json.loads(capsys.readouterr().out)["findings"][0]["verification"] is None
