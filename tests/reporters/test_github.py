"""GitHub workflow-command annotations, with the runner's escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from netdoctor.findings import Category, Finding, LoadError, Report, Severity
from netdoctor.reporters import github


def test_escaping_rules() -> None:
    assert github.escape_data("50% of\r\nunits: a,b") == "50%25 of%0D%0Aunits: a,b"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.command("warning", "m") == "::warning::m"
    assert github.command("error", "x", file="a,b.py", line=None, title="T: 1") == "::error file=a%2Cb.py,title=T%3A 1::x"


def test_annotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text("import torch\n\nclass Net:\n    def __init__(self):\n        self.fc1 = 1\n")
    report = Report(
        findings=(
            Finding("ND301", "vanishing-gradients", Severity.ERROR, Category.GRADIENTS,
                    "grad norm 1e-9 (limit 1e-4), 100% below: bad", layer="fc1",
                    recommendation="Use He init,\nthen retry.", file=str(tmp_path / "models" / "net.py")),
            Finding("ND401", "dead-units", Severity.WARNING, Category.ACTIVATIONS, "62% dead", file="models/net.py"),
            Finding("ND504", "bias-before-batchnorm", Severity.INFO, Category.STRUCTURE, "bias", layer="conv"),
        ),
        suppressed=(Finding("ND201", "zero-weights", Severity.ERROR, Category.WEIGHTS, "hidden", layer="head"),),
        errors=(LoadError("models/bad,1.py", "SyntaxError: invalid syntax"),),
    )
    lines = github.render(report).splitlines()
    assert lines[0] == ("::error file=models/net.py,line=5,title=ND301 vanishing-gradients::"
                        "fc1: grad norm 1e-9 (limit 1e-4), 100%25 below: bad%0AUse He init,%0Athen retry.")
    assert lines[1] == "::warning file=models/net.py,line=1,title=ND401 dead-units::62%25 dead"
    assert lines[2] == "::notice title=ND504 bias-before-batchnorm::conv: bias"
    assert lines[3] == "::error file=models/bad%2C1.py,title=netdoctor%3A cannot check this file::SyntaxError: invalid syntax"
    assert lines[4].startswith("netdoctor: 1 error, 1 warning, 1 info")
    assert len(lines) == 5 and not any("hidden" in line for line in lines)
    assert github.render(Report(), summary=False) == ""


def test_a_located_layer_line_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text("import keras\n\nh = 1\n")
    f = Finding("ND201", "zero-weights", Severity.ERROR, Category.WEIGHTS, "zero", layer="dense_1", file="m.py", line=3)
    assert github.render(Report(findings=(f,)), summary=False).startswith("::error file=m.py,line=3,")


def test_paths_are_relative_to_the_checkout_wherever_netdoctor_ran(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub attaches an annotation to the path from the repository root: run from models/, a
    finding on net.py must still say models/net.py (GITHUB_WORKSPACE), else the project root's path."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text("class Net:\n    def __init__(self):\n        self.fc1 = 1\n")
    monkeypatch.chdir(tmp_path / "models")
    f = Finding("ND301", "vanishing-gradients", Severity.ERROR, Category.GRADIENTS, "m", layer="fc1", file="net.py")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    assert github.render(Report(findings=(f,)), summary=False).startswith("::error file=models/net.py,line=3,")
    monkeypatch.delenv("GITHUB_WORKSPACE")
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor]\nfail_on = 'error'\n")
    assert github.render(Report(findings=(f,)), summary=False).startswith("::error file=models/net.py,line=3,")
    (tmp_path / "pyproject.toml").unlink()  # no project root: the working directory
    assert github.render(Report(findings=(f,)), summary=False).startswith("::error file=net.py,line=3,")
