"""JSON reporter: ``Report.to_dict()`` (with ``schema_version``) plus the tool's version.

Findings carry ``file``, ``rule``, ``name``, ``severity``, ``category``, ``layer``,
``message``, ``recommendation``, ``snippet`` and ``evidence``. Non-finite numbers become
the strings ``"nan"``, ``"inf"`` and ``"-inf"`` so the output is strict JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from netdoctor._version import __version__
from netdoctor.findings import Report


def to_data(report: Report) -> dict[str, Any]:
    """The JSON document as Python data."""
    data = report.to_dict()
    data["tool"] = {"name": "netdoctor", "version": __version__}
    return _finite(data)


def render(report: Report, *, indent: int | None = 2, **_opts: Any) -> str:
    """Render ``report`` as a JSON document (one trailing newline)."""
    return json.dumps(to_data(report), indent=indent, allow_nan=False, default=str) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
