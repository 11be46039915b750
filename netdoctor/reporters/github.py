"""GitHub Actions reporter: workflow-command annotations.

Each active finding becomes one line such as::

    ::error file=models/net.py,line=12,title=ND301 vanishing-gradients::gradient norm ...

which GitHub shows as an annotation on the model file in the run summary and the pull
request. Severities map to ``error``/``warning``/``notice``. Files that failed to load are
``error`` annotations too; a final plain line carries the summary.

Escaping follows the runner's rules: in the message ``%``, ``\\r`` and ``\\n`` become
``%25``, ``%0D`` and ``%0A``; in property values ``:`` and ``,`` are escaped as well
(``%3A``, ``%2C``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from netdoctor.baseline import normalize_path
from netdoctor.findings import Finding, Report, Severity
from netdoctor.sanitize import sanitize_report

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow-command message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value (``file=``, ``title=``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props: Any) -> str:
    """One workflow command line, e.g. ``::error file=a.py,title=T::message``."""
    items = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None)
    return f"::{kind}{' ' + items if items else ''}::{escape_data(message)}"


def render(report: Report, *, root: str | os.PathLike[str] | None = None, summary: bool = True,
           **_opts: Any) -> str:
    """Render ``report`` as GitHub workflow commands.

    Args:
        report: The finished report.
        root: Folder the annotation paths are relative to. Default: ``$GITHUB_WORKSPACE``
            (the checkout: GitHub attaches an annotation to the file at that path from the
            repository root, wherever netdoctor ran), else the project root as for SARIF (the
            folder of the pyproject.toml with ``[tool.netdoctor]``, else the working directory).
            File names in the report are relative to the working directory.
        summary: Append the plain summary line.

    Returns:
        One command per line, ending with a newline.
    """
    from netdoctor.reporters.sarif import guess_line, project_root

    report = sanitize_report(report)
    base = Path(root) if root is not None else Path(os.environ.get("GITHUB_WORKSPACE") or project_root())
    sources: dict[str, list[str]] = {}
    lines = []
    for f in report.findings:
        file = _path(f.file, base)
        line = (f.line or guess_line(f.file, f.layer, None, sources)) if file else None
        lines.append(command(COMMAND[f.severity], _message(f), file=file, line=line, title=f"{f.code} {f.name}"))
    for e in report.errors:
        lines.append(command("error", e.message, file=_path(e.file, base), title="netdoctor: cannot check this file"))
    if summary:
        lines.append(f"netdoctor: {report.summary()}")
    return "\n".join(lines) + "\n" if lines else ""


def _path(file: str | None, base: Path) -> str | None:
    """A report's file name (relative to the working directory, maybe ``path.py::NAME``) relative to ``base``."""
    if not file:
        return None
    return normalize_path(os.path.abspath(file.partition("::")[0]), base)


def _message(f: Finding) -> str:
    text = f"{f.layer}: {f.message}" if f.layer else f.message
    if f.recommendation:
        text += f"\n{f.recommendation}"
    return text
