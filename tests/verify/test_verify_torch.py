"""--verify on real torch models: one test per fix family, plus fixes that do not verify."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from verify_helpers import blobs, check, circles, digits, finding, raw_tabular, verified

from netdoctor.findings import Category, Finding, Severity
from netdoctor.verify import NO_FIX, NOT_VERIFIED, VERIFIED, verify_findings


class ZeroNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 32)
        self.fc2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 3)
        nn.init.zeros_(self.fc2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def _t(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.tensor(a) for a in arrays]


def test_zero_init_is_reinitialized_and_verified():
    torch.manual_seed(0)
    model = ZeroNet()
    x, y = _t(*blobs())
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss())
    v = verified(report, "ND201", "fc2").verification
    assert v["fix"] == "re-initialize `fc2` with He normal (ReLU)"
    assert v["before"]["max_abs_weight[fc2]"] == 0.0 < v["after"]["max_abs_weight[fc2]"]
    assert v["before"]["grad_norm[fc1]"] == 0.0 < v["after"]["grad_norm[fc1]"]  # gradient reaches fc1 again
    assert v["after"]["probe_loss"] < v["before"]["probe_loss"]
    assert v["diff"].splitlines() == ["  self.fc2 = nn.Linear(32, 32)",
                                      '+ nn.init.kaiming_normal_(self.fc2.weight, nonlinearity="relu")']
    assert v["probe"]["steps"] == 30 and v["probe"]["optimizer"] == "Adam(lr=0.001)"
    assert not model.fc2.weight.any()  # only the copy was fixed


def test_small_init_scale_is_verified_per_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 1))
    for m in list(model)[:-1]:
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.05, 0.05)
    x, y = _t(*circles())
    report = check(model, x, y, loss_fn=nn.BCEWithLogitsLoss(), select=["ND203"])
    for f in report.by_code("ND203"):
        v = verified(report, "ND203", f.layer).verification
        key = f"variance/reference[{f.layer}]"
        assert v["before"][key] < 0.05 and 0.3 < v["after"][key] < 3.0
        assert f"nn.init.kaiming_normal_(model[{f.layer}].weight" in v["diff"]


def test_vanishing_deep_sigmoid_gets_batchnorm_and_is_verified():
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    width = 2
    for _ in range(8):
        layers += [nn.Linear(width, 5), nn.Sigmoid()]
        width = 5
    model = nn.Sequential(*layers, nn.Linear(5, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
    x, y = _t(*circles())
    report = check(model, x, y, loss_fn=nn.BCEWithLogitsLoss(), select=["ND301", "ND502"])
    v = verified(report, "ND301").verification
    assert v["fix"].startswith("insert a normalization layer after `0`, `2`")
    assert v["after"]["relative_grad[0]"] > 1e3 * v["before"]["relative_grad[0]"]
    assert "+ nn.Linear(2, 5, bias=False), nn.BatchNorm1d(5),  # model[0]" in v["diff"]
    assert verified(report, "ND502").verification["after"]["longest plain run"] == 1
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())


def test_unnormalized_inputs_are_standardized_and_verified():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))
    x_np, y_np = raw_tabular()
    x, y = _t(x_np, y_np)
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND101"])
    v = verified(report, "ND101", "0").verification
    assert v["before"]["max_feature_rms[0]"] > 100 and v["after"]["max_feature_rms[0]"] < 5
    assert "+ x = (x - mean) / std" in v["diff"]
    assert torch.equal(x, torch.tensor(x_np))  # the user's batch is untouched


def test_dropout_before_batchnorm_is_moved_and_verified():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(128), nn.Linear(128, 10))
    x, y = _t(*digits())
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND501"])
    v = verified(report, "ND501", "2").verification
    assert v["fix"] == "move `2` (Dropout) after `3` (BatchNorm1d)"
    assert v["diff"].splitlines()[0] == "- nn.Dropout(0.5),  # model[2]"


def test_softmax_into_cross_entropy_is_removed_and_verified():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
    x, y = _t(*digits())
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND3", "ND503"])
    v = verified(report, "ND503").verification
    assert v["fix"] == "remove `3` (Softmax)"
    assert v["before"]["output/loss"].startswith("softmax into CrossEntropyLoss")
    assert v["after"]["output/loss"].startswith("linear into CrossEntropyLoss")
    assert v["after"]["head grad_norm"] > 3 * v["before"]["head grad_norm"]  # the double softmax damped it
    assert v["diff"].startswith("- nn.Softmax(dim=1),  # model[3]")


class FunctionalSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(torch.relu(self.hidden(x))), dim=1)


def test_functional_softmax_switches_the_loss_instead():
    torch.manual_seed(0)
    x, y = _t(*digits())
    report = check(FunctionalSoftmax(), x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND503"])
    v = verified(report, "ND503").verification  # removing the softmax is not applicable: the fallback is
    assert v["fix"] == "switch CrossEntropyLoss to the form that takes probabilities"
    assert v["diff"].splitlines() == [
        "- loss_fn = nn.CrossEntropyLoss()",
        "+ loss_fn = lambda p, y: F.nll_loss(torch.log(p.clamp_min(1e-12)), y)  # p: the model's softmax output"]


def test_exploding_gradients_reinit_and_clipping_verified():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256),
                          nn.ReLU(), nn.Linear(256, 10))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)
            nn.init.zeros_(m.bias)
    x, y = _t(*digits())
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND203", "ND302"])
    v = verified(report, "ND302").verification
    assert "clip the global gradient norm at" in v["fix"] and v["probe"]["clip_norm"] > 0
    assert v["after"]["max relative_grad"] < 10 < v["before"]["max relative_grad"]
    assert "+ torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=" in v["diff"]


def test_clipping_alone_does_not_verify_when_the_cause_is_the_target_scale():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
    x, _ = blobs()
    y = (1e4 * x[:, :1]).astype("float32")  # regression targets in the tens of thousands
    report = check(model, torch.tensor(x), torch.tensor(y), loss_fn=nn.MSELoss(), select=["ND302"])
    v = finding(report, "ND302").verification
    assert v["verdict"] == NOT_VERIFIED
    assert v["fix"].startswith("clip the global gradient norm") and "re-initialize" not in v["fix"]
    assert "ND302 still fires on the fixed copy" in v["reason"]


def test_fix_of_one_of_two_corrupted_layers_is_not_verified():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
        model[2].weight[1, 1] = float("inf")
    x, y = _t(*blobs())
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND204"])
    for layer in ("0", "2"):
        v = finding(report, "ND204", layer).verification
        assert v["verdict"] == NOT_VERIFIED  # the other layer still poisons the probe
        assert v["after"][f"nonfinite_frac[{layer}]"] == 0.0
        assert "the probe loss of the fixed copy is nan" in v["reason"]


def test_constant_feature_has_no_automatic_fix():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = blobs()
    x[:, 2] = 1.0
    report = check(model, torch.tensor(x), torch.tensor(y), loss_fn=nn.CrossEntropyLoss(), select=["ND103"])
    v = finding(report, "ND103").verification
    assert v["verdict"] == NO_FIX and "data pipeline" in v["reason"]
    assert set(v) == {"verdict", "verified", "reason", "seconds"} and v["verified"] is False


@pytest.mark.parametrize("max_norm, verdict", [(1.0, VERIFIED), (1e6, NOT_VERIFIED)])
def test_gradient_spikes_clipping_is_verified_on_a_minibatch_probe(max_norm, verdict):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    g = np.random.default_rng(0)
    x = g.standard_normal((256, 8)).astype("float32")
    y = (0.5 * x[:, :1]).astype("float32")
    y[:4] = 200.0  # four outliers: the minibatches that draw one spike
    spikes = Finding("ND604", "gradient-spikes", Severity.WARNING, Category.TRAINING, "3 spikes",
                     evidence={"max_norm": max_norm})
    [f] = verify_findings([spikes], model, torch.tensor(x), torch.tensor(y), loss_fn=nn.MSELoss())
    v = f.verification
    assert v["verdict"] == verdict, v
    assert v["probe"]["mode"] == "minibatch" and v["before"]["probe_grad_spike"] > 10
    if verdict == VERIFIED:
        assert v["after"]["probe_grad_spike"] < 10
    else:
        assert "gradient spikes remain" in v["reason"]
