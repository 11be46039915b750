"""Per-target charts of the HTML report, drawn as inline SVG from ``TargetInfo.layers``.

Every chart is ``<svg class="chart" data-chart="<name>" data-count="<marks>">`` and every
data mark carries ``data-layer`` and ``data-value`` (exact floats, see ``_svg.num_attr``):

* ``gradient-flow``: one ``rect.bar`` per layer row with the relative gradient
  ``grad_to_weight`` (log scale; ``data-grad`` holds the absolute norm), plus the ND301 and
  ND302 limits as horizontal reference lines (``g.ref``).
* ``activation-health``: one ``rect.bar`` per (layer, metric) for ``dead_frac`` and
  ``saturated_frac`` (``data-metric``), with the 50% reference.
* ``activation-scale``: one ``circle.point`` per layer row with ``act_std`` (log scale).
* ``weight-scale``: one ``rect.bar`` per layer row with ``weight_std`` and the He
  ``sqrt(2/fan_in)`` and Xavier ``sqrt(2/(fan_in+fan_out))`` references per layer.

Layers named by a finding get a ``path.flag`` marker above their mark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from netdoctor.reporters.html.svg import (
    MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, WIDTH, Scale, esc, finite_pos, fmt, is_number,
    legend, log_domain, num_attr, open_svg, polyline_points, ref_line,
    step_path, x_labels, y_axis,
)

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Reference lines drawn on the charts (pictures only; the rules judge with their options).

    Attributes:
        vanishing_abs: Absolute gradient-norm floor (1e-7, the SageMaker/DeepDiagnosis cut-off).
        vanishing_ratio: grad/weight norm ratio below which no layer can learn
            (ND301 ``min_relative``).
        exploding_ratio: grad/weight norm ratio above which one step throws the weights
            away (ND302 ``max_relative``).
        exploding_warn: grad/weight norm ratio of ND302's warning band (``warn_relative``).
        dead_frac: Fraction of dead units drawn as the limit on the activation chart.
        saturated_frac: Fraction of saturated units that counts as over the limit.
        init_band: Allowed factor on the weight *variance* around He/Xavier (ND203 ``band``),
            drawn as the legend's band; the weight chart colours a layer ``far`` only when ND203
            flagged it (ND203 picks the reference for the activation that follows and exempts
            layers before a normalization, which the picture alone cannot know).
    """

    vanishing_abs: float = 1e-7
    vanishing_ratio: float = 1e-7
    exploding_ratio: float = 10.0
    exploding_warn: float = 3.0
    dead_frac: float = 0.5
    saturated_frac: float = 0.5
    init_band: float = 10.0

    @classmethod
    def from_rules(cls, **overrides: float) -> Thresholds:
        """Defaults taken from the rules' default options: each rule declares which field
        draws which of its options (``@rule(..., chart={field: option})``)."""
        values: dict[str, float] = {}
        try:
            from netdoctor.rules import registry

            for spec in registry().values():
                for field_name, option in spec.chart.items():
                    if is_number(spec.options.get(option)):
                        values[field_name] = float(spec.options[option])
        except Exception:  # noqa: BLE001 - a broken rule module must not break the report
            values = {}
        return cls(**{**values, **overrides})


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _names(rows: Sequence[Row]) -> list[str]:
    return [str(r.get("layer", i)) for i, r in enumerate(rows)]


def _layout(names: Sequence[str]) -> tuple[float, float, float, float]:
    """(x0, slot width, plot bottom, svg height) for one bar slot per name.

    Up to 40 names are written under the slots at -45 degrees; the SVG is as tall as the
    longest (shortened) name needs. More slots get index ticks instead.
    """
    n = len(names)
    x0, x1 = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    slot = (x1 - x0) / max(n, 1)
    bottom = MARGIN_TOP + 24 + 200
    longest = min(max((len(x) for x in names), default=0), 22)
    height = bottom + (18 + 4.6 * longest if 0 < n <= 40 else 34)
    return x0, slot, bottom, round(height)


def _bar_geometry(slot: float) -> tuple[float, float]:
    """(offset inside the slot, bar width): 78% of the slot, at most 48 units wide."""
    w = min(max(slot * 0.78, 1.0), 48.0)
    return (slot - w) / 2, w


def _flag(x: float, y: float, layer: str, codes: Sequence[str]) -> str:
    text = f"{layer}: {', '.join(codes)}"
    return (
        f'<path class="flag" data-layer="{esc(layer)}" data-codes="{esc(" ".join(codes))}" '
        f'd="M{x - 4:.1f} {y - 9:.1f}L{x + 4:.1f} {y - 9:.1f}L{x:.1f} {y - 2:.1f}Z">'
        f"<title>{esc(text)}</title></path>"
    )


def _tip(layer: str, *parts: str) -> str:
    return f"<title>{esc(layer)}: {esc(' · '.join(p for p in parts if p))}</title>"


def grad_status(row: Row, th: Thresholds, codes: Sequence[str] = ()) -> str:
    """``ok``, ``zero``, ``nonfinite``, ``low`` (vanishing) or ``high`` (exploding).

    A layer ND301/ND302 flagged is ``low``/``high`` whatever the drawn limits say (the rules also
    judge decay and growth with depth, and widen their limits on small batches); otherwise the
    relative gradient against the drawn limits decides.
    """
    g = _float(row.get("grad_norm"))
    if not math.isfinite(g):
        return "nonfinite"
    if g == 0:
        return "zero"
    if "ND301" in codes:
        return "low"
    if "ND302" in codes:
        return "high"
    ratio = _float(row.get("grad_to_weight"))
    if g < th.vanishing_abs or (math.isfinite(ratio) and ratio < th.vanishing_ratio):
        return "low"
    if math.isfinite(ratio) and ratio > th.exploding_ratio:
        return "high"
    return "ok"


def gradient_flow(rows: Sequence[Row], flagged: Mapping[str, Sequence[str]], th: Thresholds) -> str:
    """Per-layer relative gradient ``|dL/dW| / |W|`` on a log scale, in execution order, with the
    ND301 and ND302 limits: the quantity the gradient rules judge (the absolute norm is in the tip)."""
    rows = [r for r in rows if r.get("grad_norm") is not None]
    n = len(rows)
    x0, slot, bottom, height = _layout(_names(rows))
    x1 = WIDTH - MARGIN_RIGHT
    top = MARGIN_TOP + 24
    rel = [_float(r.get("grad_to_weight")) for r in rows]
    lo, hi = log_domain([v for v in rel if finite_pos(v)] + [th.vanishing_ratio, th.exploding_ratio,
                                                                th.exploding_warn])
    sc = Scale(lo, hi, bottom, top, log=True)
    out = [open_svg("gradient-flow", height, n, "Gradient flow: relative gradient |dL/dW| / |W| per layer (log scale)",
                    scale="log", lo=num_attr(lo), hi=num_attr(hi))]
    out.append(y_axis(sc, x0, x1, "grad / weight"))
    off, bw = _bar_geometry(slot)
    xs = [x0 + i * slot for i in range(n)]
    for i, r in enumerate(rows):
        g, v = _float(r["grad_norm"]), rel[i]
        name = str(r.get("layer", i))
        status = grad_status(r, th, flagged.get(name, ()))
        if status == "nonfinite" or not math.isfinite(v):
            y, h = top, bottom - top
        elif status == "zero" or not finite_pos(v):
            y, h = bottom - 3, 3.0
        else:
            y = sc(v)
            h = max(bottom - y, 1.0)
        tip = _tip(name, f"grad/weight {fmt(r.get('grad_to_weight'))}", f"grad {fmt(g)}",
                   f"weight {fmt(r.get('weight_norm'))}", status if status != "ok" else "")
        out.append(
            f'<rect class="bar {status}" data-layer="{esc(name)}" data-value="{num_attr(r.get("grad_to_weight"))}" '
            f'data-grad="{num_attr(r["grad_norm"])}" data-status="{status}" x="{xs[i] + off:.1f}" y="{y:.1f}" '
            f'width="{bw:.1f}" height="{h:.1f}">{tip}</rect>'
        )
        if name in flagged:
            out.append(_flag(xs[i] + slot / 2, y, name, flagged[name]))
    out.append(ref_line(sc, th.vanishing_ratio, x0, x1, f"ND301 {fmt(th.vanishing_ratio)}", "ratio-low",
                        "vanishing-ratio"))
    out.append(ref_line(sc, th.exploding_warn, x0, x1, f"ND302 warning {fmt(th.exploding_warn)}", "ratio-warn",
                        "exploding-warn"))
    out.append(ref_line(sc, th.exploding_ratio, x0, x1, f"ND302 {fmt(th.exploding_ratio)}", "ratio-high",
                        "exploding-ratio"))
    out.append(legend([("ok", "grad / weight"), ("low", "vanishing"), ("high", "exploding"),
                       ("zero", "zero / non-finite"),
                       ("line:ratio-low", f"ND301 limit {fmt(th.vanishing_ratio)}"),
                       ("line:ratio-high", f"ND302 limits {fmt(th.exploding_warn)} / {fmt(th.exploding_ratio)}")],
                      x0, MARGIN_TOP + 4))
    out.append(x_labels(_names(rows), xs, slot, bottom + 10))
    out.append("</svg>")
    return "".join(out)


def activation_health(rows: Sequence[Row], flagged: Mapping[str, Sequence[str]], th: Thresholds) -> str:
    """Dead (ReLU family) and saturated (sigmoid/tanh) unit fractions per layer."""
    marks: list[tuple[int, str, str, float]] = []  # (slot, layer, metric, value)
    names: list[str] = []
    for r in rows:
        metrics = [(m, r[m]) for m in ("dead_frac", "saturated_frac") if r.get(m) is not None]
        if not metrics:
            continue
        names.append(str(r.get("layer", len(names))))
        marks.extend((len(names) - 1, names[-1], m, _float(v)) for m, v in metrics)
    n = len(names)
    x0, slot, bottom, height = _layout(names)
    x1 = WIDTH - MARGIN_RIGHT
    top = MARGIN_TOP + 24
    sc = Scale(0.0, 1.0, bottom, top)
    out = [open_svg("activation-health", height, len(marks), "Activation health: dead and saturated units per layer",
                    layers=n)]
    out.append(y_axis(sc, x0, x1, "fraction of units", percent=True))
    xs = [x0 + i * slot for i in range(n)]
    per_slot: dict[int, int] = {}
    for s, _, _, _ in marks:
        per_slot[s] = per_slot.get(s, 0) + 1
    seen: dict[int, int] = {}
    off, bw = _bar_geometry(slot)
    for s, name, metric, v in marks:
        k, j = per_slot[s], seen.get(s, 0)
        seen[s] = j + 1
        w = bw / k
        limit = th.dead_frac if metric == "dead_frac" else th.saturated_frac
        cls = ("dead" if metric == "dead_frac" else "saturated") + (" over" if v > limit else "")
        y = sc(v) if math.isfinite(v) else top
        h = max(bottom - y, 1.0)
        word = "dead" if metric == "dead_frac" else "saturated"
        out.append(
            f'<rect class="bar {cls}" data-layer="{esc(name)}" data-metric="{metric}" data-value="{num_attr(v)}" '
            f'x="{xs[s] + off + j * w:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
            f'{_tip(name, f"{v * 100:.1f}% {word}" if math.isfinite(v) else f"{v} {word}")}</rect>'
        )
        if name in flagged and j == 0:
            out.append(_flag(xs[s] + slot / 2, y, name, flagged[name]))
    if marks and all(v == 0 for _, _, _, v in marks):
        out.append(f'<text class="note" x="{(x0 + x1) / 2:.1f}" y="{(top + bottom) / 2 + 30:.1f}" '
                   'text-anchor="middle">no dead or saturated units in any layer</text>')
    out.append(ref_line(sc, th.dead_frac, x0, x1, f"{th.dead_frac * 100:.0f}% limit", "limit", "dead-limit"))
    out.append(legend([("dead", "dead units (ReLU family)"), ("saturated", "saturated units (sigmoid/tanh)"),
                       ("over", "over the limit")], x0, MARGIN_TOP + 4))
    out.append(x_labels(names, xs, slot, bottom + 10))
    out.append("</svg>")
    return "".join(out)


def activation_scale(rows: Sequence[Row], flagged: Mapping[str, Sequence[str]]) -> str:
    """Output standard deviation per layer by depth (log scale), one line per layer sort."""
    rows = [r for r in rows if r.get("act_std") is not None]
    n = len(rows)
    x0, slot, bottom, height = _layout(_names(rows))
    x1 = WIDTH - MARGIN_RIGHT
    top = MARGIN_TOP + 24
    lo, hi = log_domain([r["act_std"] for r in rows] + [1.0])
    sc = Scale(lo, hi, bottom, top, log=True)
    out = [open_svg("activation-scale", height, n, "Activation scale: output standard deviation by depth (log scale)",
                    scale="log", lo=num_attr(lo), hi=num_attr(hi))]
    out.append(y_axis(sc, x0, x1, "output std"))
    out.append(ref_line(sc, 1.0, x0, x1, "unit scale (std 1)", "unit", "unit-scale"))
    xs = [x0 + i * slot + slot / 2 for i in range(n)]
    series: dict[str, list[tuple[float, float]]] = {"weight": [], "act": []}
    points = []
    for i, r in enumerate(rows):
        v = _float(r["act_std"])
        name = str(r.get("layer", i))
        sort = "act" if "grad_norm" not in r and "weight_norm" not in r else "weight"
        status = "ok" if finite_pos(v) else ("zero" if v == 0 else "nonfinite")
        y = sc(v) if finite_pos(v) else (bottom if v == 0 else top)
        if status == "ok":
            series[sort].append((xs[i], y))
        label = "post-activation" if sort == "act" else "layer output"
        points.append(
            f'<circle class="point {sort} {status}" data-layer="{esc(name)}" data-value="{num_attr(r["act_std"])}" '
            f'cx="{xs[i]:.1f}" cy="{y:.1f}" r="{3.2 if n <= 60 else 2.2}">{_tip(name, f"std {fmt(v)}", label)}</circle>'
        )
        if name in flagged:
            points.append(_flag(xs[i], y - 3, name, flagged[name]))
    for sort, pts in series.items():
        if len(pts) > 1:
            out.append(f'<polyline class="line {sort}" points="{polyline_points(pts)}"/>')
    out.extend(points)
    out.append(legend([("weight", "weight-layer output"), ("act", "after activation")], x0, MARGIN_TOP + 4))
    out.append(x_labels(_names(rows), [x - slot / 2 for x in xs], slot, bottom + 10))
    out.append("</svg>")
    return "".join(out)


def he_std(row: Row) -> float | None:
    """He/Kaiming reference std ``sqrt(2 / fan_in)``, or ``None`` without fan-in."""
    fi = row.get("fan_in")
    return math.sqrt(2.0 / fi) if is_number(fi) and fi and fi > 0 else None


def xavier_std(row: Row) -> float | None:
    """Xavier/Glorot reference std ``sqrt(2 / (fan_in + fan_out))``."""
    fi, fo = row.get("fan_in"), row.get("fan_out")
    if is_number(fi) and is_number(fo) and fi and fo and fi + fo > 0:
        return math.sqrt(2.0 / (fi + fo))
    return None


def weight_scale(rows: Sequence[Row], flagged: Mapping[str, Sequence[str]], th: Thresholds) -> str:
    """Weight std per layer against the He and Xavier references (log scale)."""
    rows = [r for r in rows if r.get("weight_std") is not None]
    n = len(rows)
    x0, slot, bottom, height = _layout(_names(rows))
    x1 = WIDTH - MARGIN_RIGHT
    top = MARGIN_TOP + 24
    he = [he_std(r) for r in rows]
    xa = [xavier_std(r) for r in rows]
    lo, hi = log_domain([r["weight_std"] for r in rows] + he + xa)
    sc = Scale(lo, hi, bottom, top, log=True)
    out = [open_svg("weight-scale", height, n, "Weight scale: weight std per layer against He and Xavier",
                    scale="log", lo=num_attr(lo), hi=num_attr(hi))]
    out.append(y_axis(sc, x0, x1, "weight std"))
    xs = [x0 + i * slot for i in range(n)]
    off, bw = _bar_geometry(slot)
    for i, r in enumerate(rows):
        v = _float(r["weight_std"])
        name = str(r.get("layer", i))
        far = "ND203" in flagged.get(name, ())  # the rule's verdict, not a second opinion
        status = "zero" if v == 0 else "nonfinite" if not math.isfinite(v) else ("far" if far else "ok")
        y = sc(v) if finite_pos(v) else (bottom - 3 if v == 0 else top)
        h = max(bottom - y, 1.0)
        extra = "".join(f' data-{k}="{num_attr(x)}"' for k, x in (("he", he[i]), ("xavier", xa[i])) if x)
        tip = _tip(name, f"std {fmt(v)}", f"He {fmt(he[i])}" if he[i] else "", f"Xavier {fmt(xa[i])}" if xa[i] else "",
                   f"fan_in {r.get('fan_in')}, fan_out {r.get('fan_out')}" if "fan_in" in r else "")
        out.append(
            f'<rect class="bar {status}" data-layer="{esc(name)}" data-value="{num_attr(r["weight_std"])}"{extra} '
            f'x="{xs[i] + off:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}">{tip}</rect>'
        )
        if name in flagged:
            out.append(_flag(xs[i] + slot / 2, y, name, flagged[name]))
    out.append(f'<path class="ref he" data-ref="he" d="{step_path(sc, xs, slot, he)}"/>')
    out.append(f'<path class="ref xavier" data-ref="xavier" d="{step_path(sc, xs, slot, xa)}"/>')
    out.append(legend([("ok", "weight std"), ("far", f"ND203: variance outside {fmt(th.init_band)}x of its reference"), ("line:he", "He sqrt(2/fan_in)"),
                       ("line:xavier", "Xavier sqrt(2/(fan_in+fan_out))")], x0, MARGIN_TOP + 4))
    out.append(x_labels(_names(rows), xs, slot, bottom + 10))
    out.append("</svg>")
    return "".join(out)


__all__ = ["Thresholds", "activation_health", "activation_scale", "grad_status", "gradient_flow", "he_std",
           "weight_scale", "xavier_std"]
