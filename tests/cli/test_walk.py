"""``netdoctor check models/``: a folder is walked; files without a model are "no model: skipped".

Real torch model files, checked by the real command in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


HEALTHY = '''
import torch
from torch import nn


def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.kaiming_normal_(model[0].weight, nonlinearity="relu")
    nn.init.xavier_normal_(model[2].weight)
    return model


def sample_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)


loss_fn = nn.CrossEntropyLoss()
'''

NESTED = '''
import torch
from torch import nn
from blocks import Block  # a neighbour: the file's folder is importable


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), Block(16), nn.Linear(16, 3))

    def forward(self, x):
        return self.body(x)


def sample_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
'''

# a torch class that needs arguments: only importing the file shows that it holds no model
BLOCKS = '''
from torch import nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x).relu()
'''

# a helper: its source defines no model, so it is never imported
HELPER = '''
import torch


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
'''

BROKEN = "def build_model(:\n"  # checked by mistake, it would be an error (exit 2)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {
        "models/mlp_model.py": HEALTHY,
        "models/model_utils.py": HELPER,
        "models/pkg/__init__.py": "",
        "models/pkg/nested_model.py": NESTED,
        "models/pkg/blocks.py": BLOCKS,
        "models/.ipynb_checkpoints/mlp_model.py": BROKEN,  # hidden folder
        "models/.venv/lib/python3.11/site-packages/x/model.py": BROKEN,
        "models/myenv/lib/env_model.py": BROKEN,  # a venv by its pyvenv.cfg
        "models/myenv/pyvenv.cfg": "home = /usr/bin\n",
        "models/__pycache__/mlp_model.py": BROKEN,
        "models/build/lib/mlp_model.py": BROKEN,
        "models/dist/mlp_model.py": BROKEN,
        "models/legacy/old_model.py": BROKEN,  # excluded in pyproject.toml
        "models/conftest.py": BROKEN,
        "models/test_mlp_model.py": BROKEN,
        "pyproject.toml": '[tool.netdoctor]\npaths = ["models"]\nexclude = ["models/legacy/**"]\n',
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_a_folder_is_walked_and_files_without_a_model_are_skipped(project: Path, netdoctor_subprocess: Any) -> None:
    run_netdoctor = netdoctor_subprocess
    res = run_netdoctor("check", "models/", "--format", "text", "--format", "json", "--output", "report.json",
                        cwd=project)
    assert res.code == 0, res.out + res.err
    assert "error:" not in res.err, res.err
    report = json.loads((project / "report.json").read_text())
    assert sorted(t["file"] for t in report["targets"]) == ["models/mlp_model.py", "models/pkg/nested_model.py"]
    assert sorted(s["file"] for s in report["skipped_files"]) == [
        "models/model_utils.py", "models/pkg/__init__.py", "models/pkg/blocks.py"]
    assert report["summary"]["skipped_files"] == 3 and report["errors"] == []
    for rel in ("models/model_utils.py", "models/pkg/blocks.py", "models/pkg/__init__.py"):
        assert f"{rel}: no model: skipped" in res.err.splitlines(), res.err
    assert "3 files skipped (no model)" in res.out.strip().splitlines()[-1]
    for rel in ("mlp_model.py", "pkg/nested_model.py"):
        assert f"models/{rel} ─" in res.out, res.out  # a report header per checked file

    # no path: [tool.netdoctor] paths, walked the same way
    again = run_netdoctor("check", "--format", "json", cwd=project)
    assert again.code == 0, again.err
    assert sorted(t["file"] for t in json.loads(again.out)["targets"]) == [
        "models/mlp_model.py", "models/pkg/nested_model.py"]


def test_a_named_file_without_a_model_is_an_error(project: Path, netdoctor_subprocess: Any) -> None:
    run_netdoctor = netdoctor_subprocess
    res = run_netdoctor("check", "models/model_utils.py", cwd=project)
    assert res.code == 2, res.out + res.err
    assert res.err.startswith("error: no model found in model_utils.py"), res.err
    assert "no model: skipped" not in res.err


def test_skip_no_model_makes_named_files_a_pattern(project: Path, netdoctor_subprocess: Any) -> None:
    run_netdoctor = netdoctor_subprocess
    # what the pre-commit hook passes: a helper and a test module, but no model file
    res = run_netdoctor("check", "--skip-no-model", "models/model_utils.py", "models/test_mlp_model.py",
                        "models/legacy/old_model.py", cwd=project)
    assert res.code == 0, res.out + res.err
    assert res.err.splitlines() == ["models/model_utils.py: no model: skipped"]
    assert "1 file skipped (no model)" in res.out
    # nothing selected at all: nothing to do
    none = run_netdoctor("check", "--skip-no-model", "models/test_mlp_model.py", cwd=project)
    assert (none.code, none.out, none.err) == (0, "", "")


def test_a_skipped_file_name_is_shown_escaped(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "evil\x1b[2J_model.py").write_text(HELPER)
    res = cli("check", "models")
    assert res.code == 0, res.err
    assert res.err.splitlines() == ["models/evil\\x1b[2J_model.py: no model: skipped"]
    assert "1 file skipped (no model)" in res.out
