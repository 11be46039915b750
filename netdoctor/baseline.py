"""Baselines: adopt netdoctor on an existing model without fixing everything first.

``netdoctor check --write-baseline FILE`` records the current findings; later runs with
``--baseline FILE`` fail only on findings that are new, and report the ones that are gone.

Findings are matched by a *stable fingerprint* of (model file, rule code, layer). Measured
numbers and message wording are deliberately left out, so remeasuring the same problem (a
slightly different dead fraction on another probe batch) keeps its fingerprint. Two
findings with the same fingerprint (a rule that reports one layer twice) are matched as a
multiset: the baseline absorbs as many of them as it recorded.

The baseline file is JSON, sorted and free of timestamps so that it diffs well in review::

    {"netdoctor_baseline": 1, "version": "0.1.0",
     "findings": [{"fingerprint": "3f2a...", "file": "models/net.py", "rule": "ND201",
                   "name": "zero-weights", "layer": "head", "severity": "error",
                   "message": "..."}]}
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from netdoctor._version import __version__
from netdoctor.errors import ConfigError
from netdoctor.findings import Finding, Report

FORMAT_VERSION = 1
IN_BASELINE = "in baseline"


def normalize_path(file: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None) -> str | None:
    """A model file as a stable, relative POSIX path (``"models/net.py"``).

    Absolute paths under ``root`` (default: the current directory) are made relative to it;
    ``./`` prefixes and backslashes are removed, so the same file gives the same string on
    every machine.
    """
    if file is None:
        return None
    text = os.fspath(file)
    path = Path(text)
    if path.is_absolute():
        base = Path(root if root is not None else os.getcwd()).resolve()
        try:
            path = path.resolve().relative_to(base)
        except ValueError:
            return PurePosixPath(path.as_posix()).as_posix()
    posix = path.as_posix().replace("\\", "/")
    while posix.startswith("./"):
        posix = posix[2:]
    return posix or "."


def fingerprint(finding: Finding | dict[str, Any]) -> str:
    """Stable identity of a finding: a hash of (file, rule, layer), no measured numbers.

    Accepts a :class:`Finding` or its ``to_dict()`` form (as found in JSON reports).
    """
    if isinstance(finding, Finding):
        file, code, layer = finding.file, finding.code, finding.layer
    else:
        file, code, layer = finding.get("file"), finding.get("rule") or finding.get("code"), finding.get("layer")
    key = "\0".join((normalize_path(file) or "", str(code or "").upper(), layer or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One recorded finding of a baseline file."""

    fingerprint: str
    file: str | None
    rule: str
    name: str
    layer: str | None
    severity: str
    message: str

    @classmethod
    def of(cls, finding: Finding) -> BaselineEntry:
        return cls(fingerprint(finding), normalize_path(finding.file), finding.code, finding.name,
                   finding.layer, str(finding.severity), finding.message)

    def describe(self) -> str:
        """``"ND201 zero-weights at head in models/net.py"``."""
        where = f" at {self.layer}" if self.layer else ""
        return f"{self.rule} {self.name}{where}" + (f" in {self.file}" if self.file else "")

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "file": self.file, "rule": self.rule, "name": self.name,
                "layer": self.layer, "severity": self.severity, "message": self.message}


def write_baseline(report: Report, path: str | os.PathLike[str]) -> None:
    """Record the active findings of ``report`` in ``path`` (overwritten).

    Suppressed findings are not recorded: they are already silenced in code or config.
    """
    entries = sorted((BaselineEntry.of(f) for f in report.findings),
                     key=lambda e: (e.file or "", e.rule, e.layer or "", e.fingerprint))
    doc = {"netdoctor_baseline": FORMAT_VERSION, "version": __version__,
           "findings": [e.to_dict() for e in entries]}
    try:
        Path(path).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the baseline to {path}: {exc.strerror or exc}; give a file name such as "
                          "netdoctor-baseline.json") from None


def read_baseline(path: str | os.PathLike[str]) -> list[BaselineEntry]:
    """Load a baseline file.

    Raises:
        ConfigError: The file is missing or is not a netdoctor baseline.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"baseline file {str(p)!r} not found; create it with --write-baseline {p}")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or "netdoctor_baseline" not in doc:
            raise ValueError("no 'netdoctor_baseline' key")
        if doc["netdoctor_baseline"] > FORMAT_VERSION:
            raise ValueError(f"format {doc['netdoctor_baseline']} is newer than this netdoctor understands")
        return [BaselineEntry(
            fingerprint=str(e["fingerprint"]), file=e.get("file"), rule=str(e["rule"]), name=str(e.get("name", "")),
            layer=e.get("layer"), severity=str(e.get("severity", "")), message=str(e.get("message", "")),
        ) for e in doc["findings"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{p} is not a netdoctor baseline ({exc}); rewrite it with --write-baseline {p}") from None


def apply_baseline(report: Report, path: str | os.PathLike[str]) -> Report:
    """Move findings recorded in the baseline to ``suppressed``; only new ones stay active.

    Moved findings get ``evidence["suppressed_because"] = "in baseline"``. The exit code of
    the returned report therefore reflects new findings only. Use :func:`fixed_since` for
    the baseline entries that no longer occur.
    """
    budget = Counter(e.fingerprint for e in read_baseline(path))
    active: list[Finding] = []
    moved: list[Finding] = []
    for f in report.findings:
        fp = fingerprint(f)
        if budget[fp] > 0:
            budget[fp] -= 1
            moved.append(f.with_(evidence={**f.evidence, "suppressed_because": IN_BASELINE}))
        else:
            active.append(f)
    return replace(report, findings=tuple(active), suppressed=tuple(report.suppressed) + tuple(moved))


def fixed_since(report: Report, path: str | os.PathLike[str]) -> list[BaselineEntry]:
    """Baseline entries that this run no longer finds ("fixed").

    Works on the report before or after :func:`apply_baseline`. Only entries that this run
    could have reproduced count as fixed: the entry's file was checked without a load error
    and its rule ran on that file. Checking one file against a baseline of the whole project
    therefore reports nothing fixed for the other files.
    """
    current = list(report.findings) + [
        f for f in report.suppressed if f.evidence.get("suppressed_because") == IN_BASELINE
    ]
    seen = Counter(fingerprint(f) for f in current)
    ran = _rules_run_per_file(report, current)
    failed = {normalize_path(e.file) for e in report.errors}
    fixed: list[BaselineEntry] = []
    for entry in read_baseline(path):
        if seen[entry.fingerprint] > 0:
            seen[entry.fingerprint] -= 1
            continue
        file = normalize_path(entry.file)
        if file in failed or entry.rule not in ran.get(file, ()):
            continue
        fixed.append(entry)
    return fixed


def _rules_run_per_file(report: Report, current: Iterable[Finding]) -> dict[str | None, set[str]]:
    ran: dict[str | None, set[str]] = {}
    for t in report.targets:
        codes = ran.setdefault(normalize_path(t.file), set())
        codes.update(t.rules_passed)
        codes.update(set(report.rules_run) - {s.code for s in t.skipped})
    for f in list(current) + list(report.suppressed):
        ran.setdefault(normalize_path(f.file), set()).add(f.code)
    if not report.targets:
        ran.setdefault(None, set()).update(report.rules_run)
    return ran
