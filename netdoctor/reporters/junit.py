"""JUnit XML reporter, for CI test dashboards (Jenkins, GitLab, Azure, GitHub test reporters).

One ``<testsuite>`` per model file and one ``<testcase>`` per (model file, rule):

* passing: the rule ran and found nothing at or above ``fail_on`` (milder or suppressed
  findings are listed in ``<system-out>``);
* failing: a ``<failure>`` whose ``message`` is the first finding and whose text lists all
  findings of the rule with layer, recommendation and snippet;
* skipped: a ``<skipped>`` with the reason (e.g. "no data given");

and a file that could not be checked is one testcase ``load`` with an ``<error>``.
The ``tests``/``failures``/``errors``/``skipped`` counts of every suite and of the root
add up.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Iterable

from netdoctor.baseline import normalize_path
from netdoctor.findings import Finding, LoadError, Report, Severity, TargetInfo
from netdoctor.sanitize import escape_controls, sanitize_report

def render(report: Report, *, fail_on: str | Severity = "error", suite_name: str = "netdoctor",
           **_opts: Any) -> str:
    """Render ``report`` as JUnit XML.

    Args:
        report: The finished report.
        fail_on: Findings at or above this severity fail their testcase (``"error"``,
            ``"warning"``, ``"info"``; ``"never"`` fails none). Pass the same value as the
            exit code uses so the dashboard and the build agree.
        suite_name: Name of the root ``<testsuites>`` element.

    Returns:
        The XML document, ending with a newline.
    """
    threshold = None if str(fail_on).strip().lower() == "never" else Severity.parse(fail_on)
    report = sanitize_report(report)
    root = ET.Element("testsuites", name=escape_controls(suite_name))
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for file, targets in _files(report).items():
        suite = _suite(report, file, targets, threshold)
        for k in totals:
            totals[k] += int(suite.get(k, "0"))
        root.append(suite)
    for k, v in totals.items():
        root.set(k, str(v))
    total = report.timings.get("total")
    if total is not None:
        root.set("time", f"{total:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _files(report: Report) -> dict[str | None, list[TargetInfo | LoadError]]:
    """Checked files in report order, each with its targets and load errors."""
    files: dict[str | None, list[TargetInfo | LoadError]] = {}
    for t in report.targets:
        files.setdefault(normalize_path(t.file), []).append(t)
    for f in (*report.findings, *report.suppressed):
        files.setdefault(normalize_path(f.file), [])
    for e in report.errors:
        files.setdefault(normalize_path(e.file), []).append(e)
    return files


def _suite(report: Report, file: str | None, items: list[TargetInfo | LoadError],
           threshold: Severity | None) -> ET.Element:
    label = file or next((t.model_class for t in items if isinstance(t, TargetInfo) and t.model_class), "model")
    classname = _classname(file, label)
    suite = ET.Element("testsuite", name=label)
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)

    for err in (i for i in items if isinstance(i, LoadError)):
        case = ET.SubElement(suite, "testcase", classname=classname, name="load")
        if file:
            case.set("file", file)
        ET.SubElement(case, "error", message=err.message, type="LoadError").text = (
            f"{err.file}: {err.message}")
        counts["tests"] += 1
        counts["errors"] += 1

    targets = [i for i in items if isinstance(i, TargetInfo)]
    active = [f for f in report.findings if normalize_path(f.file) == file]
    quiet = [f for f in report.suppressed if normalize_path(f.file) == file]
    skipped = {s.code: s for t in targets for s in t.skipped}
    names = {s.code: s.name for s in skipped.values()}
    names.update({f.code: f.name for f in (*active, *quiet)})
    codes = set(report.rules_run) | set(skipped) | set(names)
    for t in targets:
        codes |= set(t.rules_passed)
    if not targets and not active and not quiet:
        codes = set()  # a file that only failed to load
    for code in sorted(codes):
        counts["tests"] += 1
        name = names.get(code) or _rule_name(code)
        case = ET.SubElement(suite, "testcase", classname=classname, name=f"{code} {name}".strip())
        if file:
            case.set("file", file)
        mine = [f for f in active if f.code == code]
        failing = [f for f in mine if threshold is not None and f.severity >= threshold]
        if failing:
            counts["failures"] += 1
            first = failing[0]
            failure = ET.SubElement(case, "failure", message=_one_line(first), type=f"{code} {name}")
            failure.text = "\n\n".join(_describe(f) for f in failing)
        elif code in skipped and not mine and code not in _ran(targets):
            counts["skipped"] += 1
            s = skipped[code]
            ET.SubElement(case, "skipped", message=(f"{s.part}: " if s.part else "") + s.reason)
        notes = [f for f in mine if f not in failing] + [f for f in quiet if f.code == code]
        if notes:
            ET.SubElement(case, "system-out").text = "\n\n".join(_describe(f) for f in notes)
    for k, v in counts.items():
        suite.set(k, str(v))
    return suite


def _ran(targets: Iterable[TargetInfo]) -> set[str]:
    return {c for t in targets for c in t.rules_passed}


def _rule_name(code: str) -> str:
    from netdoctor.rules import resolve

    spec = resolve(code)
    return spec.name if spec else ""


def _classname(file: str | None, label: str) -> str:
    base = file or label
    if base.endswith(".py"):
        base = base[:-3]
    return "netdoctor." + re.sub(r"[/\\]+", ".", base).strip(".")


def _one_line(f: Finding) -> str:
    where = f"{f.layer}: " if f.layer else ""
    return f"{where}{f.message}"


def _describe(f: Finding) -> str:
    lines = [f"[{f.severity}] {f.code} {f.name}" + (f" at {f.layer}" if f.layer else ""), f.message]
    if f.recommendation:
        lines.append(f"Fix: {f.recommendation}")
    if f.snippet:
        lines.append(f.snippet)
    why = f.evidence.get("suppressed_because")
    if why:
        lines.append(f"(suppressed: {why})")
    return "\n".join(lines)

