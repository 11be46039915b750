"""Terminal reporter (rich): readable in seconds, plain text when not on a terminal.

Per checked model: a header (file, framework and version, model class, parameters, probe
batch or "synthetic", loss), the findings grouped by severity (rule code and name, layer,
message, key evidence, recommendation, syntax-highlighted snippet), a per-layer table of
gradient and activation health (by default only for models with findings), and the skipped
rules with their reasons. Then files that could not be checked, a short summary naming each
file that failed (``FAILED path - 2 errors, 1 warning``, pytest-style), and one closing line
(``Report.summary()``).

Lines are wrapped at ``width``, except code: snippets and diffs are printed unwrapped, so a
pasted snippet runs as printed. Layer names get the width the table leaves them and are
shortened in the middle (``encoder.la…ttn.out``) only when they cannot fit.
"""

from __future__ import annotations

import io
import math
from typing import Any, Iterable, Mapping

from netdoctor.findings import Finding, Report, Severity, TargetInfo
from netdoctor.reporters._elide import elide_middle
from netdoctor.sanitize import sanitize_report

SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
SEVERITY_TITLE = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Info"}
MAX_EVIDENCE = 5
DEFAULT_WIDTH = 100
MIN_NAME_WIDTH = 12
CODE_INDENT = 6

# (key in a TargetInfo.layers row, column title, formatter)
LAYER_COLUMNS = (
    ("grad_norm", "grad norm", "num"),
    ("grad_to_weight", "grad/weight", "num"),
    ("act_std", "act std", "num"),
    ("dead_frac", "dead %", "pct"),
    ("saturated_frac", "sat %", "pct"),
)


def render(
    report: Report,
    *,
    color: bool = False,
    width: int | None = None,
    max_layers: int = 30,
    show_layers: bool | None = None,
    collapse: int = 3,
    gradient_flow: bool = False,
    fail_on: str = "error",
    **_opts: Any,
) -> str:
    """Render ``report`` for a terminal.

    Args:
        report: The finished report.
        color: Emit ANSI styles (the CLI passes ``True`` only on a TTY without ``NO_COLOR``).
        width: Line width (default 100); the CLI passes the terminal's (or ``COLUMNS``).
        max_layers: Rows of the layer-health table per model before it is cut short
            (layers with findings are always shown).
        show_layers: Include the layer-health table: ``None`` (default) for models with
            findings only, ``True`` for every model, ``False`` never.
        collapse: When one rule flags this many layers or more, show the first finding in
            full and name the other layers on one line (0: show every finding in full).
        gradient_flow: Add the per-layer gradient-flow bar chart under the layer table
            (``netdoctor.reporters.gradient_bars``).
        fail_on: The level at which a file counts as failed in the closing short summary
            (``"error"``, ``"warning"``, ``"info"``, ``"never"``), as for the exit code.

    Returns:
        The report text, ending with a newline.
    """
    from rich.console import Console

    report = sanitize_report(report)
    buf = io.StringIO()
    console = Console(
        file=buf, width=width or DEFAULT_WIDTH, force_terminal=color, no_color=not color,
        color_system="auto" if color else None, highlight=False, emoji=False,
        legacy_windows=False, force_jupyter=False,
    )
    claimed: set[int] = set()
    for target in report.targets:
        mine = [f for f in report.findings if _belongs(f, target, report)]
        claimed.update(id(f) for f in mine)
        layers = show_layers if show_layers is not None else bool(mine)
        _render_target(console, target, mine, max_layers if layers else 0, collapse, gradient_flow)
    orphans = [f for f in report.findings if id(f) not in claimed]
    if orphans:
        console.rule("[bold]other findings", style="dim", align="left")
        _render_findings(console, orphans, collapse)
    if report.errors:
        console.print()
        console.print("[bold red]Could not check[/]")
        for err in report.errors:
            console.print(f"  [bold]{_esc(err.file)}[/]: {_esc(err.message)}")
    if report.suppressed:
        console.print()
        console.print(f"[dim]Suppressed ({len(report.suppressed)}):[/]")
        for f in report.suppressed:
            why = f.evidence.get("suppressed_because", "")
            where = f" on {f.layer}" if f.layer else ""
            console.print(f"  [dim]{f.code} {f.name}{_esc(where)}: {_esc(str(why))}[/]")
    _render_failed(console, report, fail_on)
    console.print()
    console.print(_summary_markup(report))
    return _tidy(buf.getvalue())


def _tidy(text: str) -> str:
    """Strip trailing blanks and collapse runs of empty lines."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def _belongs(f: Finding, target: TargetInfo, report: Report) -> bool:
    if len(report.targets) == 1:
        return True
    return f.file == target.file


# -- one model ------------------------------------------------------------------------
def _render_target(console: Any, target: TargetInfo, findings: list[Finding], max_layers: int,
                   collapse: int = 3, gradient_flow: bool = False) -> None:
    title = target.file or target.model_class or "model"
    console.rule(f"[bold]{_esc(title)}", style="dim", align="left")
    console.print(_header_line(target))
    for note in target.notes:
        console.print(f"[dim]{_esc(note)}[/]")
    console.print()
    if findings:
        _render_findings(console, findings, collapse)
    else:
        partly = sum(1 for s in target.skipped if s.part)
        whole = len(target.skipped) - partly
        if target.skipped:  # say what was not judged: skipped rules never count as passed
            bits = [f"{whole} rule{'s' if whole != 1 else ''} skipped"] if whole else []
            bits += [f"{partly} judged in part"] if partly else []
            console.print(f"[green]No problems found.[/] [dim]({', '.join(bits)}: see Skipped below)[/]")
        else:
            console.print("[green]No problems found.[/]")
        console.print()
    if max_layers and target.layers:
        _render_layers(console, target, findings, max_layers)
        if gradient_flow:
            _render_gradient_flow(console, target, max_layers)
    if target.skipped:
        _render_skipped(console, target)


def _header_line(t: TargetInfo) -> str:
    parts = []
    fw = t.framework + (f" {t.framework_version}" if t.framework_version else "")
    parts.append(f"[bold]{_esc(fw)}[/]")
    if t.model_class:
        parts.append(_esc(t.model_class))
    parts.append(f"{t.param_count:,} parameters")
    if t.synthetic_inputs:
        parts.append(f"[yellow]synthetic inputs[/] ({t.batch_size} samples)")
    elif t.batch_size:  # monitored runs have no single probe batch
        parts.append(f"batch of {t.batch_size} samples")
    parts.append(f"loss: {_esc(t.loss)}" if t.loss else "loss: none")
    return " · ".join(parts)


def _render_findings(console: Any, findings: Iterable[Finding], collapse: int = 3) -> None:
    by_sev: dict[Severity, list[Finding]] = {}
    for f in findings:
        by_sev.setdefault(f.severity, []).append(f)
    for sev in (Severity.ERROR, Severity.WARNING, Severity.INFO):
        group = by_sev.get(sev)
        if not group:
            continue
        style = SEVERITY_STYLE[sev]
        console.print(f"[{style}]{SEVERITY_TITLE[sev]} ({len(group)})[/]")
        by_rule: dict[str, list[Finding]] = {}
        for f in group:
            by_rule.setdefault(f.code, []).append(f)
        for same in by_rule.values():
            if collapse and len(same) >= collapse:
                # one rule on many layers: the first in full, the others by name
                _render_finding(console, same[0], style)
                others = ", ".join(f.layer or "(model)" for f in same[1:])
                console.print(_pad(f"[dim]also on {len(same) - 1} more layers:[/] {_esc(others)}", 4))
            else:
                for f in same:
                    _render_finding(console, f, style)
        console.print()


def _render_finding(console: Any, f: Finding, style: str) -> None:
    where = f" · [bold]{_esc(f.layer)}[/]" if f.layer else ""
    step = f" · step {f.step}" if f.step is not None else ""
    console.print(f"  [{style}]{f.code}[/] [bold]{f.name}[/]{where}{step}")
    console.print(_pad(_esc(f.message), 4))
    ev = _format_evidence(f.evidence)
    if ev:
        console.print(_pad(f"[dim]evidence:[/] {_esc(ev)}", 4))
    if f.recommendation:
        console.print(_pad(f"[green]fix:[/] {_esc(f.recommendation)}", 4))
    if f.snippet:
        _print_code(console, f.snippet, "python", CODE_INDENT)
    if f.verification:
        _render_verification(console, f.verification)


VERDICT_STYLE = {"verified": "bold green", "not verified": "bold red", "no automatic fix": "dim"}


def _render_verification(console: Any, v: Mapping[str, Any]) -> None:
    """The ``--verify`` result: verdict and fix, before -> after numbers, the reason, the diff."""
    verdict = str(v.get("verdict", ""))
    if verdict not in VERDICT_STYLE:  # a mapping from elsewhere: plain key=value pairs
        console.print(_pad(f"[dim]verified:[/] {_esc(_format_evidence(v))}", 4))
        return
    fix = f" · {_esc(v['fix'])}" if v.get("fix") else ""
    console.print(_pad(f"[dim]verify:[/] [{VERDICT_STYLE[verdict]}]{verdict}[/]{fix}", 4))
    before, after = v.get("before") or {}, v.get("after") or {}
    pairs = [f"{_esc(k)} {fmt_number(before[k])} -> {fmt_number(after.get(k))}" for k in before
             if not isinstance(before[k], (Mapping, list, tuple))]
    probe = v.get("probe") or {}
    if pairs and probe.get("steps"):
        pairs[-1] += f" [dim]({probe['steps']} steps of {_esc(probe.get('optimizer', ''))})[/]"
    if pairs:
        console.print(_pad(" · ".join(pairs[:6]), 6))
    if v.get("reason") and verdict != "verified":
        console.print(_pad(f"[dim]{_esc(v['reason'])}[/]", 6))
    if v.get("new_findings"):
        console.print(_pad(f"[dim]new on the fixed copy: {_esc(', '.join(v['new_findings']))}[/]", 6))
    if v.get("diff"):
        _print_code(console, str(v["diff"]), "diff", CODE_INDENT)


def _print_code(console: Any, code: str, lexer: str, indent: int) -> None:
    """Code as a block of unwrapped lines: a line wider than the terminal is never broken (a
    wrapped line would leave half an expression, or the end of a ``#`` comment, on a line of
    its own), so the block pastes and runs as printed."""
    from rich.syntax import Syntax
    from rich.text import Text

    code = code.strip("\n")
    if console.no_color:
        lines = [Text(line) for line in code.splitlines()]
    else:
        syntax = Syntax(code, lexer, theme="ansi_dark", background_color="default")
        lines = syntax.highlight(code).split("\n")
    for line in lines:
        line.rstrip()
        console.print(Text(" " * indent) + line, soft_wrap=True, overflow="ignore", crop=False)


def _pad(renderable: Any, left: int) -> Any:
    from rich.padding import Padding

    return Padding(renderable, (0, 0, 0, left), expand=False)


def _render_layers(console: Any, target: TargetInfo, findings: list[Finding], max_layers: int) -> None:
    from rich import box
    from rich.padding import Padding
    from rich.table import Table

    rows = list(target.layers)
    worst: dict[str, Severity] = {}
    for f in findings:
        if f.layer:
            worst[f.layer] = max(worst.get(f.layer, f.severity), f.severity)
    hidden = 0
    if len(rows) > max_layers:
        flagged = [r for r in rows if r.get("layer") in worst]
        budget = max(max_layers - len(flagged), 0)
        unflagged = [r for r in rows if r.get("layer") not in worst]
        keep = {id(r) for r in flagged} | {id(r) for r in unflagged[:budget]}
        hidden = len(rows) - len(keep)
        rows = [r for r in rows if id(r) in keep]
    columns = [c for c in LAYER_COLUMNS if any(r.get(c[0]) is not None for r in target.layers)]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None,
                  header_style="bold", padding=(0, 1))
    body = [[str(r.get("type", ""))] + [_plain_cell(r.get(key), fmt) for key, _t, fmt in columns] for r in rows]
    widths = [max([len(title)] + [len(cells[i]) for cells in body]) for i, title in
              enumerate(["type"] + [c[1] for c in columns])]
    # 2 of indent, 3 between columns (padding and the box's blank divider); the layer names get the rest
    name_width = max(console.width - 2 - sum(widths) - 3 * len(widths), MIN_NAME_WIDTH)
    table.add_column("layer", no_wrap=True, overflow="ellipsis")
    table.add_column("type", no_wrap=True)
    for _key, title, _fmt in columns:
        table.add_column(title, justify="right", no_wrap=True)
    for r, plain in zip(rows, body):
        name = str(r.get("layer", ""))
        sev = worst.get(name)
        shown = _esc(elide_middle(name, name_width))
        name_cell = f"[{SEVERITY_STYLE[sev]}]{shown}[/]" if sev else shown
        cells = [name_cell, _esc(plain[0])]
        for (key, _title, fmt), text in zip(columns, plain[1:]):
            cells.append("[dim]-[/]" if r.get(key) is None else text)
        table.add_row(*cells)
    console.print("[bold]Layer health[/]")
    console.print(Padding(table, (0, 0, 0, 2), expand=False))
    if hidden:
        console.print(f"[dim]  … {hidden} more layers without findings (all rows: --format json)[/]")
    console.print()


def _render_gradient_flow(console: Any, target: TargetInfo, max_rows: int) -> None:
    """Per-layer gradient-flow bars (log scale), see ``netdoctor.reporters.gradient_bars``."""
    from netdoctor.reporters.gradient_bars import gradient_flow_lines

    lines = gradient_flow_lines(target, max_rows=max_rows, name_width=max(console.width - 66, MIN_NAME_WIDTH))
    for line in lines:
        console.print(line, soft_wrap=True)
    if lines:
        console.print()


def _render_skipped(console: Any, target: TargetInfo) -> None:
    by_reason: dict[str, list[str]] = {}
    for s in target.skipped:
        by_reason.setdefault(s.reason, []).append(s.label)
    console.print(f"[dim]Skipped ({len(target.skipped)}):[/]")
    for reason, rules in by_reason.items():
        console.print(_pad(f"[dim]{_esc(', '.join(rules))}: {_esc(reason)}[/]", 2))
    console.print()


def _render_failed(console: Any, report: Report, fail_on: str) -> None:
    """pytest's short summary: ``FAILED path - 2 errors, 1 warning`` for each file with findings
    at or above ``fail_on``, ``ERROR path - message`` for each file that could not be checked."""
    rows: list[str] = []
    if not report.errors and not any(t.file for t in report.targets):
        return  # a model checked in-process (library, pytest fixture): its findings above say it all
    if str(fail_on).strip().lower() != "never":
        threshold = Severity.parse(fail_on)
        for target in report.targets:
            mine = [f for f in report.findings if _belongs(f, target, report)]
            if any(f.severity >= threshold for f in mine):
                rows.append(f"[bold red]FAILED[/] {_esc(target.file or target.model_class or 'model')} - "
                            f"{_esc(_counts(mine))}")
    for err in report.errors:
        rows.append(f"[bold red]ERROR[/] {_esc(err.file)} - {_esc(' '.join(err.message.split()))}")
    if not rows:
        return
    console.print()
    console.rule("[bold]short summary", style="dim", align="left")
    for row in rows:
        console.print(row)


def _counts(findings: list[Finding]) -> str:
    """``2 errors, 1 warning`` (severities with no finding are left out)."""
    parts = []
    for sev, word in ((Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.INFO, "info")):
        n = sum(1 for f in findings if f.severity == sev)
        if n:
            parts.append(f"{n} {word}{'s' if n != 1 and word != 'info' else ''}")
    return ", ".join(parts)


def _summary_markup(report: Report) -> str:
    line = _esc(report.summary())
    if report.errors or report.count(Severity.ERROR):
        return f"[bold red]{line}[/]"
    if report.count(Severity.WARNING):
        return f"[bold yellow]{line}[/]"
    return f"[bold green]{line}[/]"


# -- formatting -----------------------------------------------------------------------
def fmt_number(v: Any) -> str:
    """Compact number: ``1.23e-07``, ``0.0123``, ``12.3``, ``1,024``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 1e6:
        return f"{int(x):,}"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.3g}"
    return f"{x:.2e}"


def _format_evidence(evidence: Mapping[str, Any] | None) -> str:
    if not evidence:
        return ""
    items = []
    for k, v in evidence.items():
        if k == "suppressed_because":
            continue
        if isinstance(v, (list, tuple)):
            shown = ", ".join(fmt_number(e) for e in list(v)[:4])
            v_str = f"[{shown}{', …' if len(v) > 4 else ''}]"
        elif isinstance(v, Mapping):
            continue
        elif hasattr(v, "shape") and getattr(v, "ndim", 0):
            continue  # arrays are for JSON consumers
        else:
            v_str = fmt_number(v) if not isinstance(v, str) else v
        items.append(f"{k}={v_str}")
        if len(items) == MAX_EVIDENCE:
            break
    return "  ".join(items)


def _plain_cell(v: Any, fmt: str) -> str:
    if v is None:
        return "-"
    if fmt == "pct":
        try:
            return f"{float(v) * 100:.0f}%"
        except (TypeError, ValueError):
            return str(v)
    return fmt_number(v)


def _esc(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))
