"""Concise reporter: one line per finding, ruff-style, then the summary line.

::

    models/net.py:14: ND301 vanishing-gradients [error] fc1: gradient norm of fc1.weight is ...
    models/net.py:9: ND401 dead-units [warning] relu2: 62% of the units never fired ...
    models/bad.py: ERROR could not check: syntax error in bad.py at line 3: invalid syntax
    1 error, 1 warning, 17 rules passed, 1 file failed to load in 0.84s

The line number is where the layer seems to be defined (the guess SARIF and GitHub use), 1
when there is none. Each finding is one line whatever the width (grep- and editor-friendly);
suppressed findings are counted in the summary, not listed.
"""

from __future__ import annotations

from typing import Any

from netdoctor.findings import Finding, Report, Severity
from netdoctor.sanitize import escape_controls, sanitize_report

_ANSI = {Severity.ERROR: "\x1b[1;31m", Severity.WARNING: "\x1b[33m", Severity.INFO: "\x1b[36m"}
_RESET = "\x1b[0m"


def render(report: Report, *, color: bool = False, **_opts: Any) -> str:
    """Render ``report`` as one line per finding and a closing summary line.

    Args:
        report: The finished report.
        color: Colour the severities with ANSI codes (the CLI passes ``True`` on a terminal).

    Returns:
        The lines, ending with a newline.
    """
    from netdoctor.reporters.sarif import guess_line

    report = sanitize_report(report)
    default_file = report.targets[0].file if len(report.targets) == 1 else None
    sources: dict[str, list[str]] = {}
    lines = []
    for f in report.findings:
        file = f.file or default_file
        where = f"{file}:{f.line or guess_line(file, f.layer, None, sources)}" if file else "-"
        lines.append(f"{where}: {f.code} {f.name} {_severity(f, color)} {_one_line(f.layer or '(model)')}: "
                     f"{_one_line(f.message)}")
    for err in report.errors:
        label = f"{_ANSI[Severity.ERROR]}ERROR{_RESET}" if color else "ERROR"
        lines.append(f"{_one_line(err.file)}: {label} could not check: {_one_line(err.message)}")
    lines.append(report.summary())
    return "\n".join(lines) + "\n"


def _severity(f: Finding, color: bool) -> str:
    text = f"[{f.severity}]"
    return f"{_ANSI[f.severity]}{text}{_RESET}" if color else text


def _one_line(text: Any) -> str:
    return escape_controls(" ".join(str(text).split()), one_line=True)
