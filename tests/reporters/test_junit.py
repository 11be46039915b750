"""JUnit XML: one testcase per (model file, rule); counts add up."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from netdoctor.findings import Category, Finding, LoadError, Report, Severity, SkippedRule, TargetInfo
from netdoctor.reporters import junit


def f(code: str, name: str, sev: Severity, file: str | None, layer: str | None = None, msg: str = "measured",
      **evidence: object) -> Finding:
    return Finding(code, name, sev, Category.from_code(code), msg, layer=layer, file=file,
                   recommendation="Do the thing.", evidence=evidence)


def report() -> Report:
    a, b = "models/a.py", "models/b.py"
    return Report(
        findings=(
            f("ND301", "vanishing-gradients", Severity.ERROR, a, "fc1", "grad norm 1e-9 < 1e-4 \x07<&>"),
            f("ND301", "vanishing-gradients", Severity.ERROR, a, "fc2", "second"),
            f("ND401", "dead-units", Severity.WARNING, a, "fc1/relu", "62% dead"),
            f("ND401", "dead-units", Severity.WARNING, b, "x", "70% dead"),
        ),
        suppressed=(f("ND201", "zero-weights", Severity.ERROR, a, "head", "zero", suppressed_because="zero-init head"),),
        targets=(
            TargetInfo(file=a, framework="torch", rules_passed=("ND201",),
                       skipped=(SkippedRule("ND101", "unnormalized-inputs", "no data given"),)),
            TargetInfo(file=b, framework="keras", rules_passed=("ND101", "ND201", "ND301")),
        ),
        rules_run=("ND101", "ND201", "ND301", "ND401"),
        errors=(LoadError("models/c.py", "SyntaxError: invalid syntax (c.py, line 3)"),),
        timings={"total": 1.25},
    )


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {c.get("name"): c for c in suite.findall("testcase")}


def test_junit_structure_and_counts() -> None:
    xml = junit.render(report(), fail_on="warning")
    root = ET.fromstring(xml.encode())
    assert root.tag == "testsuites" and root.get("time") == "1.250"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["models/a.py", "models/b.py", "models/c.py"]

    a = cases(suites["models/a.py"])
    assert list(a) == ["ND101 unnormalized-inputs", "ND201 zero-weights", "ND301 vanishing-gradients", "ND401 dead-units"]
    assert a["ND101 unnormalized-inputs"].find("skipped").get("message") == "no data given"
    assert a["ND201 zero-weights"].find("failure") is None
    assert "zero-init head" in a["ND201 zero-weights"].find("system-out").text
    fail = a["ND301 vanishing-gradients"].find("failure")
    assert fail.get("message") == "fc1: grad norm 1e-9 < 1e-4 \\x07<&>"  # control char shown as an escape, XML escaped
    assert "fc2" in fail.text and "Fix: Do the thing." in fail.text
    assert a["ND301 vanishing-gradients"].get("classname") == "netdoctor.models.a"
    assert a["ND301 vanishing-gradients"].get("file") == "models/a.py"
    assert a["ND401 dead-units"].find("failure") is not None
    sa = suites["models/a.py"]
    assert (sa.get("tests"), sa.get("failures"), sa.get("errors"), sa.get("skipped")) == ("4", "2", "0", "1")

    b = cases(suites["models/b.py"])
    assert [n for n, c in b.items() if c.find("failure") is not None] == ["ND401 dead-units"]
    assert all(c.find("skipped") is None for c in b.values())

    c = suites["models/c.py"]
    assert list(cases(c)) == ["load"]
    assert "SyntaxError" in cases(c)["load"].find("error").get("message")
    assert (c.get("tests"), c.get("errors")) == ("1", "1")

    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key)) == sum(int(s.get(key)) for s in suites.values())
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("9", "3", "1", "1")


def test_fail_on_threshold_moves_milder_findings_to_system_out() -> None:
    root = ET.fromstring(junit.render(report()).encode())  # default: error
    a = cases(root.find("testsuite"))
    assert a["ND401 dead-units"].find("failure") is None
    assert "62% dead" in a["ND401 dead-units"].find("system-out").text
    assert root.get("failures") == "1"
    never = ET.fromstring(junit.render(report(), fail_on="never").encode())
    assert never.get("failures") == "0"


def test_library_report_without_file() -> None:
    r = Report(findings=(f("ND301", "vanishing-gradients", Severity.ERROR, None, "fc1"),),
               targets=(TargetInfo(file=None, framework="torch", model_class="MLP"),), rules_run=("ND301",))
    root = ET.fromstring(junit.render(r).encode())
    suite = root.find("testsuite")
    assert suite.get("name") == "MLP" and suite.get("failures") == "1"
    assert suite.find("testcase").get("classname") == "netdoctor.MLP"


def test_empty_report() -> None:
    root = ET.fromstring(junit.render(Report()).encode())
    assert root.get("tests") == "0" and root.findall("testsuite") == []
