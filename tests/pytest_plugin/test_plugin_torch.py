"""The pytest plugin on real (tiny) torch models: ``pytest --netdoctor`` and the fixture.

These need the torch adapter and the rules ND201 zero-weights; until those work they fail
with the adapter's or the rule's error, on purpose.
"""

from __future__ import annotations

import json
import subprocess
import sys

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
                                 "*netdoctor: * at or above 'error'*", "*zero-weights*"])


HELPER = '''
import torch


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
'''

# a torch class that needs arguments: importing the file finds no model
BLOCKS = '''
from torch import nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)
'''


def test_configured_paths_are_collected_outside_testpaths(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n\n'
                               '[tool.netdoctor]\nselect = ["ND2"]\npaths = ["nets"]\nexclude = ["nets/legacy"]\n')
    pytester.makepyfile(**{
        "tests/test_plain": "def test_plain():\n    assert True\n",
        "nets/resnet": HEALTHY,               # not named *model*: configured paths decide
        "nets/model_utils": HELPER,           # no model in the source: never imported
        "nets/blocks_model": BLOCKS,          # imported, no model found
        "nets/legacy/old_model": "def build_model(:\n",  # excluded
        "nets/.cache/x_model": "def build_model(:\n",    # hidden folder
        "elsewhere/zeroed_model": ZEROED,     # neither in testpaths nor in paths
    })
    pytester.makefile(".md", **{"nets/README": "# notes, not a model\n"})  # a folder holds its .py files
    result = pytester.runpytest("--netdoctor", "-rs")
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, out
    assert outcomes.get("passed", 0) >= 2, out   # the plain test and resnet's ND2 rules
    result.stdout.fnmatch_lines(["netdoctor: paths ?'nets'?, fail-on error*"])
    for rel in ("nets/model_utils.py", "nets/blocks_model.py"):
        result.stdout.fnmatch_lines([f"SKIPPED*{rel}*no model: skipped*"])
    for absent in ("old_model", "x_model", "zeroed_model", "README"):
        assert absent not in out, out
    ids = pytester.runpytest("--netdoctor", "--collect-only", "-q").outlines
    assert "nets/resnet.py::ND201-zero-weights" in ids and "tests/test_plain.py::test_plain" in ids, ids
    assert "nets/model_utils.py::no-model" in ids


WARNED = HEALTHY + '''

_build = build_model


def build_model():
    model = _build()
    with torch.no_grad():
        model[0].weight.mul_(8.0)  # init scale far above He's: ND203 init-scale, a warning
    return model
'''

AGREE_TESTS = '''
import importlib.util
import pathlib


def load(name):
    path = pathlib.Path(__file__).parent.parent / "nets" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_warned(netdoctor):
    m = load("warned_model")
    netdoctor.check(m.build_model(), *m.sample_batch(), loss_fn=m.loss_fn).assert_ok()


def test_zeroed(netdoctor):
    m = load("zeroed_model")
    netdoctor.check(m.build_model(), *m.sample_batch(), loss_fn=m.loss_fn).assert_ok()
'''


def test_cli_fixture_and_items_share_the_default_fail_level(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning-only model passes all three by default; a model with an error fails all three."""
    monkeypatch.setenv("COLUMNS", "200")
    pytester.makepyprojecttoml('[tool.netdoctor]\nselect = ["ND2"]\n')
    pytester.makepyfile(**{"nets/warned_model": WARNED, "nets/zeroed_model": ZEROED, "tests/test_agree": AGREE_TESTS})
    result = pytester.runpytest("--netdoctor", "-rfE", "-p", "no:randomly")
    out = result.stdout.str()
    failed = sorted(line.split()[1] for line in result.outlines if line.startswith("FAILED "))
    assert failed == ["nets/zeroed_model.py::ND201-zero-weights", "tests/test_agree.py::test_zeroed"], out
    assert result.parseoutcomes().get("passed", 0) >= 4, out  # test_warned and warned_model's items

    def cli(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netdoctor.cli", "check", f"nets/{name}.py", "--format", "json"],
                              cwd=pytester.path, capture_output=True, text=True, timeout=300)

    warned, zeroed = cli("warned_model"), cli("zeroed_model")
    assert warned.returncode == 0, warned.stderr
    severities = {f["rule"]: f["severity"] for f in json.loads(warned.stdout)["findings"]}
    assert "warning" in severities.values() and "error" not in severities.values(), severities  # a real warning
    assert zeroed.returncode == 1, zeroed.stderr
