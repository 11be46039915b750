"""Training-history charts of the HTML report (loss and gradient-norm curves).

History comes from the monitored run: ``render(report, history=monitor.history())`` with the
monitor's :class:`netdoctor.history.History`, or a plain mapping
``{"steps": [...], "loss": [...], "grad_norm": [...]}`` (see :func:`normalize_history`).

Charts: ``<svg class="chart" data-chart="loss-curve" data-count="<steps>">`` (likewise
``grad-norm-curve``, ``lr-curve`` and, for a validation loss without a training loss,
``val-loss-curve``). The loss is drawn smoothed (``polyline.smooth``, TensorBoard's debiased EMA,
weight in ``data-smoothing``) over the faint raw line (``polyline.raw``); a validation loss
(``val_loss``/``val_loss_steps`` in a mapping history) is ``polyline.val`` with one
``circle.val-point`` per evaluation on the same axes. Step ticks are integers at 1, 2, 5 x 10^k
spacings, written ``950``, ``1k``, ``2.5k``. Up to :data:`POINT_LIMIT` steps every step is a
``circle.point[data-step][data-value]``; longer runs are drawn as one polyline, reduced to
the min and max of each of :data:`MAX_DRAWN` buckets (spikes survive), and the SVG says
how many points it drew (``data-drawn``). Steps where findings fired are
``g.event[data-step][data-code]`` vertical lines, labelled by ``text.event-label`` in rows above
the plot (findings at the same or nearby steps share one label; see :mod:`netdoctor.reporters.html.labels`); runs of NaN/Inf values are shaded
``g.nonfinite[data-from][data-to]`` bands.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from netdoctor.findings import Finding
from netdoctor.reporters.html.labels import LABEL_ROW, labels_svg, layout_event_labels
from netdoctor.reporters.html.svg import (
    MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, WIDTH, Scale, esc, fmt, linear_domain, log_domain,
    num_attr, open_svg, polyline_points, step_label, step_ticks, y_axis,
)

POINT_LIMIT = 400
MAX_DRAWN = 1000
SERIES = ("loss", "grad_norm", "lr", "val_loss")


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
        pts = [(s.step, s.lr) for s in history.samples if getattr(s, "lr", None) is not None]
        if pts:
            out["lr"] = ([p[0] for p in pts], [p[1] for p in pts])
        val = _seq(getattr(history, "val_values", None))
        if val:
            out["val_loss"] = (_seq(history.val_steps), val)
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


def is_run(history: Any) -> bool:
    """Whether ``history`` is the monitor's :class:`netdoctor.history.History` of a training run."""
    return hasattr(history, "samples") and hasattr(history, "act_layers") and hasattr(history, "every")


def describe_run(history: Any) -> str:
    """``training run: 1,200 steps, sampled every 10 (120 samples kept)``."""
    n = len(history.samples)
    return (f"training run: {int(history.steps):,} steps, sampled every {int(history.every)} "
            f"({n} sample{'' if n == 1 else 's'} kept)")


def latest_activations(history: Any) -> tuple[int, list[dict[str, Any]]] | None:
    """``(step, rows)`` of the latest sample that measured activations: one row per activation
    layer with its ``dead_frac`` (ReLU family) and/or ``saturated_frac`` (sigmoid/tanh), the
    fractions ND607 and ND610 follow over the run; ``None`` when no sample measured any."""
    names = tuple(getattr(history, "act_layers", ()) or ())
    kinds = tuple(getattr(history, "act_kinds", ()) or ())
    for sample in reversed(tuple(getattr(history, "samples", ()) or ())):
        dead, sat = getattr(sample, "act_dead", None), getattr(sample, "act_saturated", None)
        rows = []
        for i, name in enumerate(names):
            row: dict[str, Any] = {"layer": name, "type": kinds[i] if i < len(kinds) else ""}
            for key, arr in (("dead_frac", dead), ("saturated_frac", sat)):
                if arr is not None and i < len(arr) and math.isfinite(float(arr[i])):
                    row[key] = float(arr[i])
            if len(row) > 2:
                rows.append(row)
        if rows:
            return int(sample.step), rows
    return None


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


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average; NaN where a value is not finite
    (non-finite values are skipped, so a NaN step does not poison the rest of the curve)."""
    out: list[float] = []
    last, count = 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(math.nan)
            continue
        last = last * weight + (1.0 - weight) * v
        count += 1
        debias = 1.0 - weight ** count
        out.append(last / debias if debias > 0 else v)
    return out


def smoothing_weight(n: int) -> float:
    """EMA weight for ``n`` points: TensorBoard's default 0.6, more on long runs (an EMA span of
    about ``n / 50`` points), at most 0.99."""
    return round(min(0.99, max(0.6, 1.0 - 2.0 / (n / 50.0 + 1.0))), 3)


def _segments(keep: Sequence[int], ys: Sequence[float], xs: Sequence[float], sx: Scale, sy: Scale) -> list[str]:
    """``points`` of the polylines through ``keep``, broken where a value in between is not finite."""
    bad_before = [0] * (len(ys) + 1)  # bad_before[i]: non-finite values among the first i
    for i, y in enumerate(ys):
        bad_before[i + 1] = bad_before[i] + (not math.isfinite(y))
    segments: list[list[tuple[float, float]]] = [[]]
    prev = None
    for i in keep:
        if not math.isfinite(ys[i]):
            continue
        if prev is not None and bad_before[i] > bad_before[prev + 1]:
            segments.append([])
        segments[-1].append((sx(xs[i]), sy(ys[i])))
        prev = i
    return [polyline_points(seg) for seg in segments if len(seg) > 1]


#: Points of the smoothed line at most (it has no spikes to keep: every k-th point is enough).
SMOOTH_DRAWN = 500


def curve(chart: str, title: str, ylabel: str, steps: Sequence[Any], values: Sequence[Any],
          events: Iterable[Finding] = (), *, smooth: bool = False,
          overlay: tuple[Sequence[Any], Sequence[Any]] | None = None, log_ratio: float = 100.0) -> str:
    """A curve over training steps with the steps where findings fired.

    ``smooth`` draws the series as an EMA (:func:`ema`) over the faint raw line; ``overlay`` is a
    second ``(steps, values)`` series in the same units (the validation loss); the y axis is
    logarithmic when the values span ``log_ratio`` or more.
    """
    n = min(len(steps), len(values))
    xs_raw = [_float(s) for s in steps[:n]]
    ys = [_float(v) for v in values[:n]]
    finite = [i for i in range(n) if math.isfinite(ys[i]) and math.isfinite(xs_raw[i])]
    fy = [ys[i] for i in finite]
    ov: list[tuple[float, float, Any, Any]] = []
    if overlay is not None:
        o_steps, o_values = overlay
        ov = [(_float(s), _float(v), s, v) for s, v in zip(o_steps, o_values)]
        ov = [p for p in ov if math.isfinite(p[0]) and math.isfinite(p[1])]
    dy = fy + [p[1] for p in ov]
    use_log = bool(dy) and min(dy) > 0 and max(dy) / min(dy) >= log_ratio
    lo, hi = log_domain(dy) if use_log else linear_domain(dy)
    fx = [x for x in xs_raw if math.isfinite(x)] + [p[0] for p in ov]
    smin, smax = (min(fx), max(fx)) if fx else (0.0, 1.0)
    if smax == smin:
        smin, smax = smin - 0.5, smax + 0.5
    x0, x1 = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    sx = Scale(smin, smax, x0, x1)
    labels, rows, hidden = layout_event_labels(events, sx, smin, smax)
    top = MARGIN_TOP + 10 + LABEL_ROW * max(rows, 1)
    bottom = top + 180
    height = bottom + 40
    sy = Scale(lo, hi, bottom, top, log=use_log)
    keep = _decimate(finite, ys)
    nonfinite = [i for i in range(n) if not math.isfinite(ys[i])]
    weight = smoothing_weight(len(finite)) if smooth and len(finite) > 2 else None
    extra: dict[str, Any] = {} if weight is None else {"smoothing": weight}
    if ov:
        extra["overlay"] = len(ov)
    out = [open_svg(chart, height, n, title, scale="log" if use_log else "linear", drawn=len(keep),
                    nonfinite=len(nonfinite), min=num_attr(min(fy)) if fy else "nan",
                    max=num_attr(max(fy)) if fy else "nan", last=num_attr(ys[-1]) if n else "nan",
                    label_rows=rows, labels_hidden=hidden, **extra)]
    out.append(y_axis(sy, x0, x1, ylabel))
    out.append(_step_axis(sx, smin, smax, bottom))
    legend_items: list[tuple[str, str]] = []
    raw_cls = "line series raw" if weight is not None else "line series"
    for pts in _segments(keep, ys, xs_raw, sx, sy):
        out.append(f'<polyline class="{raw_cls}" points="{pts}"/>')
    if weight is not None:
        smoothed = ema(ys, weight)
        stride = math.ceil(len(finite) / SMOOTH_DRAWN)
        every_kth = finite[::stride] + ([finite[-1]] if (len(finite) - 1) % stride else [])
        for pts in _segments(every_kth, smoothed, xs_raw, sx, sy):
            out.append(f'<polyline class="line series smooth" data-smoothing="{weight}" points="{pts}"/>')
        legend_items += [("raw", "raw (every step)"), ("smooth", f"smoothed (EMA {weight:g})")]
    if n <= POINT_LIMIT:
        for i in finite:
            out.append(f'<circle class="point" data-step="{num_attr(steps[i])}" data-value="{num_attr(values[i])}" '
                       f'cx="{sx(xs_raw[i]):.1f}" cy="{sy(ys[i]):.1f}" r="2"><title>step {esc(steps[i])}: '
                       f'{esc(fmt(ys[i], 4))}</title></circle>')
    if ov:
        pts = polyline_points([(sx(x), sy(y)) for x, y, _, _ in ov])
        if len(ov) > 1:
            out.append(f'<polyline class="line series val" points="{pts}"/>')
        for x, y, s, v in ov[:POINT_LIMIT]:
            out.append(f'<circle class="val-point" data-step="{num_attr(s)}" data-value="{num_attr(v)}" '
                       f'cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5"><title>validation at step {esc(s)}: '
                       f'{esc(fmt(y, 4))}</title></circle>')
        if not legend_items:
            legend_items.append(("plain", "training"))
        legend_items.append(("val", "validation"))
    for k, (cls, text) in enumerate(legend_items):
        y = top + 10 + 14 * k
        out.append(f'<g class="curve-legend {cls}"><path d="M{x1 + 8:.1f} {y - 4:.1f}h16"/>'
                   f'<text x="{x1 + 28:.1f}" y="{y:.1f}">{esc(text)}</text></g>')
    out.append(_nonfinite(steps, xs_raw, ys, nonfinite, sx, top, bottom))
    out.append(_events(events, sx, smin, smax, top, bottom))
    out.append(labels_svg(labels, top))
    out.append("</svg>")
    return "".join(out)


def _step_axis(sx: Scale, smin: float, smax: float, bottom: float) -> str:
    """Step ticks (``text.step-tick[data-step]``) under the plot and the axis title."""
    parts = [f'<text class="tick step-tick" x="{sx(t):.1f}" y="{bottom + 16:.1f}" text-anchor="middle" '
             f'data-step="{t}">{esc(step_label(t))}</text>' for t in step_ticks(smin, smax)]
    mid = (sx.p0 + sx.p1) / 2
    parts.append(f'<text class="axis-title" x="{mid:.1f}" y="{bottom + 34:.1f}" text-anchor="middle">step</text>')
    return "".join(parts)


#: Activation layers drawn at most on the unit-trend chart (flagged and most affected first).
MAX_UNIT_SERIES = 12


def unit_trend(history: Any, findings: Sequence[Finding]) -> str | None:
    """Dead (ReLU family) and saturated (sigmoid/tanh) fraction of each activation layer over the
    sampled steps of a monitored run: the series ND607 and ND610 judge. ``None`` without data.

    ``<svg data-chart="unit-trend">`` holds one ``polyline.unit-series[data-layer][data-metric]``
    per layer and metric (``data-steps``/``data-values`` carry the numbers), at most
    :data:`MAX_UNIT_SERIES`; layers named by a finding are drawn first and bold (``flagged``).
    """
    names = tuple(getattr(history, "act_layers", ()) or ())
    if not names or not hasattr(history, "matrix"):
        return None
    flagged = {f.layer for f in findings if f.layer}
    series: list[tuple[str, str, list[int], list[float]]] = []
    for field, metric in (("act_dead", "dead"), ("act_saturated", "saturated")):
        steps, matrix = history.matrix(field)
        for j, name in enumerate(names[:matrix.shape[1]]):
            col = [float(v) for v in matrix[:, j]]
            if any(math.isfinite(v) for v in col):
                series.append((name, metric, [int(s) for s in steps], col))
    if not series:
        return None
    peak = lambda sr: max((v for v in sr[3] if math.isfinite(v)), default=0.0)  # noqa: E731
    series.sort(key=lambda sr: (sr[0] not in flagged, -peak(sr)))
    shown = series[:MAX_UNIT_SERIES]
    all_steps = [s for sr in shown for s in sr[2]]
    smin, smax = float(min(all_steps)), float(max(all_steps))
    if smax == smin:
        smin, smax = smin - 0.5, smax + 0.5
    x0, x1 = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    sx = Scale(smin, smax, x0, x1)
    events = [f for f in findings if f.step is not None]
    labels, rows, hidden = layout_event_labels(events, sx, smin, smax)
    top = MARGIN_TOP + 10 + LABEL_ROW * max(rows, 1)
    bottom = top + 180
    sy = Scale(0.0, 1.0, bottom, top)
    out = [open_svg("unit-trend", bottom + 40, len(shown), "Dead and saturated units per activation layer over the run",
                    series=len(series), label_rows=rows, labels_hidden=hidden)]
    out.append(y_axis(sy, x0, x1, "fraction of units", percent=True))
    out.append(_step_axis(sx, smin, smax, bottom))
    for k, (name, metric, steps, col) in enumerate(shown):
        pts = [(sx(s), sy(min(max(v, 0.0), 1.0))) for s, v in zip(steps, col) if math.isfinite(v)]
        last = next((v for v in reversed(col) if math.isfinite(v)), math.nan)
        cls = f"unit-series {metric}" + (" flagged" if name in flagged else "")
        d = "".join(f'{"M" if i == 0 else "L"}{x:.1f} {y:.1f}' for i, (x, y) in enumerate(pts))
        if len(pts) == 1:  # one sample: a dot-sized stroke
            d += "h0.1"
        out.append(f'<path class="{cls}" data-layer="{esc(name)}" data-metric="{metric}" '
                   f'data-steps="{" ".join(str(s) for s in steps)}" data-values="{" ".join(num_attr(v) for v in col)}" '
                   f'd="{d}"><title>{esc(name)}: {metric} fraction, {last * 100:.1f}% at the last sample</title></path>')
        if k < 8:  # the first (flagged, most affected) layers are named in the legend
            y = top + 10 + 14 * k
            out.append(f'<g class="curve-legend unit {metric}{" flagged" if name in flagged else ""}">'
                       f'<path d="M{x1 + 8:.1f} {y - 4:.1f}h16"/><text x="{x1 + 28:.1f}" y="{y:.1f}">'
                       f'{esc(_short(name))} {metric}</text></g>')
    out.append(_events(events, sx, smin, smax, top, bottom))
    out.append(labels_svg(labels, top))
    out.append("</svg>")
    return "".join(out)


def _short(name: str, n: int = 14) -> str:
    return name if len(name) <= n else "…" + name[-(n - 1):]


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


def _events(events: Iterable[Finding], sx: Scale, smin: float, smax: float, top: float, bottom: float) -> str:
    by_step: dict[int, list[Finding]] = {}
    for f in events:
        if f.step is not None:
            by_step.setdefault(f.step, []).append(f)
    parts = []
    for step, fs in sorted(by_step.items()):
        if not smin <= step <= smax:
            continue
        x = sx(step)
        codes = " ".join(dict.fromkeys(f.code for f in fs))
        sev = str(max(f.severity for f in fs))
        tip = "; ".join(f"{f.code} {f.name}: {f.message}" for f in fs)
        parts.append(
            f'<g class="event sev-{sev}" data-step="{step}" data-code="{esc(codes)}"><title>step {step}: {esc(tip)}</title>'
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}"/></g>'
        )
    return "".join(parts)


def history_charts(history: Series, findings: Sequence[Finding]) -> list[tuple[str, str, str]]:
    """``[(heading, subtitle, svg)]`` for the curves that ``history`` holds: the loss (smoothed,
    with the validation loss when recorded), the gradient norm and the learning rate."""
    events = [f for f in findings if f.step is not None]
    marked = "; dashed lines mark the steps where findings fired" if events else ""
    out = []
    val = history.get("val_loss")
    if "loss" in history:
        steps, values = history["loss"]
        sub = "per step, smoothed over the faint raw values" + (", with the validation loss" if val else "")
        out.append(("Loss", sub + marked, curve("loss-curve", "Training loss per step", "loss", steps, values,
                                                events, smooth=True, overlay=val)))
    elif val:
        out.append(("Validation loss", "per evaluation" + marked,
                    curve("val-loss-curve", "Validation loss", "validation loss", *val, events)))
    if "grad_norm" in history:
        steps, values = history["grad_norm"]
        out.append(("Gradient norm", "per step" + marked, curve(
            "grad-norm-curve", "Global gradient norm per step", "gradient norm", steps, values, events)))
    if "lr" in history:
        steps, values = history["lr"]
        out.append(("Learning rate", "per sampled step; log scale when it spans a decade or more" + marked, curve(
            "lr-curve", "Learning rate per sampled step", "learning rate", steps, values, events, log_ratio=10.0)))
    return out
