"""Small inline-SVG building blocks for the HTML report (no JS library, no network).

Charts are strings of SVG markup. Every data mark carries ``data-layer``/``data-value``
attributes (see :mod:`netdoctor.reporters.html.charts`), so tests and scripts can read
the numbers back from the page. Values are written with :func:`num_attr`, which
round-trips floats exactly (``float(num_attr(x)) == x``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any, Iterable, Sequence

# Drawing area of every chart (viewBox units; the SVG scales to the page width).
WIDTH = 960
MARGIN_LEFT = 64
MARGIN_RIGHT = 150  # room for reference-line labels
MARGIN_TOP = 16


def esc(value: Any) -> str:
    """Escape text for HTML/SVG content and double-quoted attributes."""
    return escape(str(value), quote=True)


def num_attr(value: Any) -> str:
    """Exact, parseable string for a ``data-value`` attribute (``nan``/``inf`` kept)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    try:
        f = float(value)
    except (TypeError, ValueError):
        return esc(value)
    if isinstance(value, int):
        return str(value)
    return repr(f)


def fmt(value: Any, digits: int = 3) -> str:
    """Short human form of a number: ``0.0123``, ``1.2e-07``, ``nan``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(f):
        return str(f)
    if f == 0:
        return "0"
    a = abs(f)
    if 1e-3 <= a < 1e4:
        return f"{f:.{digits}g}"
    return f"{f:.{max(digits - 2, 1)}e}"


def finite_pos(value: Any) -> bool:
    """True for a finite number > 0 (what a log axis can show)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f) and f > 0


def is_number(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Scale:
    """Maps a data value onto a pixel coordinate (log10 or linear)."""

    lo: float
    hi: float
    p0: float  # pixel of ``lo``
    p1: float  # pixel of ``hi``
    log: bool = False

    def __call__(self, value: float) -> float:
        v = float(value)
        if self.log:
            v = math.log10(min(max(v, self.lo), self.hi))
            lo, hi = math.log10(self.lo), math.log10(self.hi)
        else:
            v = min(max(v, self.lo), self.hi)
            lo, hi = self.lo, self.hi
        t = 0.0 if hi == lo else (v - lo) / (hi - lo)
        return self.p0 + t * (self.p1 - self.p0)

    def ticks(self, max_ticks: int = 8) -> list[float]:
        if self.log:
            a, b = math.floor(math.log10(self.lo) + 1e-9), math.ceil(math.log10(self.hi) - 1e-9)
            step = max(1, math.ceil((b - a) / max_ticks))
            return [10.0 ** e for e in range(a, b + 1, step)]
        return linear_ticks(self.lo, self.hi, max_ticks)


def linear_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """"Nice" ticks (1, 2, 5 x 10^k steps) covering ``[lo, hi]``."""
    if hi <= lo:
        return [lo]
    if not math.isfinite(hi - lo):  # a range wider than a float holds (values near +-1e308)
        return [lo, hi]
    raw = (hi - lo) / max(max_ticks - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    v = start
    while v <= hi + step * 1e-9:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


def step_ticks(smin: float, smax: float, max_ticks: int = 8) -> list[int]:
    """Integer steps at a "nice" spacing (1, 2 or 5 x 10^k, at least 1) inside ``[smin, smax]``."""
    if not (math.isfinite(smin) and math.isfinite(smax)) or smax < smin:
        return []
    raw = max((smax - smin) / max(max_ticks - 1, 1), 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw - 1e-9)
    step = max(int(round(step)), 1)
    first = math.ceil(smin / step) * step
    return list(range(int(first), int(math.floor(smax)) + 1, step))[:max_ticks + 2]


def step_label(step: int) -> str:
    """``950``, ``1k``, ``2.5k``, ``12k``, ``1.5M``: short step numbers (never ``1e+03``; ``2e16``
    beyond 10^15)."""
    a = abs(step)
    if a < 1000:
        return str(int(step))
    for div, suffix in ((10 ** 12, "T"), (10 ** 9, "G"), (10 ** 6, "M"), (10 ** 3, "k")):
        if a >= div:
            q = step / div
            if abs(q) >= 1000:  # beyond 10^15 (only a damaged log gets there): "2e16", short
                return f"{step:.3g}".replace("e+", "e")
            return f"{q:.3g}{suffix}"
    return str(int(step))


def log_domain(values: Iterable[Any], pad_decades: float = 0.0) -> tuple[float, float]:
    """Decade-aligned ``(lo, hi)`` covering the finite positive ``values``."""
    vals = [float(v) for v in values if finite_pos(v)]
    if not vals:
        return 1e-3, 1.0
    lo = 10.0 ** max(math.floor(math.log10(min(vals)) - pad_decades), -307)
    hi = 10.0 ** min(math.ceil(math.log10(max(vals)) + pad_decades), 308)
    if hi <= lo:
        hi = lo * 10.0
    return lo, hi


def linear_domain(values: Iterable[Any]) -> tuple[float, float]:
    vals = [float(v) for v in values if is_number(v) and math.isfinite(float(v))]
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    if hi == lo:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.05
    return lo - pad, hi + pad


def open_svg(chart: str, height: int, count: int, label: str, **data: Any) -> str:
    """``<svg class="chart" data-chart=... data-count=...>`` with an accessible title."""
    extra = "".join(f' data-{k.replace("_", "-")}="{esc(v)}"' for k, v in data.items())
    return (
        f'<svg class="chart" data-chart="{esc(chart)}" data-count="{count}"{extra} '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{esc(label)}">'
        f"<title>{esc(label)}</title>"
    )


def y_axis(scale: Scale, x0: float, x1: float, title: str, percent: bool = False) -> str:
    """Horizontal grid lines with tick labels, and the rotated axis title."""
    parts = []
    for t in scale.ticks():
        y = scale(t)
        text = f"{t * 100:.0f}%" if percent else (_decade(t) if scale.log else fmt(t))
        parts.append(
            f'<line class="grid" x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{x0 - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{esc(text)}</text>'
        )
    mid = (scale.p0 + scale.p1) / 2
    parts.append(
        f'<text class="axis-title" transform="translate(14 {mid:.1f}) rotate(-90)" '
        f'text-anchor="middle">{esc(title)}</text>'
    )
    return "".join(parts)


def _decade(v: float) -> str:
    e = round(math.log10(v))
    return f"1e{e}" if e not in (0, 1, 2, -1) else f"{v:g}"


def ref_line(scale: Scale, value: float, x0: float, x1: float, label: str, cls: str,
             ref: str) -> str:
    """A horizontal reference line at ``value`` labelled at its right end."""
    y = scale(value)
    return (
        f'<g class="ref {cls}" data-ref="{esc(ref)}" data-value="{num_attr(value)}">'
        f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
        f'<text x="{x1 + 4:.1f}" y="{y + 4:.1f}">{esc(label)}</text></g>'
    )


def step_path(scale: Scale, xs: Sequence[float], width: float, values: Sequence[Any]) -> str:
    """``d`` of a step line over bar slots (gaps where a value is missing)."""
    d: list[str] = []
    pen_up = True
    for x, v in zip(xs, values):
        if not finite_pos(v):
            pen_up = True
            continue
        y = scale(float(v))
        d.append(f'{"M" if pen_up else "L"}{x:.1f} {y:.1f}H{x + width:.1f}')
        pen_up = False
    return "".join(d)


def polyline_points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def x_labels(names: Sequence[str], xs: Sequence[float], slot: float, y: float,
             max_labels: int = 40) -> str:
    """Rotated layer names under the bars when they fit, else every k-th index."""
    if not names:
        return ""
    parts = []
    if len(names) <= max_labels:
        for name, x in zip(names, xs):
            short = name if len(name) <= 22 else "…" + name[-21:]
            cx = x + slot / 2
            parts.append(
                f'<text class="xlabel" transform="translate({cx:.1f} {y:.1f}) rotate(-45)" '
                f'text-anchor="end">{esc(short)}</text>'
            )
    else:
        step = max(1, math.ceil(len(names) / 20))
        for i in range(0, len(names), step):
            cx = xs[i] + slot / 2
            parts.append(f'<text class="xlabel" x="{cx:.1f}" y="{y + 10:.1f}" text-anchor="middle">{i}</text>')
    return "".join(parts)


def legend(items: Sequence[tuple[str, str]], x: float, y: float) -> str:
    """A row of ``(css class, label)`` swatches; a class starting with ``line:`` draws a line."""
    parts = []
    for cls, label in items:
        if cls.startswith("line:"):
            c = cls[5:]
            parts.append(f'<path class="ref {c}" d="M{x:.1f} {y - 4:.1f}h14"/>')
            x += 4
        else:
            parts.append(f'<rect class="swatch {cls}" x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{x + 14:.1f}" y="{y:.1f}">{esc(label)}</text>')
        x += 24 + 6.5 * len(label)
    return "".join(parts)
