"""Compact terminal gradient-flow chart: one bar per layer, log scale, execution order.

:func:`gradient_flow_lines` gives lines (rich markup by default, plain text with
``markup=False``) that the text reporter prints under a model's findings::

    Gradient flow · gradient L2 norm per layer, log scale 1e-08 … 1e+01
      conv1            ███████████████▍                          4.9e-03
      layer1.0.conv1   ████▏                                     2.1e-07  vanishing
      fc               ███████████████████████████████████▋      4.2e-01

As a format of its own (``netdoctor.reporters.render("gradient_bars", report)``) it renders
the chart of every checked model as plain text.
"""

from __future__ import annotations

import math
from typing import Any

from netdoctor.findings import Report, TargetInfo
from netdoctor.reporters._elide import elide_middle
from netdoctor.sanitize import sanitize_report
from netdoctor.reporters.html.charts import Thresholds, grad_status

EIGHTHS = " ▏▎▍▌▋▊▉"
STATUS_WORD = {"ok": "", "low": "vanishing", "high": "exploding", "zero": "no gradient", "nonfinite": "non-finite"}
STATUS_STYLE = {"ok": "green", "low": "yellow", "high": "red", "zero": "magenta", "nonfinite": "bold red"}
NAME_WIDTH = 28


def _bar(fraction: float, width: int) -> str:
    cells = max(0.0, min(1.0, fraction)) * width
    full = int(cells)
    rest = int(round((cells - full) * 8))
    if rest == 8:
        full, rest = full + 1, 0
    text = "█" * full + (EIGHTHS[rest] if rest and full < width else "")
    return text.ljust(width)


def _short(name: str, width: int) -> str:
    return elide_middle(name, width)


def _pick(statuses: list[str], max_rows: int) -> list[int]:
    """Row indices to show, in order: every flagged row, the first and last, then evenly
    spaced others up to ``max_rows`` (flagged rows are never dropped)."""
    n = len(statuses)
    keep = {i for i, s in enumerate(statuses) if s != "ok"} | {0, n - 1}
    others = [i for i in range(n) if i not in keep]
    room = max_rows - len(keep)
    if room > 0 and others:
        step = len(others) / room
        keep |= {others[min(len(others) - 1, int(k * step))] for k in range(room)}
    return sorted(keep)


def gradient_flow_lines(
    target: TargetInfo,
    width: int = 40,
    *,
    markup: bool = True,
    max_rows: int | None = 40,
    thresholds: Thresholds | None = None,
    name_width: int = NAME_WIDTH,
) -> list[str]:
    """Per-layer gradient-flow bar chart of ``target`` as terminal lines.

    Args:
        target: A checked model; its ``layers`` rows with ``grad_norm`` are drawn.
        width: Bar width in characters.
        markup: Emit rich markup (colours by status, escaped layer names); ``False`` gives
            plain text.
        max_rows: With more layers than this, show every vanishing/exploding/zero/non-finite
            layer plus evenly spaced others, and say how many were left out (``None``: all).
        thresholds: Limits that decide the status words (as in the HTML report).
        name_width: Most characters of a layer name; a longer one keeps its start and end
            around an ellipsis.

    Returns:
        Lines without trailing newlines; ``[]`` when no gradient was measured.
    """
    th = thresholds or Thresholds.from_rules()
    rows = [r for r in target.layers if r.get("grad_norm") is not None]
    if not rows:
        return []
    esc = _escape if markup else (lambda s: s)
    values = [_float(r["grad_norm"]) for r in rows]
    statuses = [grad_status(r, th) for r in rows]
    pos = [v for v in values if math.isfinite(v) and v > 0]
    lo_e = math.floor(math.log10(min(pos))) if pos else -8
    hi_e = math.ceil(math.log10(max(pos))) if pos else 0
    if hi_e <= lo_e:
        hi_e = lo_e + 1
    name_w = min(name_width, max(len(str(r.get("layer", ""))) for r in rows))
    shown = list(range(len(rows))) if max_rows is None or len(rows) <= max_rows else _pick(statuses, max_rows)
    title = f"Gradient flow · gradient L2 norm per layer, log scale 1e{lo_e:+03d} … 1e{hi_e:+03d}"
    lines = [f"[bold]{title}[/]" if markup else title]
    prev = -1
    for i in shown:
        if i > prev + 1:
            gap = f"  {'⋮':<{name_w}}  ({i - prev - 1} layer{'' if i - prev == 2 else 's'})"
            lines.append(f"[dim]{gap}[/]" if markup else gap)
        prev = i
        v, status = values[i], statuses[i]
        if status == "nonfinite":
            bar = "!" * width
        elif status == "zero":
            bar = "·".ljust(width)
        else:
            bar = _bar((math.log10(v) - lo_e) / (hi_e - lo_e), width)
        name = _short(str(rows[i].get("layer", i)), name_w)
        word = STATUS_WORD[status]
        num = f"{v:.1e}" if math.isfinite(v) else str(v)
        if markup:
            style = STATUS_STYLE[status]
            tail = f"  [{style}]{word}[/]" if word else ""
            lines.append(f"  {esc(name):<{name_w + len(esc(name)) - len(name)}}  [{style}]{bar}[/] {num:>8}{tail}")
        else:
            lines.append(f"  {name:<{name_w}}  {bar} {num:>8}{'  ' + word if word else ''}".rstrip())
    if len(shown) < len(rows):
        note = f"  ({len(shown)} of {len(rows)} layers shown; every layer is in the HTML report)"
        lines.append(f"[dim]{note}[/]" if markup else note)
    return lines


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def render(report: Report, *, width: int = 40, max_rows: int | None = None, **_opts: Any) -> str:
    """Plain-text gradient-flow charts of every checked model (the ``gradient_bars`` format)."""
    report = sanitize_report(report)
    out: list[str] = []
    for i, t in enumerate(report.targets):
        lines = gradient_flow_lines(t, width, markup=False, max_rows=max_rows)
        out.append(t.file or t.model_class or f"model {i + 1}")
        out.extend(lines or ["  (no gradients measured)"])
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n" if out else ""
