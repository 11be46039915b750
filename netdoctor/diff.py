"""``netdoctor diff old.json new.json``: what got worse between two JSON reports.

Compares two reports written with ``--format json`` (see ``Report.to_dict()``):

* findings, matched by the stable fingerprint (file, rule, layer): new ones, resolved ones,
  and ones whose severity rose;
* per-layer health rows (``targets[].layers[]``): a gradient norm that dropped by the
  ``grad_factor`` (default tenfold, the start of vanishing gradients), a dead or saturated
  fraction that rose by ``frac_increase`` (default 0.2 = 20 points), a metric that became
  NaN/Inf;
* files that newly failed to load.

Any of those is a regression: :func:`main` exits 1, else 0 (2 when a report cannot be read).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TextIO

from netdoctor.baseline import fingerprint, normalize_path
from netdoctor.findings import SCHEMA_VERSION

SEVERITY_RANK = {"info": 1, "warning": 2, "error": 3}


@dataclass(frozen=True)
class MetricChange:
    """A per-layer metric that moved beyond its threshold."""

    file: str | None
    layer: str
    metric: str
    old: float
    new: float
    regression: bool
    description: str

    def describe(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.layer} {self.metric}: {_num(self.old)} -> {_num(self.new)} ({self.description})"


@dataclass(frozen=True)
class DiffResult:
    """Outcome of :func:`diff_reports`. Findings are the JSON dicts of the reports."""

    new_findings: list[dict[str, Any]] = field(default_factory=list)
    resolved_findings: list[dict[str, Any]] = field(default_factory=list)
    escalated: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    metric_changes: list[MetricChange] = field(default_factory=list)
    new_errors: list[dict[str, Any]] = field(default_factory=list)
    fixed_errors: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.metric_changes if c.regression]

    @property
    def improvements(self) -> list[MetricChange]:
        return [c for c in self.metric_changes if not c.regression]

    @property
    def regressed(self) -> bool:
        """True when anything got worse."""
        return bool(self.new_findings or self.escalated or self.regressions or self.new_errors)


def diff_reports(old: dict[str, Any], new: dict[str, Any], *, grad_factor: float = 10.0,
                 frac_increase: float = 0.2) -> DiffResult:
    """Compare two ``Report.to_dict()`` mappings (pure; no files, no printing).

    Args:
        old: The earlier report.
        new: The later report.
        grad_factor: A layer's gradient norm falling by this factor is a regression.
        frac_increase: A dead/saturated fraction rising by this much is a regression.
    """
    new_checked = _checked_files(new)
    pool: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in old.get("findings", []):
        pool[fingerprint(f)].append(f)
    new_findings, escalated, unchanged = [], [], 0
    for f in new.get("findings", []):
        bucket = pool.get(fingerprint(f))
        if bucket:
            before = bucket.pop(0)
            unchanged += 1
            if SEVERITY_RANK.get(str(f.get("severity")), 0) > SEVERITY_RANK.get(str(before.get("severity")), 0):
                escalated.append((before, f))
        else:
            new_findings.append(f)
    resolved = [f for bucket in pool.values() for f in bucket if normalize_path(f.get("file")) in new_checked]

    old_err = {normalize_path(e.get("file")) for e in old.get("errors", [])}
    new_err = {normalize_path(e.get("file")) for e in new.get("errors", [])}
    new_errors = [e for e in new.get("errors", []) if normalize_path(e.get("file")) not in old_err]
    fixed_errors = [e for e in old.get("errors", [])
                    if normalize_path(e.get("file")) not in new_err and normalize_path(e.get("file")) in new_checked]
    return DiffResult(
        new_findings=new_findings, resolved_findings=resolved, escalated=escalated,
        metric_changes=_metric_changes(old, new, grad_factor, frac_increase),
        new_errors=new_errors, fixed_errors=fixed_errors, unchanged=unchanged - len(escalated),
    )


def _checked_files(report: dict[str, Any]) -> set[str | None]:
    return {normalize_path(t.get("file")) for t in report.get("targets", [])}


def _layer_rows(report: dict[str, Any]) -> dict[tuple[str | None, str], dict[str, Any]]:
    rows: dict[tuple[str | None, str], dict[str, Any]] = {}
    for i, t in enumerate(report.get("targets", [])):
        file = normalize_path(t.get("file")) if t.get("file") else None
        key_file = file if file is not None else f"<target {i}>"
        for row in t.get("layers", []):
            if isinstance(row, dict) and row.get("layer") is not None:
                rows[(key_file, str(row["layer"]))] = row
    return rows


def _metric_changes(old: dict[str, Any], new: dict[str, Any], grad_factor: float,
                    frac_increase: float) -> list[MetricChange]:
    before = _layer_rows(old)
    changes: list[MetricChange] = []
    for key, row in _layer_rows(new).items():
        prev = before.get(key)
        if prev is None:
            continue
        file = None if key[0] and key[0].startswith("<target") else key[0]
        layer = key[1]
        o, n = _float(prev.get("grad_norm")), _float(row.get("grad_norm"))
        if o is not None and n is not None:
            if math.isfinite(o) and not math.isfinite(n):
                changes.append(MetricChange(file, layer, "grad_norm", o, n, True, "became non-finite"))
            elif o > 0 and math.isfinite(o) and n <= o / grad_factor:
                factor = "to zero" if n == 0 else f"{o / n:.3g}x lower"
                changes.append(MetricChange(file, layer, "grad_norm", o, n, True, f"dropped {factor}"))
            elif n > 0 and math.isfinite(n) and (o == 0 or n >= o * grad_factor) and math.isfinite(o):
                changes.append(MetricChange(file, layer, "grad_norm", o, n, False,
                                            "now flows" if o == 0 else f"rose {n / o:.3g}x"))
        for metric, what in (("dead_frac", "dead units"), ("saturated_frac", "saturated units")):
            o, n = _float(prev.get(metric)), _float(row.get(metric))
            if o is None or n is None or not (math.isfinite(o) and math.isfinite(n)):
                continue
            if n - o >= frac_increase:
                changes.append(MetricChange(file, layer, metric, o, n, True, f"{what} up {100 * (n - o):.0f} points"))
            elif o - n >= frac_increase:
                changes.append(MetricChange(file, layer, metric, o, n, False, f"{what} down {100 * (o - n):.0f} points"))
    return changes


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # "nan"/"inf" strings from the JSON reporter parse too
    except (TypeError, ValueError):
        return None


def _num(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


# -- presentation -------------------------------------------------------------------


def format_diff(result: DiffResult) -> list[tuple[str, str]]:
    """Lines of the human-readable diff as ``(style, text)`` pairs (style is a rich style)."""
    out: list[tuple[str, str]] = []

    def section(title: str, style: str, items: Iterable[str]) -> None:
        items = list(items)
        if items:
            out.append(("bold " + style, f"{title} ({len(items)})"))
            out.extend((style, f"  {text}") for text in items)

    section("New findings", "red", (_finding(f) for f in result.new_findings))
    section("Severity raised", "red", (f"{_finding(o)} -> {n.get('severity')}" for o, n in result.escalated))
    section("Metric regressions", "red", (c.describe() for c in result.regressions))
    section("Files that no longer load", "red", (f"{e.get('file')}: {e.get('message')}" for e in result.new_errors))
    section("Resolved findings", "green", (_finding(f) for f in result.resolved_findings))
    section("Metric improvements", "green", (c.describe() for c in result.improvements))
    section("Files that load again", "green", (str(e.get("file")) for e in result.fixed_errors))
    verdict = "regressed" if result.regressed else "no regression"
    out.append(("bold red" if result.regressed else "bold green",
                f"netdoctor diff: {verdict}: {len(result.new_findings)} new, {len(result.resolved_findings)} resolved, "
                f"{result.unchanged} unchanged findings, {len(result.regressions)} metric regressions"))
    return out


def _finding(f: dict[str, Any]) -> str:
    where = " ".join(x for x in (f.get("file") or "", f.get("layer") or "") if x)
    return f"[{f.get('severity')}] {f.get('rule')} {f.get('name')}" + (f" at {where}" if where else "") + \
        f": {f.get('message')}"


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a JSON report.

    Raises:
        ValueError: Missing file, invalid JSON, or not a netdoctor report.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"no such report: {path}; write one with `netdoctor check ... --format json --output {p.name}`")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(doc, dict) or "schema_version" not in doc or "findings" not in doc:
        raise ValueError(f"{path} is not a netdoctor JSON report (use --format json)")
    if int(doc["schema_version"]) > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version {doc['schema_version']}; this netdoctor reads up to "
                         f"{SCHEMA_VERSION}: upgrade netdoctor")
    return doc


def main(old_path: str | Path, new_path: str | Path, *, stream: TextIO | None = None,
         color: bool | None = None) -> int:
    """Print what got worse from ``old_path`` to ``new_path``; 1 on regression, 0 otherwise, 2 on bad input.

    Args:
        old_path: Earlier JSON report.
        new_path: Later JSON report.
        stream: Where to write (default: stdout).
        color: Force rich styling on or off (default: when ``stream`` is a terminal).
    """
    stream = stream or sys.stdout
    try:
        result = diff_reports(load_report(old_path), load_report(new_path))
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    lines = format_diff(result)
    use_color = color if color is not None else (hasattr(stream, "isatty") and stream.isatty())
    try:
        from rich.console import Console
        from rich.text import Text
    except ImportError:  # pragma: no cover - rich is a dependency
        use_color = False
    if use_color:
        console = Console(file=stream, highlight=False, emoji=False, force_terminal=True)
        for style, text in lines:
            console.print(Text(text, style=style))
    else:
        stream.write("".join(text + "\n" for _, text in lines))
    return 1 if result.regressed else 0


if __name__ == "__main__":  # python -m netdoctor.diff old.json new.json
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python -m netdoctor.diff OLD.json NEW.json\n")
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
