"""SARIF 2.1.0 reporter, for GitHub code scanning and other SARIF viewers.

One run with:

* ``tool.driver``: name, version, informationUri, and one ``reportingDescriptor`` per rule
  that ran (or produced a result): short description (the summary), full description (the
  rule's docstring), help (text and markdown), default level, category tags;
* one ``result`` per finding: ``ruleId``/``ruleIndex``, ``level``, message (measurement and
  recommendation), a physical location at the model file and a logical location naming the
  layer, and ``partialFingerprints`` from the stable fingerprint of :mod:`netdoctor.baseline`.
  The file's URI is relative to the project root (the folder of the pyproject.toml with
  ``[tool.netdoctor]``, else the working directory) under ``uriBaseId`` ``PROJECTROOT``, which
  the run's ``originalUriBaseIds`` resolves to the root's ``file://`` URI; a file outside the
  root gets its absolute ``file://`` URI. The region is the line that created the layer when
  the loader located it (:attr:`~netdoctor.findings.Finding.line`: Keras model files), else
  the line where the layer seems to be defined (:func:`guess_line`), else line 1, since code
  scanning needs one;
* suppressed findings as results with ``suppressions`` (``inSource`` for
  ``netdoctor.allow``, ``external`` for config ignores and baselines), so viewers show them
  as dismissed;
* load errors and skipped rules as ``toolExecutionNotifications`` of the invocation.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from netdoctor._version import __version__
from netdoctor.baseline import fingerprint
from netdoctor.findings import Finding, Report, Severity

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/netdoctor-ml/"
FINGERPRINT_KEY = "netdoctorFingerprint/v1"
ROOT_ID = "PROJECTROOT"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def render(report: Report, *, root: str | os.PathLike[str] | None = None, indent: int | None = 2,
           **_opts: Any) -> str:
    """Render ``report`` as a SARIF 2.1.0 log (JSON text).

    Args:
        report: The finished report.
        root: Folder that artifact URIs are relative to (default: :func:`project_root`).
            Relative file names in the report are relative to the working directory, as
            given on the command line.
        indent: JSON indentation (``None`` for one line).

    Returns:
        The SARIF document, ending with a newline.
    """
    return json.dumps(to_sarif(report, root=root), indent=indent, ensure_ascii=False) + "\n"


def to_sarif(report: Report, *, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The SARIF log as a JSON-ready mapping (see :func:`render`)."""
    root = Path(root).resolve() if root is not None else project_root()
    codes = _rule_codes(report)
    index = {code: i for i, code in enumerate(codes)}
    sources: dict[str, list[str]] = {}
    results = [_result(f, index, root, sources) for f in report.findings]
    results += [_result(f, index, root, sources, suppressed=True) for f in report.suppressed]
    notifications = [_load_error(e.file, e.message, root) for e in report.errors]
    notifications += [
        {"level": "note", "message": {"text": f"{s.label} skipped: {s.reason}"},
         "descriptor": {"id": s.code}}
        for s in report.skipped
    ]
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "netdoctor",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": [_descriptor(code, report) for code in codes],
        }},
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "originalUriBaseIds": {ROOT_ID: {"uri": root.as_uri().rstrip("/") + "/"}},
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


# -- rules --------------------------------------------------------------------------


def _rule_codes(report: Report) -> list[str]:
    codes = list(dict.fromkeys(report.rules_run))
    for f in (*report.findings, *report.suppressed):
        if f.code not in codes:
            codes.append(f.code)
    return sorted(codes)


def _descriptor(code: str, report: Report) -> dict[str, Any]:
    from netdoctor.rules import resolve

    spec = resolve(code)
    example = next((f for f in (*report.findings, *report.suppressed) if f.code == code), None)
    name = spec.name if spec else (example.name if example else code)
    summary = spec.summary if spec else name
    doc = spec.doc if spec and spec.doc else summary
    default = spec.severity if spec else (example.severity if example else Severity.WARNING)
    category = str(spec.category) if spec else (str(example.category) if example else "")
    options = dict(spec.options) if spec else {}
    markdown = f"**{code} {name}**\n\n{doc}"
    if options:
        rows = "\n".join(f"- `{k}` = `{v!r}`" for k, v in options.items())
        markdown += ("\n\nConfigure in `pyproject.toml`:\n\n"
                     f"```toml\n[tool.netdoctor.options.{code}]\n{next(iter(options))} = ...\n```\n\nDefaults:\n{rows}")
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": doc},
        "help": {"text": doc, "markdown": markdown},
        "defaultConfiguration": {"level": LEVEL[default]},
        "properties": {"tags": ["netdoctor", category] if category else ["netdoctor"], "category": category},
    }


# -- results ------------------------------------------------------------------------


def _result(f: Finding, index: dict[str, int], root: Any, sources: dict[str, list[str]],
            suppressed: bool = False) -> dict[str, Any]:
    text = f.message.rstrip()
    markdown = text
    if f.recommendation:
        text += f"\nFix: {f.recommendation}"
        markdown += f"\n\n**Fix:** {f.recommendation}"
    if f.snippet:
        markdown += f"\n\n```python\n{f.snippet}\n```"
    location: dict[str, Any] = {}
    if f.file:
        location["physicalLocation"] = {
            "artifactLocation": _artifact(f.file, root),
            "region": {"startLine": f.line or guess_line(f.file, f.layer, None, sources)},
        }
    if f.layer:
        location["logicalLocations"] = [{"name": f.layer.replace("/", ".").split(".")[-1],
                                         "fullyQualifiedName": f.layer, "kind": "member"}]
    result: dict[str, Any] = {
        "ruleId": f.code,
        "ruleIndex": index[f.code],
        "level": LEVEL[f.severity],
        "message": {"text": text, "markdown": markdown},
        "locations": [location] if location else [],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f)},
        "properties": {"name": f.name, "category": str(f.category),
                       "evidence": f.to_dict()["evidence"]},
    }
    if f.step is not None:
        result["properties"]["step"] = f.step
    if suppressed:
        why = str(f.evidence.get("suppressed_because", "suppressed"))
        kind = "external" if why in ("in baseline", "per-layer ignore in config") else "inSource"
        result["suppressions"] = [{"kind": kind, "status": "accepted", "justification": why}]
    return result


def _load_error(file: str, message: str, root: Path) -> dict[str, Any]:
    note: dict[str, Any] = {"level": "error", "message": {"text": f"{file}: {message}"}}
    if file:
        note["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(file, root)}}]
    return note


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the nearest pyproject.toml with ``[tool.netdoctor]`` above ``start``
    (default: the working directory), else ``start`` itself."""
    from netdoctor.config_file import find_config_file

    here = Path(start if start is not None else os.getcwd()).resolve()
    found = find_config_file(here)
    return found.parent if found is not None else here


def _artifact(file: str, root: Path) -> dict[str, str]:
    """The artifact location of a model file named as on the command line (relative to the working
    directory): relative to ``root`` under :data:`ROOT_ID`, or an absolute ``file://`` URI."""
    path = Path(os.path.abspath(file.partition("::")[0]))
    try:
        rel = path.relative_to(root)
    except ValueError:
        try:
            rel = path.resolve().relative_to(root)  # the root was resolved: follow links the same way
        except ValueError:
            return {"uri": path.as_uri()}
    return {"uri": quote(rel.as_posix()), "uriBaseId": ROOT_ID}


def guess_line(file: str | None, layer: str | None, root: Any = None,
               sources: dict[str, list[str]] | None = None) -> int:
    """Line where ``layer`` seems to be defined in ``file``, else 1.

    Looks for ``self.fc2 = ...``, ``fc2 = ...`` or ``name="fc2"``, trying the last part
    of the qualified layer name first (``head.0/relu`` tries ``relu``, then ``head``).
    Code scanning needs a line; a guess on the defining line beats line 1.

    Args:
        file: The model file (``path.py`` or ``path.py::NAME``).
        layer: Qualified layer name.
        root: Folder a relative ``file`` is relative to (default: cwd).
        sources: Cache of file lines shared between calls of one rendering.
    """
    if not file or not layer:
        return 1
    sources = {} if sources is None else sources
    path = Path(file.partition("::")[0])
    if not path.is_absolute() and root is not None:
        path = Path(root) / path
    key = str(path)
    if key not in sources:
        try:
            sources[key] = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            sources[key] = []
    lines = sources[key]
    for part in _name_candidates(layer):
        pat = re.compile(rf"(?:\bself\.{re.escape(part)}\s*=[^=])|(?:\bname\s*=\s*['\"]{re.escape(part)}['\"])"
                         rf"|(?:^\s*{re.escape(part)}\s*=[^=])")
        for number, line in enumerate(lines, start=1):
            if pat.search(line):
                return number
    return 1


def _name_candidates(layer: str) -> Iterable[str]:
    parts = [p for p in re.split(r"[./]", layer) if p and not p.isdigit()]
    return reversed(parts)
