"""Issue 16, hollow verdicts: findings that share a cause are fixed and verified together, and
"verified" requires the symptom to be cured (the gradient reaches the layer; the probe loss falls),
not only that the rule stops firing. JSON carries ``verified: true|false`` next to ``verdict``."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from verify_helpers import blobs  # noqa: E402

import netdoctor  # noqa: E402
from netdoctor.verify.run import shared_cause_groups  # noqa: E402


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _data():
    x, y = blobs()
    return torch.tensor(x), torch.tensor(y)


def _all_zero_mlp() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    for i in (0, 2, 4):
        nn.init.zeros_(m[i].weight)
    return m


def test_three_zero_layers_are_fixed_and_verified_together():
    x, y = _data()
    report = netdoctor.check(_all_zero_mlp(), x, y, loss_fn=nn.CrossEntropyLoss(), verify=True)
    zero = [f for f in report.findings if f.code == "ND201"]
    assert {f.layer for f in zero} == {"0", "2", "4"}
    nd304 = [f for f in report.findings if f.code == "ND304"]
    assert nd304, "the zero layers leave layers without gradient"
    for f in zero + nd304:
        v = f.verification
        assert v["verdict"] == "verified" and v["verified"] is True, (f.code, f.layer, v)
        assert len(v["group"]) == len(zero) + len(nd304)
        assert "share a cause" in v["reason"]
        for key, before in v["before"].items():  # the symptom is cured: every zero gradient is non-zero
            if key.startswith("grad_norm[") and before == 0.0:
                assert v["after"][key] > 0.0
        assert v["after"]["probe_loss"] < v["before"]["probe_loss"]
    doc = report.to_dict()
    for f in doc["findings"]:
        keys = list(f["verification"])
        assert keys[keys.index("verdict") + 1] == "verified"


def test_a_fix_that_leaves_the_layer_without_gradient_is_not_verified():
    """Re-initializing a zero layer whose output is then detached: ND201 stops firing, but no
    gradient reaches the layer, so the fix did not cure what the finding names."""

    class Cut(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(4, 16), nn.Linear(16, 16), nn.Linear(16, 3)
            nn.init.zeros_(self.fc1.weight)

        def forward(self, x):
            h = torch.relu(self.fc1(x)).detach()
            return self.out(torch.relu(self.fc2(h)))

    torch.manual_seed(0)
    x, y = _data()
    report = netdoctor.check(Cut(), x, y, loss_fn=nn.CrossEntropyLoss(), verify=True)
    v = next(f for f in report.findings if f.code == "ND201" and f.layer == "fc1").verification
    assert v["after"]["ND201 findings"] == 0  # the rule no longer fires...
    assert v["verdict"] == "not verified" and v["verified"] is False  # ...but the symptom stays
    assert "no gradient reaches `fc1`" in v["reason"]


def test_groups_only_findings_that_share_the_cause():
    x, y = _data()
    model = _all_zero_mlp()
    report = netdoctor.check(model, x, y, loss_fn=nn.CrossEntropyLoss())
    from netdoctor.adapters.torch.collect import collect
    from netdoctor.engine import merged_needs, selected_rules
    from netdoctor.config import Config
    from netdoctor.snapshot import ProbeSettings

    snap = collect(model, inputs=x, targets=y, loss_fn=nn.CrossEntropyLoss(),
                   needs=merged_needs(selected_rules(Config(), one_shot=True)), settings=ProbeSettings(),
                   input_shape=None)
    groups = shared_cause_groups(report, snap)
    grouped = {report.findings[i].code for i in groups}
    assert grouped == {"ND201", "ND304"}
    assert all(report.findings[i].code in ("ND201", "ND304") for i in groups)
    # a single zero layer has nothing to share: verified alone, as before
    torch.manual_seed(0)
    one = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.zeros_(one[2].weight)
    r1 = netdoctor.check(one, x, y, loss_fn=nn.CrossEntropyLoss(), verify=True)
    v = next(f for f in r1.findings if f.code == "ND201").verification
    assert v["verified"] is True and "group" not in v
