"""The pytest plugin: fixture, marker, ``pytest --netdoctor`` items (no framework needed here).

Model loading and checking are replaced by fakes that read the findings from the model
file's text, so these tests exercise collection, caching, outcomes and configuration
in-process and fast. ``test_plugin_torch.py`` runs the real thing on tiny torch models.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from netdoctor import pytest_plugin as plugin
from netdoctor.pytest_plugin import items
from netdoctor.modelfile import selection
from netdoctor.config import Config
from netdoctor.errors import DataError, ModelLoadError
from netdoctor.findings import Category, Finding, Report, Severity, SkippedRule, TargetInfo
from netdoctor.rules import spec as _registry
from netdoctor.snapshot import Need

pytest_plugins = ["pytester"]

NAMES = {"ND101": "unnormalized-inputs", "ND201": "zero-weights", "ND301": "vanishing-gradients",
         "ND401": "dead-units"}


def _spec(code: str) -> _registry.RuleSpec:
    needs = {Need.DATA} if code == "ND101" else {Need.WEIGHTS}
    return _registry.RuleSpec(code, NAMES[code], f"{NAMES[code]}.", Category.from_code(code), Severity.WARNING,
                              frozenset(needs), {}, lambda s, c: iter(()), f"{NAMES[code]}.")


def fake_report(text: str, config: Config) -> Report:
    """Findings from lines ``# finding CODE SEVERITY LAYER``; ND101 is skipped (no data)."""
    findings = []
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["#", "finding"]:
            code, sev, layer = parts[2], parts[3], parts[4]
            if config.is_selected(code, NAMES[code]):
                findings.append(Finding(code, NAMES[code], Severity.parse(sev), Category.from_code(code),
                                        f"{code} measured on {layer} (limit 1)", layer=layer,
                                        recommendation="Do the fix."))
    selected = [c for c in NAMES if config.is_selected(c, NAMES[c])]
    hit = {f.code for f in findings}
    target = TargetInfo(file=None, framework="torch", model_class="Net",
                        rules_passed=tuple(c for c in selected if c not in hit and c != "ND101"),
                        skipped=(SkippedRule("ND101", NAMES["ND101"], "no data given"),) if "ND101" in selected else ())
    return Report(findings=tuple(findings), targets=(target,), rules_run=tuple(c for c in selected if c != "ND101"))


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Fake registry, loader and checker; returns the call log."""
    _registry.registry()
    monkeypatch.setattr(_registry, "_REGISTRY", {c: _spec(c) for c in NAMES})
    monkeypatch.setenv("COLUMNS", "200")  # keep the short summary lines whole
    calls: dict[str, list[Any]] = {"load": [], "check": [], "engine": []}

    def load_model(path: Path, project: Any) -> Any:
        calls["load"].append(path.name)
        text = path.read_text()
        if "BROKEN" in text:
            raise ModelLoadError(f"syntax error in {path.name} at line 1: invalid syntax; fix the file and rerun")
        return SimpleNamespace(text=text, name=path.name)

    def check_loaded(loaded: Any, config: Config) -> Report:
        calls["check"].append(loaded.name)
        if "BADDATA" in loaded.text:
            raise DataError("the data has 3 features but the model expects 4")
        return fake_report(loaded.text, config)

    def engine_check(model: Any, inputs: Any = None, targets: Any = None, *, config: Config, **kw: Any) -> Report:
        calls["engine"].append((model, config, kw))
        return fake_report(model, config)

    monkeypatch.setattr(items, "load_model", load_model)
    monkeypatch.setattr(items, "check_loaded", check_loaded)
    import netdoctor.api

    monkeypatch.setattr(netdoctor.api, "check", engine_check)
    return calls


#: what makes a file a model file to the selection's look at the source (the fake loader ignores it)
ENTRY = "def build_model():\n    pass\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{
        "models/net_model": "# finding ND301 error fc1\n# finding ND401 warning fc2/relu\n" + ENTRY,
        "models/clean_model": "# nothing to report\n" + ENTRY,
        "models/helpers": "# finding ND301 error x  (not a model file: no 'model' in the name)\n",
        "test_model": "def test_plain():\n    assert True\n",  # a test module, never a model file
    })
    return pytester


def test_items_per_file_and_rule(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    result = project.runpytest("--netdoctor", "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [
        "models/clean_model.py::ND101-unnormalized-inputs",
        "models/clean_model.py::ND201-zero-weights",
        "models/clean_model.py::ND301-vanishing-gradients",
        "models/clean_model.py::ND401-dead-units",
        "models/net_model.py::ND101-unnormalized-inputs",
        "models/net_model.py::ND201-zero-weights",
        "models/net_model.py::ND301-vanishing-gradients",
        "models/net_model.py::ND401-dead-units",
        "test_model.py::test_plain",
    ]
    assert fakes["check"] == []  # collecting imports, it does not check


def test_outcomes_and_one_check_per_file(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    result = project.runpytest("--netdoctor", "-rA")
    # clean: 3 pass + 1 skip; net: ND301 fails (error); ND401 is a warning, below fail-on=error
    result.assert_outcomes(passed=6, failed=1, skipped=2)
    assert sorted(fakes["check"]) == ["clean_model.py", "net_model.py"]
    result.stdout.fnmatch_lines([
        "*_ models/net_model.py: ND301 vanishing-gradients _*",
        "SKIPPED [[]1[]] models/clean_model.py:1: ND101 unnormalized-inputs: no data given",
        "SKIPPED [[]1[]] models/net_model.py:1: ND101 unnormalized-inputs: no data given",
        "FAILED models/net_model.py::ND301-vanishing-gradients - [[]error[]] fc1: ND301 measured on fc1*",
    ])
    out = result.stdout.str()
    assert "[error] fc1: ND301 measured on fc1 (limit 1)" in out and "Fix: Do the fix." in out
    assert "Traceback" not in out and "def runtest" not in out


def test_without_the_option_nothing_is_checked(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    project.runpytest().assert_outcomes(passed=1)
    assert fakes["load"] == []


def test_k_selects_rules_and_x_stops(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    result = project.runpytest("--netdoctor", "-k", "vanishing-gradients and net_model")
    result.assert_outcomes(failed=1)
    assert fakes["check"] == ["net_model.py"]  # the deselected file is never checked
    result = project.runpytest("--netdoctor", "-m", "netdoctor", "-k", "not ND101")
    result.assert_outcomes(passed=5, failed=1)
    result = project.runpytest("--netdoctor", "-x", "-p", "no:randomly", "--netdoctor-fail-on", "warning")
    result.assert_outcomes(passed=4, failed=1, skipped=2)  # stopped at ND301 of net_model


def test_fail_on_and_glob_from_pyproject(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    project.makepyprojecttoml('[tool.netdoctor]\nfail-on = "warning"\npytest-glob = "models/net_*.py"\n')
    result = project.runpytest("--netdoctor", "-m", "netdoctor")
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    result.stdout.fnmatch_lines(["netdoctor: model files 'models/net_*.py', fail-on warning, config: *pyproject.toml"])
    result = project.runpytest("--netdoctor", "-m", "netdoctor", "--netdoctor-fail-on", "never",
                               "--netdoctor-glob", "**/*_model.py")
    result.assert_outcomes(passed=6, skipped=2)


def test_select_from_pyproject_limits_items(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    project.makepyprojecttoml('[tool.netdoctor]\nselect = ["ND3", "ND4"]\nignore = ["dead-units"]\n')
    result = project.runpytest("--netdoctor", "-m", "netdoctor", "--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == [
        "models/clean_model.py::ND301-vanishing-gradients", "models/net_model.py::ND301-vanishing-gradients"]


def test_junitxml_has_one_testcase_per_file_and_rule(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    xml = project.path / "out.xml"
    project.runpytest("--netdoctor", "-m", "netdoctor", f"--junitxml={xml}")
    suite = ET.parse(xml).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("8", "1", "2")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("models.net_model", "ND301-vanishing-gradients")]
    assert "measured on fc1" in failed[0].find("failure").get("message")


def test_broken_file_is_one_failing_item(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    project.makepyfile(**{"models/broken_model": "BROKEN (\n", "models/baddata_model": "# BADDATA\n" + ENTRY})
    result = project.runpytest("--netdoctor", "-m", "netdoctor", "-k", "broken or baddata", "-rf")
    result.assert_outcomes(failed=5)  # broken: 1 load item; baddata: its 4 rule items
    result.stdout.fnmatch_lines(
        ["FAILED models/broken_model.py::load - models/broken_model.py: syntax error in broken_model.py at line 1*"])
    result.stdout.fnmatch_lines(
        ["FAILED models/baddata_model.py::ND101-unnormalized-inputs - models/baddata_model.py: the data has 3 features*"])
    assert fakes["check"] == ["baddata_model.py"]  # one check attempt, shared by the 4 items


def test_bad_config_is_a_usage_error_only_when_used(project: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    project.makepyprojecttoml('[tool.netdoctor]\nfail_on = "warning"\n')
    project.runpytest().assert_outcomes(passed=1)  # plain pytest is unaffected
    result = project.runpytest("--netdoctor")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown key 'fail_on' in [[]tool.netdoctor[]]; did you mean 'fail-on'?*"])


# -- the fixture and the marker -------------------------------------------------------------

FIXTURE_TESTS = '''
import pytest

SICK = "# finding ND301 error fc1\\n# finding ND401 warning fc2\\n"
MILD = "# finding ND401 warning fc2\\n"

def test_clean(netdoctor):
    report = netdoctor.check("# healthy\\n", [1.0])
    report.assert_ok()
    assert report.ok and report.default_fail_on == "error"

def test_warning_passes_by_default(netdoctor):
    netdoctor.check(MILD).assert_ok()  # the CLI's default too: fail on errors

def test_explicit_threshold(netdoctor):
    report = netdoctor.check(MILD)
    report.assert_ok(fail_on="error")
    netdoctor.assert_ok(report, "error")

@pytest.mark.netdoctor(fail_on="warning")
def test_marker_fail_on(netdoctor):
    netdoctor.check(MILD).assert_ok()

@pytest.mark.netdoctor(select=["ND4"], fail_on="info")
def test_marker_select(netdoctor):
    report = netdoctor.check(SICK)
    assert report.codes() == {"ND401"}
    assert not netdoctor.config.is_selected("ND301", "vanishing-gradients")

@pytest.mark.netdoctor(ignore="ND4")
def test_marker_ignore_fails_on_error(netdoctor):
    netdoctor.check(SICK).assert_ok()

@pytest.mark.netdoctor(fail_on="fatal")
def test_bad_marker(netdoctor):
    pass
'''


def test_fixture_and_marker(pytester: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    pytester.makepyfile(test_fixture=FIXTURE_TESTS)
    result = pytester.runpytest("-rA")
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed"), outcomes.get("errors")) == (4, 2, 1), result.stdout.str()
    result.stdout.fnmatch_lines([
        "*_ test_marker_fail_on _*",
        "*netdoctor: 1 finding at or above 'warning'*",
        "*ND401*dead-units*",
    ])
    result.stdout.fnmatch_lines(["*_ test_marker_ignore_fails_on_error _*", "*netdoctor: 1 finding at or above 'error'*",
                                 "*vanishing-gradients*"])
    result.stdout.fnmatch_lines(["PASSED test_fixture.py::test_warning_passes_by_default"])
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad_marker*", "*fail_on must be one of error, warning, info, never*"])
    assert all(isinstance(cfg, Config) for _, cfg, _ in fakes["engine"])


def test_fixture_uses_project_config(pytester: pytest.Pytester, fakes: dict[str, list[Any]]) -> None:
    pytester.makepyprojecttoml('[tool.netdoctor]\nignore = ["ND4"]\n')
    pytester.makepyfile(test_cfg='def test_it(netdoctor):\n'
                                 '    netdoctor.check("# finding ND401 warning fc2\\n").assert_ok()\n')
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(("pyproject", "args", "fails"), [
    ("", [], False),                                    # default: error, as the CLI
    ('fail-on = "warning"\n', [], True),               # the project's fail-on
    ("", ["--netdoctor-fail-on", "warning"], True),     # the plugin's flag
    ('fail-on = "warning"\n', ["--netdoctor-fail-on", "error"], False),
])
def test_fixture_fail_level_is_the_sessions(pytester: pytest.Pytester, fakes: dict[str, list[Any]], pyproject: str,
                                            args: list[str], fails: bool) -> None:
    pytester.makepyprojecttoml("[tool.netdoctor]\n" + pyproject)
    pytester.makepyfile(test_cfg='def test_it(netdoctor):\n'
                                 '    netdoctor.check("# finding ND401 warning fc2\\n").assert_ok()\n')
    pytester.runpytest(*args).assert_outcomes(passed=int(not fails), failed=int(fails))


# -- helpers and isolation ---------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "path", "expected"), [
    ("**/*model*.py", "model.py", True),
    ("**/*model*.py", "a/b/my_model.py", True),
    ("**/*model*.py", "a/models/net.py", False),
    ("models/*.py", "models/net.py", True),
    ("models/*.py", "models/sub/net.py", False),
    ("models/**/*.py", "models/sub/net.py", True),
    ("models/**", "models/sub/net.py", True),
    ("*_model.py", "deep/er/x_model.py", True),
    ("net?.py", "net1.py", True),
])
def test_glob_match(pattern: str, path: str, expected: bool) -> None:
    assert selection.glob_match(pattern, path) is expected


def test_checked_report_is_a_report() -> None:
    f = Finding("ND401", "dead-units", Severity.WARNING, Category.ACTIVATIONS, "m")
    r = plugin.CheckedReport.of(Report(findings=(f,), rules_run=("ND401",)), fail_on="error")
    assert isinstance(r, Report) and r.findings == (f,) and r.default_fail_on == "error"
    assert r.to_dict() == Report(findings=(f,), rules_run=("ND401",)).to_dict()
    r.assert_ok()
    with pytest.raises(pytest.fail.Exception, match="1 finding at or above 'warning'"):
        r.assert_ok("warning")


def test_loading_the_plugin_imports_no_framework(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_frameworks='''
import sys

def test_no_framework_loaded(netdoctor):
    import netdoctor.pytest_plugin, netdoctor.config, netdoctor.baseline, netdoctor.diff
    import netdoctor.reporters.sarif, netdoctor.reporters.junit, netdoctor.reporters.github
    loaded = sorted(m for m in ("torch", "tensorflow", "keras") if m in sys.modules)
    assert loaded == []
''')
    result = pytester.runpytest_subprocess("--netdoctor")  # the plugin comes from its entry point
    result.assert_outcomes(passed=1)
    # with autoloading off, `-p netdoctor` names the entry point
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.runpytest_subprocess("-p", "netdoctor", "--netdoctor").assert_outcomes(passed=1)
    code = ("import sys, netdoctor, netdoctor.pytest_plugin; "
            "bad = [m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    eps = [e for e in entry_points(group="pytest11") if e.name == "netdoctor"]
    assert [e.value for e in eps] == ["netdoctor.pytest_plugin"], "run `pip install -e . --no-deps` after editing pyproject.toml"
    assert textwrap.dedent(plugin.__doc__ or "").strip()
