"""HTML reporter: one self-contained page (inline CSS, JS and SVG; no network at all).

The page holds the summary (counts, models checked, timings), every finding with its
recommendation, snippet and verification (before -> after evidence, the verdict, the
``--verify`` diff), and per checked model the pictures practitioners otherwise draw by hand:
gradient flow, activation health, activation scale by depth, weight scale against He/Xavier,
and for monitored runs the smoothed loss (with a validation loss when given), gradient-norm and
learning-rate curves with the steps where findings fired, and the dead/saturated fraction of
each activation layer over the run.

Everything sits in one root element, ``<div class="netdoctor-report">``, and every style rule
is scoped to it; ``render(report, fragment=True)`` returns just that element to embed in
another page.

Charts carry their numbers (``data-chart``, ``data-count``, per-mark ``data-layer`` and
``data-value``); see :mod:`netdoctor.reporters.html.charts` and ``_html_history``.

    >>> html = netdoctor.reporters.render("html", report)   # doctest: +SKIP
    >>> report.to_html("report.html")                          # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Iterable, Mapping, Sequence

from netdoctor._version import __version__
from netdoctor.findings import Category, Finding, Report, Severity, TargetInfo
from netdoctor.reporters.html import charts as charts
from netdoctor.reporters.html.assets import CSS, JS, ROOT_CLASS
from netdoctor.reporters.html.history import (
    describe_run, history_charts, is_run, latest_activations, normalize_history, unit_trend,
)
from netdoctor.reporters.html.verify import render_evidence, render_verification
from netdoctor.reporters.html.svg import esc, fmt, num_attr

LAYER_COLUMNS = (
    ("type", "type", False), ("grad_norm", "grad norm", True), ("weight_norm", "weight norm", True),
    ("grad_to_weight", "grad/weight", True), ("act_std", "act std", True), ("dead_frac", "dead", True),
    ("saturated_frac", "saturated", True), ("weight_std", "weight std", True), ("fan_in", "fan in", True),
    ("fan_out", "fan out", True),
)
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO)


def render(
    report: Report,
    *,
    history: Any = None,
    title: str | None = None,
    thresholds: charts.Thresholds | Mapping[str, float] | None = None,
    fragment: bool = False,
    **_opts: Any,
) -> str:
    """Render ``report`` as one self-contained HTML page.

    Args:
        report: The finished report.
        history: Training history of a monitored run, used when the report does not carry
            one itself (``report.history`` or a target's ``history``): the monitor's
            :class:`netdoctor.history.History` (``monitor.history()``), or a mapping
            ``{"steps": [...], "loss": [...], "grad_norm": [...], "lr": [...],
            "val_loss": [...]}`` (any series may be missing; ``steps`` defaults to
            ``0..n-1``; ``loss_steps``/``grad_norm_steps``/``lr_steps``/``val_loss_steps``
            give a series its own steps), an object with those attributes or ``to_dict()``,
            or a list of per-step records with ``step``/``loss``/``grad_norm``. When the
            report carries its own history, the series of ``history`` it lacks are added
            (``report.to_html(path, history={"val_loss": [...], "val_loss_steps": [...]})``
            draws a validation loss on a monitored run's loss chart).
        title: Page title (default: "netdoctor report" plus the checked files/models).
        thresholds: Reference lines of the charts: a mapping of
            :class:`~netdoctor.reporters.html.charts.Thresholds` field names (the rest
            default to the rules' default options), or a ``Thresholds``.
        fragment: Return only the report's root element (``<div class="netdoctor-report">``
            holding its ``<style>`` and ``<script>``) to embed in another page, such as a
            dashboard; every style rule is scoped to that element.

    Returns:
        The HTML document (or the fragment).
    """
    th = _thresholds(thresholds)
    own = _report_history(report)
    raw = own if own is not None else history
    hist = normalize_history(raw)
    if own is not None and history is not None:  # e.g. a validation loss kept outside the monitor
        extra = {k: v for k, v in (normalize_history(history) or {}).items() if k not in (hist or {})}
        hist = {**(hist or {}), **extra} or None
    run = raw if is_run(raw) else None
    heading = title or _default_title(report)
    layer_ids = _layer_ids(report)
    body = [_header(report, heading), _models_table(report, run)]
    if hist is not None:
        body.append(_history_section(hist, report.findings, run))
    body.append(_targets_section(report, th, layer_ids, run))
    body.append(_orphan_findings(report, layer_ids))
    body.append(_other_section(report))
    body.append(f'<footer>Generated by netdoctor {esc(__version__)}. Self-contained page: no network access.</footer>')
    content = "\n".join(body)
    if fragment:
        return (f'<div class="{ROOT_CLASS}" data-nd-ready="0"><style>{CSS}</style><main>\n{content}\n</main>'
                f"<script>{JS}</script></div>\n")
    return (
        '<!DOCTYPE html>\n<html lang="en" data-nd-ready="0"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="netdoctor {esc(__version__)}">'
        f'<title>{esc(heading)}</title><style>{CSS}</style></head>\n<body style="margin:0">'
        f'<div class="{ROOT_CLASS}" style="min-height:100vh"><main>\n'
        + content
        + f"\n</main></div><script>{JS}</script></body></html>\n"
    )


def notebook(report: Report, *, max_height: int = 900, **opts: Any) -> str:
    """The report as an HTML fragment for a notebook cell (``Report._repr_html_``).

    The whole page of :func:`render` goes into an ``<iframe srcdoc>``: its stylesheet and script
    apply inside the frame only, so displaying a report never restyles the notebook (and the
    notebook's styles do not reach the report). ``sandbox="allow-scripts"`` lets the report's
    own script draw its charts without access to the notebook page. The frame's height follows
    the report's length up to ``max_height`` pixels; beyond that it scrolls.
    """
    import html as _html

    page = render(report, **opts)
    height = min(max_height, 260 + 170 * len(report.findings) + 430 * len(report.targets) + 40 * len(report.errors))
    title = _default_title(report)
    return (f'<iframe class="netdoctor-report-frame" title="{esc(title)}" sandbox="allow-scripts" '
            f'style="width:100%;height:{height}px;border:1px solid #d0d7de;border-radius:6px" '
            f'srcdoc="{_html.escape(page, quote=True)}"></iframe>')


# -- helpers --------------------------------------------------------------------------
def _thresholds(value: Any) -> charts.Thresholds:
    if isinstance(value, charts.Thresholds):
        return value
    value = dict(value or {})
    known = {f.name for f in fields(charts.Thresholds)}
    unknown = set(value) - known
    if unknown:
        raise ValueError(f"unknown threshold(s) {sorted(unknown)}; expected some of {sorted(known)}")
    return charts.Thresholds.from_rules(**{k: float(v) for k, v in value.items()})


def _report_history(report: Report) -> Any:
    """History carried by the report itself (monitored runs), if the report has one."""
    h = getattr(report, "history", None)
    if h is not None:
        return h
    for t in report.targets:
        h = getattr(t, "history", None)
        if h is not None:
            return h
    return None


def _default_title(report: Report) -> str:
    names = [t.file or t.model_class for t in report.targets if t.file or t.model_class]
    if not names:
        return "netdoctor report"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"netdoctor report: {shown}"


def _target_name(t: TargetInfo, i: int) -> str:
    return t.file or t.model_class or f"model {i + 1}"


def _belongs(f: Finding, t: TargetInfo, report: Report) -> bool:
    return len(report.targets) == 1 or f.file == t.file


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _cell(value: Any, pct: bool = False) -> str:
    if value is None:
        return ""
    if pct and isinstance(value, (int, float)) and math.isfinite(float(value)):
        return f"{float(value) * 100:.1f}%"
    return esc(fmt(value))


# -- sections -------------------------------------------------------------------------
def _header(report: Report, heading: str) -> str:
    passed = set().union(*(set(t.rules_passed) for t in report.targets)) if report.targets else set()
    cards = [
        ("error", report.count(Severity.ERROR), "errors"),
        ("warning", report.count(Severity.WARNING), "warnings"),
        ("info", report.count(Severity.INFO), "info"),
        ("passed", len(passed), "rules passed"),
        ("", len(report.rules_run), "rules run"),
        ("", len(report.targets), "models checked"),
    ]
    if report.suppressed:
        cards.append(("", len(report.suppressed), "suppressed"))
    if report.errors:
        cards.append(("error", len(report.errors), "failed to load"))
    html = [f"<header><h1>{esc(heading)}</h1>",
            f'<div class="sub" id="summary-line">{esc(report.summary())}</div>',
            '<div class="cards" id="summary">']
    for cls, n, label in cards:
        key = label.replace(" ", "-")
        html.append(f'<div class="card {cls}" data-count-of="{key}"><b>{n}</b><span>{esc(label)}</span></div>')
    if report.timings:
        t = dict(report.timings)
        total = float(t.pop("total", sum(float(v) for v in t.values())))
        phases = " · ".join(f'<i data-timing="{esc(k)}">{esc(k)} {float(v):.2f}s</i>' for k, v in t.items())
        html.append(f'<div class="card timing" data-timing="total"><b>{total:.2f}s</b>'
                    f"<span>total{': ' + phases if phases else ''}</span></div>")
    html.append("</div>")
    html.append(_filters(report))
    html.append("</header>")
    return "".join(html)


def _models_table(report: Report, run: Any = None) -> str:
    if not report.targets:
        return '<section id="models"><h2>Models checked</h2><p class="empty">No model was checked.</p></section>'
    rows = []
    for i, t in enumerate(report.targets):
        fw = t.framework + (f" {t.framework_version}" if t.framework_version else "")
        if t.synthetic_inputs:
            inputs = f"synthetic ({t.batch_size} samples)"
        elif t.batch_size > 0:
            inputs = f"batch of {t.batch_size}"
        else:  # a monitored run has no probe batch: describe the run instead
            inputs = describe_run(run) if run is not None else "–"
        notes = "<br>".join(esc(n) for n in t.notes)
        rows.append(
            f"<tr><td><a href=\"#target-{i}\">{esc(_target_name(t, i))}</a></td><td>{esc(t.model_class)}</td>"
            f'<td>{esc(fw)}</td><td class="num">{t.param_count:,}</td><td>{esc(inputs)}</td>'
            f"<td>{esc(t.loss or '–')}</td><td>{len(t.layers)}</td><td>{notes}</td></tr>"
        )
    return ('<section id="models"><h2>Models checked</h2><table><thead><tr><th>model</th><th>class</th>'
            "<th>framework</th><th>parameters</th><th>inputs</th><th>loss</th><th>layers</th><th>notes</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")


def _filters(report: Report) -> str:
    if not report.findings:
        return ""
    out = ['<div class="filters">Show: ']
    for sev in SEVERITIES:
        n = report.count(sev)
        out.append(f'<button type="button" data-sev="{sev}" aria-pressed="true">{sev} ({n})</button>')
    out.append("</div>")
    return "".join(out)


def _findings_list(findings: Sequence[Finding], report: Report, layer_ids: LayerIds) -> str:
    if not findings:
        return '<p class="empty">No problems found.</p>'
    index = {id(f): i for i, f in enumerate(report.findings)}
    return "".join(_finding(f, index[id(f)], layer_ids) for f in findings)


def _orphan_findings(report: Report, layer_ids: LayerIds) -> str:
    """Findings that belong to no checked model (or all of them when none was checked)."""
    mine = {id(f) for t in report.targets for f in report.findings if _belongs(f, t, report)}
    rest = [f for f in report.findings if id(f) not in mine]
    if report.targets and not rest:
        return ""
    title = "Other findings" if report.targets else "Findings"
    return f'<section id="findings"><h2>{title}</h2>{_findings_list(rest, report, layer_ids)}</section>'


LayerIds = Mapping[tuple[Any, str], str]


def _layer_ids(report: Report) -> dict[tuple[Any, str], str]:
    ids: dict[tuple[Any, str], str] = {}
    for ti, t in enumerate(report.targets):
        for li, row in enumerate(t.layers):
            ids.setdefault((t.file, str(row.get("layer"))), f"t{ti}-l{li}")
    return ids


def _finding(f: Finding, i: int, layer_ids: LayerIds) -> str:
    sev = str(f.severity)
    where = []
    if f.layer:
        lid = layer_ids.get((f.file, f.layer))
        if lid is None and len({k[0] for k in layer_ids}) <= 1:
            lid = next((v for k, v in layer_ids.items() if k[1] == f.layer), None)
        name = f"<code>{esc(f.layer)}</code>"
        where.append(f'layer <a href="#{lid}">{name}</a>' if lid else f"layer {name}")
    if f.file:
        where.append(f"in <code>{esc(f.file)}</code>")
    if f.step is not None:
        where.append(f"at step {f.step}")
    parts = [
        f'<article class="finding sev-{sev}" id="finding-{i}" data-code="{esc(f.code)}" data-severity="{sev}"'
        + (f' data-layer="{esc(f.layer)}"' if f.layer else "") + ">",
        f'<header><span class="badge {sev}">{sev}</span><span class="code">{esc(f.code)}</span>'
        f'<span class="name">{esc(f.name)}</span><span class="where">{" ".join(where)}</span></header>',
        f'<p class="message">{esc(f.message)}</p>',
    ]
    ev = {k: v for k, v in f.evidence.items() if k != "suppressed_because"}
    if ev:
        parts.append(render_evidence(ev))
    if f.recommendation:
        parts.append(f'<p class="rec">Fix: {esc(f.recommendation)}</p>')
    if f.snippet:
        parts.append(f'<pre class="snippet"><code>{esc(f.snippet)}</code></pre>')
    if f.verification:
        parts.append(render_verification(f.verification))
    parts.append("</article>")
    return "".join(parts)


def _targets_section(report: Report, th: charts.Thresholds, layer_ids: LayerIds, run: Any = None) -> str:
    if not report.targets:
        return ""
    out = ['<section id="targets">']
    if len(report.targets) > 1:
        out.append('<div class="tabs" role="tablist">')
        for i, t in enumerate(report.targets):
            out.append(f'<button type="button" role="tab" data-target="{i}">{esc(_target_name(t, i))}</button>')
        out.append("</div>")
    for i, t in enumerate(report.targets):
        out.append(_target(report, t, i, th, layer_ids, run))
    out.append("</section>")
    return "".join(out)


def _flagged(findings: Iterable[Finding], *categories: Category) -> dict[str, list[str]]:
    """``{layer: [codes]}`` of the findings of ``categories`` (markers on a chart)."""
    out: dict[str, list[str]] = {}
    for f in findings:
        if f.layer and f.category in categories and f.code not in out.setdefault(f.layer, []):
            out[f.layer].append(f.code)
    return out


FIGURES = (
    ("gradient-flow", "Gradient flow",
     "gradient L2 norm per layer in execution order, log scale; bars under a reference line barely learn; "
     "▼ marks layers with a gradient finding"),
    ("activation-health", "Activation health", "fraction of dead (ReLU family) and saturated (sigmoid/tanh) units"),
    ("activation-scale", "Activation scale by depth", "standard deviation of each layer's output, log scale"),
    ("weight-scale", "Weight scale", "weight std per layer against the He and Xavier initialization references"),
)


#: What a monitored run records per sampled step (said where a chart has no data in a run).
RUN_RECORDS = ("the monitor records per-layer gradient and weight norms, update ratios, dead and saturated "
               "fractions and the learning rate")


def _target(report: Report, t: TargetInfo, i: int, th: charts.Thresholds, layer_ids: LayerIds,
            run: Any = None) -> str:
    rows = list(t.layers)
    mine = [f for f in report.findings if _belongs(f, t, report)]
    grads = _flagged(mine, Category.GRADIENTS)
    acts = _flagged(mine, Category.ACTIVATIONS)
    weights = _flagged(mine, Category.WEIGHTS)
    out = [f'<section class="target" id="target-{i}" data-target="{i}"><h2>{esc(_target_name(t, i))}'
           f'<span class="sub"> · {esc(t.model_class)} · {_plural(len(rows), "layer")} · '
           f'{_plural(len(mine), "finding")}</span></h2>']
    def measured(*keys: str) -> bool:
        return any(r.get(k) is not None for r in rows for k in keys)

    have = {
        "gradient-flow": measured("grad_norm"),
        "activation-health": measured("dead_frac", "saturated_frac"),
        "activation-scale": measured("act_std"),
        "weight-scale": measured("weight_std"),
    }
    draw = {
        "gradient-flow": lambda: charts.gradient_flow(rows, grads, th),
        "activation-health": lambda: charts.activation_health(rows, acts, th),
        "activation-scale": lambda: charts.activation_scale(rows, acts),
        "weight-scale": lambda: charts.weight_scale(rows, weights, th),
    }
    subs = {}
    if run is not None and not have["activation-health"]:
        latest = latest_activations(run)
        if latest is not None:  # the run's own activation samples (what ND607/ND610 follow)
            step, act_rows = latest
            acts = _flagged(mine, Category.ACTIVATIONS, Category.TRAINING)
            have["activation-health"] = True
            draw["activation-health"] = lambda: charts.activation_health(act_rows, acts, th)
            subs["activation-health"] = (f"fraction of dead (ReLU family) and saturated (sigmoid/tanh) units per "
                                         f"activation layer at step {step:,}, the latest sampled step "
                                         f"(sampled every {int(run.every)} steps)")
    for key, caption, sub in FIGURES:
        if not have[key]:
            why = "not measured for this model"
            if run is not None:
                why = ("not recorded in this run: no sampled step measured an activation layer (ReLU family, "
                       "sigmoid/tanh)" if key == "activation-health" else
                       f"not recorded in a monitored run ({RUN_RECORDS})")
                note = next((n for n in getattr(run, "notes", ()) if key == "activation-health" and "activation" in n),
                            None)
                why += f"; {note}" if note else ""
            out.append(f'<p class="empty" data-missing-chart="{key}">{esc(caption)}: {esc(why)}.</p>')
            continue
        sub = subs.get(key, sub)
        out.append(f'<figure data-figure="{key}"><figcaption>{esc(caption)} <span>{esc(sub)}</span></figcaption>'
                   f"{draw[key]()}</figure>")
    if rows:
        out.append(_layer_table(rows, i))
    out.append(f"<h3>Findings ({len(mine)})</h3>")
    out.append(_findings_list(mine, report, layer_ids))
    if t.rules_passed:
        out.append('<p class="passed">Rules passed: '
                   + ", ".join(f"<code>{esc(c)}</code>" for c in t.rules_passed) + "</p>")
    if t.skipped:
        out.append("<h3>Skipped rules</h3><ul>" + "".join(
            f"<li><b>{esc(s.code)}</b> {esc(s.name)}{esc(f' ({s.part})' if s.part else '')}: {esc(s.reason)}</li>" for s in t.skipped) + "</ul>")
    out.append("</section>")
    return "".join(out)


def _layer_table(rows: Sequence[Mapping[str, Any]], ti: int) -> str:
    cols = [c for c in LAYER_COLUMNS if any(c[0] in r for r in rows)]
    head = "<th>#</th><th>layer</th>" + "".join(f"<th>{esc(title)}</th>" for _, title, _ in cols)
    body = []
    for li, r in enumerate(rows):
        cells = "".join(
            f'<td class="num" data-key="{k}" data-value="{num_attr(r[k])}">{_cell(r[k], k.endswith("_frac"))}</td>'
            if num and k in r else f"<td>{esc(r.get(k, ''))}</td>"
            for k, _, num in cols
        )
        name = str(r.get("layer", li))
        body.append(f'<tr id="t{ti}-l{li}" data-layer="{esc(name)}"><td class="num">{li}</td>'
                    f"<td><code>{esc(name)}</code></td>{cells}</tr>")
    return (f'<details class="layer-table"><summary>Layer table ({len(rows)} layers)</summary>'
            f'<table class="layers"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></details>')


def _history_section(hist: Any, findings: Sequence[Finding], run: Any = None) -> str:
    out = ['<section id="history"><h2>Training run</h2>']
    charts_ = history_charts(hist, findings)
    trend = unit_trend(run, findings) if run is not None else None
    if trend is not None:
        charts_.append(("Dead and saturated units", "fraction of each activation layer's units per sampled step "
                        "(ReLU family: dead; sigmoid/tanh: saturated), the series ND607 and ND610 follow", trend))
    for caption, sub, svg in charts_:
        out.append(f'<figure data-figure="{esc(caption.lower().replace(" ", "-"))}"><figcaption>{esc(caption)} '
                   f'<span>{esc(sub)}</span></figcaption>{svg}</figure>')
    out.append("</section>")
    return "".join(out)


def _other_section(report: Report) -> str:
    out = []
    if report.errors:
        out.append('<section id="load-errors"><h2>Could not check</h2><ul>' + "".join(
            f"<li><code>{esc(e.file)}</code>: {esc(e.message)}</li>" for e in report.errors) + "</ul></section>")
    if report.suppressed:
        items = "".join(
            f"<li><b>{esc(f.code)}</b> {esc(f.name)}{' on <code>' + esc(f.layer) + '</code>' if f.layer else ''}: "
            f"{esc(f.evidence.get('suppressed_because', ''))}</li>" for f in report.suppressed)
        out.append(f'<section id="suppressed"><h2>Suppressed ({len(report.suppressed)})</h2><ul>{items}</ul></section>')
    if report.rules_run:
        out.append('<section id="rules"><h2>Rules run</h2><p>'
                   + ", ".join(f"<code>{esc(c)}</code>" for c in report.rules_run) + "</p></section>")
    return "\n".join(out)
