"""The pytest plugin on real (tiny) torch models: ``pytest --netdoctor`` and the fixture.

These need the torch adapter and the rules ND201 zero-weights; until those work they fail
with the adapter's or the rule's error, on purpose.
"""

from __future__ import annotations

import pytest

# pytester's in-process runs unload the modules an inner run imported; torch's C extension
# cannot be imported a second time in one process, so keep it loaded from out here.
import torch  # noqa: F401

pytest_plugins = ["pytester"]

MODEL_HEADER = '''
import torch
from torch import nn


def sample_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)


loss_fn = nn.CrossEntropyLoss()
'''

HEALTHY = MODEL_HEADER + '''

def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.kaiming_normal_(model[0].weight, nonlinearity="relu")
    nn.init.xavier_normal_(model[2].weight)
    return model
'''

ZEROED = MODEL_HEADER + '''

def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.zeros_(model[2].weight)  # a hidden layer that can never learn
    return model
'''


def test_pytest_netdoctor_on_torch_model_files(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makepyprojecttoml('[tool.netdoctor]\nselect = ["ND2"]\n')  # weights only: fast
    pytester.makepyfile(**{"nets/healthy_model": HEALTHY, "nets/zeroed_model": ZEROED})
    result = pytester.runpytest("--netdoctor", "-rfE")
    out = result.stdout.str()
    assert "::load" not in out, out  # both files import
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, out
    result.stdout.fnmatch_lines(["FAILED nets/zeroed_model.py::ND201-zero-weights - *"])
    assert "FAILED nets/healthy_model.py::ND201" not in out


FIXTURE_TEST = '''
import pytest
import torch
from torch import nn

import netdoctor as nd


def zero_head_model():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("body", nn.Sequential(nn.Linear(8, 16), nn.ReLU()))
    model.add_module("head", nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)))
    nn.init.zeros_(model.head[0].weight)
    return model


X, Y = torch.randn(32, 8), torch.randint(0, 4, (32,))


@pytest.mark.netdoctor(select=["ND201"], fail_on="error")
def test_allowed_zero_head_passes(netdoctor):
    model = zero_head_model()
    nd.allow(model.head, "zero-weights", reason="zero-init head")
    report = netdoctor.check(model, X, Y)
    assert [f.code for f in report.suppressed] and not report.by_code("ND201")
    report.assert_ok()


@pytest.mark.netdoctor(select=["ND201"])
def test_zero_head_without_allow_fails(netdoctor):
    netdoctor.check(zero_head_model(), X, Y).assert_ok()
'''


def test_fixture_on_a_torch_model(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makepyfile(test_torch_fixture=FIXTURE_TEST)
    result = pytester.runpytest("-rfE")
    out = result.stdout.str()
    assert result.parseoutcomes() == {"passed": 1, "failed": 1}, out
    result.stdout.fnmatch_lines(["*_ test_zero_head_without_allow_fails _*",
                                 "*netdoctor: * at or above 'warning'*", "*zero-weights*"])
