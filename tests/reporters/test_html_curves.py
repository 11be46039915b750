"""Training-run curves of the HTML report: step ticks, smoothing, learning rate, validation loss,
and the layout of the finding labels (measured in a real browser in test_html_layout_browser.py)."""

from __future__ import annotations

import math
import random
import re
import statistics

import pytest

from netdoctor.findings import Category, Finding, Report, Severity
from netdoctor.history import HistoryRecorder, Sample
from netdoctor.reporters.html import render
from netdoctor.reporters.html.history import ema
from netdoctor.reporters.html.labels import text_width
from netdoctor.reporters.html.svg import step_label, step_ticks

from test_html import Elements


def _finding(code: str, step: int, sev: Severity = Severity.WARNING) -> Finding:
    return Finding(code=code, name="x", severity=sev, category=Category.TRAINING, message=f"{code} at {step}",
                   step=step)


def _noisy(n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [2.0 * math.exp(-s / (n / 4)) + 0.5 + rng.uniform(-0.3, 0.3) for s in range(n)]


# -- step ticks -------------------------------------------------------------------------------
@pytest.mark.parametrize(("lo", "hi", "want"), [
    (0, 1199, [0, 200, 400, 600, 800, 1000]),
    (0, 9, [0, 2, 4, 6, 8]),
    (0, 3, [0, 1, 2, 3]),
    (100, 25_000, [5000, 10_000, 15_000, 20_000, 25_000]),
    (0, 2_400_000, [0, 500_000, 1_000_000, 1_500_000, 2_000_000]),
])
def test_step_ticks_are_integers_at_nice_spacings(lo: int, hi: int, want: list[int]) -> None:
    ticks = step_ticks(lo, hi)
    assert ticks == want
    gaps = {b - a for a, b in zip(ticks, ticks[1:])}
    assert len(gaps) <= 1 and all(isinstance(t, int) for t in ticks)
    (gap,) = gaps or {1}
    assert gap / 10 ** math.floor(math.log10(gap)) in (1, 2, 5)


def test_step_labels_are_short_and_never_scientific() -> None:
    assert [step_label(s) for s in (0, 5, 950, 1000, 2500, 12_000, 125_000, 1_500_000, 2 * 10 ** 9)] == [
        "0", "5", "950", "1k", "2.5k", "12k", "125k", "1.5M", "2G"]
    assert step_label(10 ** 18) == "1e18" and step_label(2 * 10 ** 16) == "2e16"  # damaged logs only


@pytest.mark.parametrize("n", [1200, 25_000])
def test_curve_ticks_on_the_page_read_as_steps(n: int) -> None:
    doc = Elements(render(Report(), history={"loss": _noisy(n), "grad_norm": _noisy(n, 1)}))
    for chart in ("loss-curve", "grad-norm-curve"):
        _, items = doc.chart(chart)
        ticks = [a for t, a in items if "step-tick" in a.get("class", "").split()]
        assert len(ticks) >= 4
        steps = [int(a["data-step"]) for a in ticks]
        assert steps == step_ticks(0, n - 1)
    page = render(Report(), history={"loss": _noisy(n)})
    tick_text = re.findall(r'class="tick step-tick"[^>]*>([^<]*)<', page)
    assert tick_text and not [t for t in tick_text if "e+" in t or "e-" in t]
    assert "1k" in tick_text if n == 1200 else "5k" in tick_text


# -- smoothing --------------------------------------------------------------------------------
def test_ema_is_tensorboards_debiased_average() -> None:
    assert ema([1.0, 2.0], 0.5) == pytest.approx([1.0, (0.5 * 0.5 + 0.5 * 2.0) / (1 - 0.5 ** 2)])
    assert ema([3.0, 3.0, 3.0], 0.9) == pytest.approx([3.0, 3.0, 3.0])  # debiased: no pull toward 0
    out = ema([1.0, math.nan, 1.0], 0.6)
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == pytest.approx(1.0)


def _polyline_ys(items: list, cls: str) -> list[list[float]]:
    return [[float(p.split(",")[1]) for p in a["points"].split()] for t, a in items
            if t == "polyline" and cls in a.get("class", "").split()]


def test_loss_is_drawn_smoothed_over_the_faint_raw_values() -> None:
    n = 1500
    doc = Elements(render(Report(), history={"loss": _noisy(n)}))
    svg, items = doc.chart("loss-curve")
    weight = float(svg["data-smoothing"])
    assert 0.6 <= weight <= 0.99
    [raw], [smooth] = _polyline_ys(items, "raw"), _polyline_ys(items, "smooth")
    wiggle = lambda ys: statistics.fmean(abs(b - a) for a, b in zip(ys, ys[1:]))  # noqa: E731
    assert wiggle(smooth) < wiggle(raw) / 5  # the noise is smoothed away...
    assert abs(statistics.fmean(smooth) - statistics.fmean(raw)) < 5  # ...around the same level
    legend = [a for t, a in items if t == "g" and "curve-legend" in a.get("class", "")]
    assert len(legend) == 2
    # a gradient-norm curve (spikes matter) is not smoothed
    doc = Elements(render(Report(), history={"grad_norm": _noisy(n)}))
    svg, items = doc.chart("grad-norm-curve")
    assert "data-smoothing" not in svg and _polyline_ys(items, "smooth") == []


# -- learning rate, validation ----------------------------------------------------------------
def test_learning_rate_curve_from_the_monitor_samples() -> None:
    rec = HistoryRecorder(every=10)
    rec.add_losses(0, [1.0] * 100)
    lrs = [0.1 * 0.5 ** (s // 20) for s in range(0, 100, 10)]
    for s, lr in zip(range(0, 100, 10), lrs):
        rec.add_sample(Sample(step=s, grad_norm=1.0, lr=lr))
    doc = Elements(render(Report(), history=rec.view()))
    svg, _ = doc.chart("lr-curve")
    assert [float(p["data-value"]) for p in doc.marks("lr-curve", "point")] == lrs
    assert svg["data-scale"] == "log"  # 0.1 -> 0.00625 spans more than a decade
    rec = HistoryRecorder(every=10)
    rec.add_losses(0, [1.0] * 30)
    for s in (0, 10, 20):
        rec.add_sample(Sample(step=s, lr=0.01))
    doc = Elements(render(Report(), history=rec.view()))
    assert doc.chart("lr-curve")[0]["data-scale"] == "linear"
    rec = HistoryRecorder(every=10)  # no learning rate known: no chart
    rec.add_losses(0, [1.0] * 30)
    rec.add_sample(Sample(step=0, grad_norm=1.0))
    assert 'data-chart="lr-curve"' not in render(Report(), history=rec.view())


def test_validation_loss_is_drawn_on_the_loss_chart_when_recorded() -> None:
    loss = _noisy(500)
    val_steps, val = [99, 199, 299, 399, 499], [1.9, 1.2, 0.9, 0.85, 0.86]
    doc = Elements(render(Report(), history={"loss": loss, "val_loss": val, "val_loss_steps": val_steps}))
    svg, items = doc.chart("loss-curve")
    pts = [(int(a["data-step"]), float(a["data-value"])) for t, a in items if "val-point" in a.get("class", "")]
    assert pts == list(zip(val_steps, val)) and svg["data-overlay"] == "5"
    assert [a for t, a in items if t == "polyline" and "val" in a.get("class", "").split()]
    assert "with the validation loss" in "".join(doc.text)
    # validation only: its own chart
    doc = Elements(render(Report(), history={"val_loss": val, "val_loss_steps": val_steps}))
    assert int(doc.chart("val-loss-curve")[0]["data-count"]) == 5
    assert 'data-chart="val-loss-curve"' not in render(Report(), history={"loss": loss})


# -- finding labels ---------------------------------------------------------------------------
def _label_boxes(page: str, chart: str) -> list[tuple[float, float, int]]:
    """(left, right, row) of each label by the estimated width the layout used."""
    out = []
    for attrs, text in re.findall(r'<text (class="event-label[^>]*)>([^<]*)</text>', page):
        if not attrs:
            continue
        x = float(re.search(r' x="([\d.-]+)"', attrs).group(1))
        row = int(re.search(r'data-row="(\d+)"', attrs).group(1))
        w = text_width(text)
        out.append((x - w, x, row) if 'text-anchor="end"' in attrs else (x, x + w, row))
    return out


def test_labels_at_the_same_and_nearby_steps_merge_and_stack_without_overlap() -> None:
    steps = [100, 100, 100, 102, 105, 130, 140, 150, 500, 990, 995, 999]
    codes = ["ND602", "ND607", "ND610", "ND603", "ND604", "ND605", "ND606", "ND608", "ND609", "ND601", "ND611",
             "ND612"]
    findings = tuple(_finding(c, s) for c, s in zip(codes, steps))
    page = render(Report(findings=findings), history={"loss": _noisy(1000)})
    doc = Elements(page)
    svg, items = doc.chart("loss-curve")
    labels = [a for t, a in items if "event-label" in a.get("class", "").split()]
    by_steps = {a["data-steps"]: a["data-codes"].split() for a in labels}
    assert by_steps["100 102 105"] == ["ND602", "ND607", "ND610", "ND603", "ND604"]  # same and nearby steps
    assert sum(len(v) for v in by_steps.values()) == len(codes) and int(svg["data-labels-hidden"]) == 0
    assert "ND602, ND607, ND610, ND603 +1" in "".join(doc.text)  # long merged labels are summarized
    assert int(svg["data-label-rows"]) >= 2
    # one g.event line per step, each with every code of its step
    events = {a["data-step"]: a["data-code"] for t, a in items if "event" in a.get("class", "").split()}
    assert events["100"] == "ND602 ND607 ND610" and len(events) == len(set(steps))
    boxes = _label_boxes(page, "loss-curve")
    for i, a in enumerate(boxes):
        assert 0 <= a[0] and a[1] <= 960  # inside the chart (labels at the right edge flip left)
        for b in boxes[i + 1:]:
            assert a[2] != b[2] or a[1] <= b[0] or b[1] <= a[0], (a, b)
    # the plot moves down to make room for the rows: labels never sit inside the plot area
    top = min(float(a["y1"]) for t, a in items if t == "line" and a.get("y1") and a["x1"] == a["x2"]
              and float(a["y2"]) > float(a["y1"]))
    assert all(float(a["y"]) < top for a in labels)
