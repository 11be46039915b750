"""Ready-made integrations work as written: the GitHub workflow, the pre-commit hooks, and
in-code suppression end to end on a real torch model.

The commands are taken from the YAML files and run against a tiny torch model file, so a
workflow or hook that names a flag the CLI does not have fails here, not in a user's CI.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "netdoctor.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
SCHEMA_PLACES = (REPO.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json",
                 REPO / "tests" / "reporters" / "sarif-schema-2.1.0.json")

TINY_MODEL = '''
import torch
from torch import nn


def build_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.init.kaiming_normal_(model[0].weight, nonlinearity="relu")
    nn.init.zeros_(model[0].bias)
    nn.init.xavier_normal_(model[2].weight)
    return model


def sample_batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g)


loss_fn = nn.CrossEntropyLoss()
'''


def netdoctor_exe() -> str:
    """The ``netdoctor`` console script of this environment; fails clearly when the CLI is missing."""
    exe = shutil.which("netdoctor", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        pytest.fail("the `netdoctor` command is not installed (pip install -e . in the venv); "
                    "the workflow and the pre-commit hooks call it")
    proc = subprocess.run([exe, "check", "--help"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"`netdoctor check` is missing or broken (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return exe


def env_with_venv(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("NO_COLOR", "1")
    env.update(extra)
    return env


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    path = tmp_path / "models" / "tiny_model.py"
    path.write_text(TINY_MODEL)
    return path


# -- GitHub workflow -----------------------------------------------------------------------


def workflow_steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    jobs = doc["jobs"]
    assert len(jobs) == 1
    return next(iter(jobs.values()))["steps"]


def test_workflow_is_well_formed() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on:` as True
    assert "pull_request" in triggers and "push" in triggers
    assert doc["permissions"]["security-events"] == "write"
    steps = workflow_steps()
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    install = " ".join(s.get("run", "") for s in steps if "pip install" in s.get("run", ""))
    assert "netdoctor-ml" in install and "download.pytorch.org/whl/cpu" in install
    check = next(s for s in steps if "netdoctor check" in s.get("run", ""))
    args = shlex.split(check["run"])
    sarif_out = args[args.index("--format") + 1: args.index("--format") + 4]
    assert sarif_out == ["sarif", "--output", "netdoctor.sarif"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "netdoctor.sarif"
    assert "always()" in upload["if"]
    assert steps.index(upload) > steps.index(check)


def test_workflow_check_command_runs_and_writes_valid_sarif(tiny: Path, tmp_path: Path) -> None:
    import jsonschema

    netdoctor_exe()
    doc = yaml.safe_load(WORKFLOW.read_text())
    check = next(s for s in workflow_steps() if "netdoctor check" in s.get("run", ""))
    env = env_with_venv(**{k: str(v) for k, v in doc.get("env", {}).items()})
    env["NETDOCTOR_PATHS"] = "models/*_model.py"  # the tiny model instead of the repository's examples
    proc = subprocess.run(["bash", "-c", check["run"]], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    sarif_file = tmp_path / "netdoctor.sarif"
    assert sarif_file.is_file(), proc.stderr
    log = json.loads(sarif_file.read_text())
    schema = json.loads(next(p for p in SCHEMA_PLACES if p.is_file()).read_text())
    jsonschema.validate(log, schema)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "netdoctor" and run["tool"]["driver"]["rules"]
    assert run["invocations"][0]["executionSuccessful"] is True
    for result in run["results"]:
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/tiny_model.py"
    # GitHub annotations on stdout: one command per active finding, then the summary
    lines = proc.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("netdoctor: ")
    active = [r for r in run["results"] if not r.get("suppressions")]
    assert len([ln for ln in lines if re.match(r"::(error|warning|notice) ", ln)]) == len(active)


# -- pre-commit hooks -----------------------------------------------------------------------


def test_pre_commit_hooks_are_well_formed() -> None:
    hooks = yaml.safe_load(HOOKS.read_text())
    assert [h["id"] for h in hooks] == ["netdoctor", "netdoctor-system"]
    for hook in hooks:
        for key in ("id", "name", "entry", "language"):
            assert hook.get(key), f"{hook.get('id')}: {key} missing"
        # netdoctor selects among the staged files (paths, pytest-glob, exclude) and skips helpers
        assert hook["entry"].split() == ["netdoctor", "check", "--skip-no-model"]
        assert hook["types"] == ["python"] and hook["require_serial"] is True
        files, exclude = re.compile(hook.get("files", "")), re.compile(hook["exclude"])

        def picked(path: str, files: re.Pattern[str] = files, exclude: re.Pattern[str] = exclude) -> bool:
            return bool(files.search(path)) and not exclude.search(path)

        assert picked("models/tiny_model.py") and picked("model.py") and picked("src/pkg/my_model.py")
        assert picked("nets/resnet.py")  # may lie in [tool.netdoctor] paths: netdoctor decides
        assert not picked("tests/test_model.py") and not picked("conftest.py") and not picked("a/model_test.py")


def test_pre_commit_hook_entry_runs_on_a_model_file(tiny: Path, tmp_path: Path) -> None:
    netdoctor_exe()
    hooks = yaml.safe_load(HOOKS.read_text())
    entries = {(h["entry"], tuple(h.get("args", []))) for h in hooks}
    assert len(entries) == 1, "the hooks share one command; test each if they diverge"
    entry, args = entries.pop()
    cmd = shlex.split(entry) + list(args) + ["models/tiny_model.py"]  # how pre-commit passes filenames
    proc = subprocess.run(cmd, cwd=tmp_path, env=env_with_venv(), capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "tiny_model.py" in proc.stdout
    broken = tmp_path / "models" / "broken_model.py"
    broken.write_text("def build_model(:\n")
    proc = subprocess.run(shlex.split(entry) + list(args) + ["models/broken_model.py"], cwd=tmp_path,
                          env=env_with_venv(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "syntax error" in proc.stderr, proc.stderr  # the commit is blocked


HELPER = """
import torch


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
"""


def test_pre_commit_blocks_a_broken_model_and_skips_helpers(tmp_path: Path) -> None:
    """A real ``pre-commit`` (offline: a local hook, language system) with this repository's hook."""
    netdoctor_exe()
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if pre_commit is None:
        pytest.fail("pre-commit is not installed in this environment: pip install -e '.[test]'")
    hook = next(h for h in yaml.safe_load(HOOKS.read_text()) if h["id"] == "netdoctor-system")
    local = {k: hook[k] for k in ("id", "name", "entry", "language", "types", "files", "exclude", "require_serial")
             if k in hook}
    local["verbose"] = True  # show netdoctor's output also when the hook passes
    repo = tmp_path / "repo"
    files = {
        ".pre-commit-config.yaml": yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local]}]}),
        "pyproject.toml": '[tool.netdoctor]\nselect = ["ND2"]\n',
        "models/tiny_model.py": TINY_MODEL,
        "models/model_utils.py": HELPER,       # named like a model file, defines no model
        "tests/test_model.py": "def build_model(:\n",  # a test module: never checked
    }
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    env = env_with_venv(HOME=str(tmp_path), PRE_COMMIT_HOME=str(tmp_path / "pre-commit-cache"), GIT_CONFIG_NOSYSTEM="1",
                        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
                        GIT_COMMITTER_EMAIL="t@example.com")

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(cmd), cwd=repo, env=env, capture_output=True, text=True, timeout=300)

    assert run("git", "init", "-q").returncode == 0
    assert run("git", "add", "-A").returncode == 0
    proc = run(pre_commit, "run", "--all-files")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "models/model_utils.py: no model: skipped" in out, out
    assert "models/tiny_model.py ─" in out, out  # the model file was checked
    assert "test_model.py" not in out, out

    # installed as the git hook: a commit of a helper passes, a broken model file is blocked
    assert run(pre_commit, "install").returncode == 0
    proc = run("git", "commit", "-q", "-m", "models")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (repo / "models" / "broken_model.py").write_text("def build_model(:\n")
    (repo / "models" / "train_model_utils.py").write_text(HELPER)
    run("git", "add", "-A")
    proc = run("git", "commit", "-q", "-m", "broken")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "error: syntax error in broken_model.py" in out, out
    assert "models/train_model_utils.py: no model: skipped" in out, out
    assert run("git", "rev-list", "--count", "HEAD").stdout.strip() == "1"  # the commit did not happen


# -- in-code suppression, end to end ------------------------------------------------------------


def zero_head_model() -> Any:
    """A torch MLP whose ``head`` block starts with an all-zero hidden layer."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
            self.head = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    torch.manual_seed(0)
    model = Net()
    nn.init.zeros_(model.head[0].weight)
    return model


def test_allow_moves_zero_weights_to_suppressed() -> None:
    import torch

    import netdoctor

    x, y = torch.randn(32, 8), torch.randint(0, 4, (32,))
    control = netdoctor.check(zero_head_model(), x, y, select=["ND201"])
    assert any(f.code == "ND201" and (f.layer or "").startswith("head") for f in control.findings), (
        "ND201 zero-weights did not flag the zeroed layer head.0 (rule or torch adapter missing?): "
        f"{control.findings}")

    model = zero_head_model()
    netdoctor.allow(model.head, "zero-weights", reason="zero-init head")
    report = netdoctor.check(model, x, y, select=["ND201"])
    assert not report.by_code("ND201"), report.findings
    moved = [f for f in report.suppressed if f.code == "ND201"]
    assert moved and all(f.layer.startswith("head") for f in moved)
    assert moved[0].evidence["suppressed_because"] == "zero-init head"
    assert report.exit_code("error") == 0
