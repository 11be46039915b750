"""Training-history charts of the HTML report (loss and gradient-norm curves).

History comes from the monitored run: ``render(report, history=monitor.history())`` with the
monitor's :class:`netdoctor.history.History`, or a plain mapping
``{"steps": [...], "loss": [...], "grad_norm": [...]}`` (see :func:`normalize_history`).

Charts: ``<svg class="chart" data-chart="loss-curve" data-count="<steps>">`` (likewise
``grad-norm-curve``). Up to :data:`POINT_LIMIT` steps every step is a
``circle.point[data-step][data-value]``; longer runs are drawn as one polyline, reduced to
the min and max of each of :data:`MAX_DRAWN` buckets (spikes survive), and the SVG says
how many points it drew (``data-drawn``). Steps where findings fired are
``g.event[data-step][data-code]`` vertical lines; runs of NaN/Inf values are shaded
``g.nonfinite[data-from][data-to]`` bands.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from netdoctor.findings import Finding
from netdoctor.reporters.html.svg import (
    MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, WIDTH, Scale, esc, fmt, linear_domain, linear_ticks, log_domain,
    num_attr, open_svg, polyline_points, y_axis,
)

POINT_LIMIT = 400
MAX_DRAWN = 1000
SERIES = ("loss", "grad_norm")


def _seq(value: Any) -> list[Any] | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    try:
        return list(value)
    except TypeError:
        return None


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


Series = dict[str, tuple[list[Any], list[Any]]]


def normalize_history(history: Any) -> Series | None:
    """``{"loss": (steps, values), "grad_norm": (steps, values)}``, or ``None`` when empty.

    Accepts :class:`netdoctor.history.History` (loss of every step, gradient norm of the
    sampled steps), a mapping or object with ``loss``/``grad_norm`` sequences and shared
    ``steps`` (or per-series ``loss_steps``/``grad_norm_steps``; default ``0..n-1``), an
    object with ``to_dict()``, or a list of per-step records with ``step``/``loss``/``grad_norm``.
    Missing series are left out.
    """
    if history is None:
        return None
    if hasattr(history, "loss_values") and hasattr(history, "samples"):  # netdoctor.history.History
        out: Series = {}
        steps, values = _seq(history.loss_steps) or [], _seq(history.loss_values) or []
        if values:
            out["loss"] = (steps, values)
        pts = [(s.step, s.grad_norm) for s in history.samples if getattr(s, "grad_norm", None) is not None]
        if pts:
            out["grad_norm"] = ([p[0] for p in pts], [p[1] for p in pts])
        return out or None
    has_series = any(_seq(_get(history, k)) for k in SERIES)
    if not has_series and not isinstance(history, Mapping) and hasattr(history, "to_dict"):
        return normalize_history(history.to_dict())
    if not has_series and not isinstance(history, Mapping):
        records = _seq(history)
        if not records:
            return None
        out = {}
        for k in SERIES:
            pts = [(i if _get(r, "step") is None else _get(r, "step"), _get(r, k)) for i, r in enumerate(records)]
            pts = [p for p in pts if p[1] is not None]
            if pts:
                out[k] = ([p[0] for p in pts], [p[1] for p in pts])
        return out or None
    out = {}
    shared = _seq(_get(history, "steps"))
    for k in SERIES:
        values = _seq(_get(history, k))
        if not values:
            continue
        steps = _seq(_get(history, f"{k}_steps")) or shared
        out[k] = (steps if steps and len(steps) >= len(values) else list(range(len(values))), values)
    return out or None


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _decimate(idx: Sequence[int], ys: Sequence[float]) -> list[int]:
    """Indices of the min and max of each bucket, in order (keeps spikes visible)."""
    if len(idx) <= MAX_DRAWN:
        return list(idx)
    size = math.ceil(len(idx) / (MAX_DRAWN // 2))
    keep: list[int] = []
    for b in range(0, len(idx), size):
        chunk = idx[b:b + size]
        lo = min(chunk, key=lambda i: ys[i])
        hi = max(chunk, key=lambda i: ys[i])
        keep.extend(sorted({lo, hi}))
    return keep


def curve(chart: str, title: str, ylabel: str, steps: Sequence[Any], values: Sequence[Any],
          events: Iterable[Finding] = ()) -> str:
    """A curve over training steps with the steps where findings fired."""
    n = min(len(steps), len(values))
    xs_raw = [_float(s) for s in steps[:n]]
    ys = [_float(v) for v in values[:n]]
    finite = [i for i in range(n) if math.isfinite(ys[i]) and math.isfinite(xs_raw[i])]
    fy = [ys[i] for i in finite]
    use_log = bool(fy) and min(fy) > 0 and max(fy) / min(fy) >= 100
    lo, hi = log_domain(fy) if use_log else linear_domain(fy)
    top, bottom = MARGIN_TOP + 24, MARGIN_TOP + 24 + 180
    height = bottom + 40
    x0, x1 = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    fx = [x for x in xs_raw if math.isfinite(x)]
    smin, smax = (min(fx), max(fx)) if fx else (0.0, 1.0)
    if smax == smin:
        smin, smax = smin - 0.5, smax + 0.5
    sx = Scale(smin, smax, x0, x1)
    sy = Scale(lo, hi, bottom, top, log=use_log)
    keep = _decimate(finite, ys)
    nonfinite = [i for i in range(n) if not math.isfinite(ys[i])]
    out = [open_svg(chart, height, n, title, scale="log" if use_log else "linear", drawn=len(keep),
                    nonfinite=len(nonfinite), min=num_attr(min(fy)) if fy else "nan",
                    max=num_attr(max(fy)) if fy else "nan", last=num_attr(ys[-1]) if n else "nan")]
    out.append(y_axis(sy, x0, x1, ylabel))
    for t in _step_ticks(smin, smax):
        x = sx(t)
        out.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle">{esc(fmt(t))}</text>')
    out.append(f'<text class="axis-title" x="{(x0 + x1) / 2:.1f}" y="{bottom + 34:.1f}" text-anchor="middle">step</text>')
    # Break the line where values are not finite.
    bad_before = [0] * (n + 1)  # bad_before[i]: non-finite values among the first i
    for i in range(n):
        bad_before[i + 1] = bad_before[i] + (not math.isfinite(ys[i]))
    segments: list[list[tuple[float, float]]] = [[]]
    prev = None
    for i in keep:
        if prev is not None and bad_before[i] > bad_before[prev + 1]:
            segments.append([])
        segments[-1].append((sx(xs_raw[i]), sy(ys[i])))
        prev = i
    for seg in segments:
        if len(seg) > 1:
            out.append(f'<polyline class="line series" points="{polyline_points(seg)}"/>')
    if n <= POINT_LIMIT:
        for i in finite:
            out.append(f'<circle class="point" data-step="{num_attr(steps[i])}" data-value="{num_attr(values[i])}" '
                       f'cx="{sx(xs_raw[i]):.1f}" cy="{sy(ys[i]):.1f}" r="2"><title>step {esc(steps[i])}: '
                       f'{esc(fmt(ys[i], 4))}</title></circle>')
    out.append(_nonfinite(steps, xs_raw, ys, nonfinite, sx, top, bottom))
    out.append(_events(events, sx, smin, smax, top, bottom))
    out.append("</svg>")
    return "".join(out)


def _nonfinite(steps: Sequence[Any], xs: Sequence[float], ys: Sequence[float], bad: Sequence[int], sx: Scale,
               top: float, bottom: float) -> str:
    """Shaded bands over runs of consecutive non-finite values (``rect.nonfinite-band``)."""
    runs: list[list[int]] = []
    for i in bad:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = []
    for run in runs[:200]:
        a, b = run[0], run[-1]
        if not (math.isfinite(xs[a]) and math.isfinite(xs[b])):
            continue
        xa, xb = sx(xs[a]), sx(xs[b])
        if xb - xa < 3:
            xa, xb = xa - 1.5, xb + 1.5
        what = ", ".join(sorted({str(ys[i]) for i in run}))
        span = f"step {steps[a]}" if a == b else f"steps {steps[a]}–{steps[b]}"
        parts.append(
            f'<g class="nonfinite" data-from="{num_attr(steps[a])}" data-to="{num_attr(steps[b])}" data-count="{len(run)}">'
            f"<title>{esc(span)}: {esc(what)}</title>"
            f'<rect class="nonfinite-band" x="{xa:.1f}" y="{top:.1f}" width="{xb - xa:.1f}" height="{bottom - top:.1f}"/>'
            f'<text class="nonfinite-label" x="{xb - 2:.1f}" y="{bottom - 4:.1f}" text-anchor="end">{esc(what)}</text></g>'
        )
    return "".join(parts)


def _step_ticks(smin: float, smax: float) -> list[float]:
    return [t for t in linear_ticks(smin, smax, 8) if smin <= t <= smax]


def _events(events: Iterable[Finding], sx: Scale, smin: float, smax: float, top: float, bottom: float) -> str:
    by_step: dict[int, list[Finding]] = {}
    for f in events:
        if f.step is not None:
            by_step.setdefault(f.step, []).append(f)
    parts = []
    for k, (step, fs) in enumerate(sorted(by_step.items())):
        if not smin <= step <= smax:
            continue
        x = sx(step)
        codes = " ".join(dict.fromkeys(f.code for f in fs))
        sev = str(max(f.severity for f in fs))
        tip = "; ".join(f"{f.code} {f.name}: {f.message}" for f in fs)
        label = f'<text x="{x + 3:.1f}" y="{top - 4 + (k % 2) * 10:.1f}">{esc(codes)}</text>' if k < 30 else ""
        parts.append(
            f'<g class="event sev-{sev}" data-step="{step}" data-code="{esc(codes)}"><title>step {step}: {esc(tip)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}"/>{label}</g>'
        )
    return "".join(parts)


def history_charts(history: Series, findings: Sequence[Finding]) -> list[tuple[str, str]]:
    """``[(heading, svg)]`` for the loss and gradient-norm curves that history holds."""
    events = [f for f in findings if f.step is not None]
    out = []
    if "loss" in history:
        steps, values = history["loss"]
        out.append(("Loss", curve("loss-curve", "Training loss per step", "loss", steps, values, events)))
    if "grad_norm" in history:
        steps, values = history["grad_norm"]
        out.append(("Gradient norm", curve("grad-norm-curve", "Global gradient norm per step", "gradient norm",
                                           steps, values, events)))
    return out
