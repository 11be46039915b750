"""HTML reporter on hand-built reports (no framework, no browser): content, numbers, safety."""

from __future__ import annotations

import math
import re
import time
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from netdoctor.findings import Category, Finding, Report, Severity, SkippedRule, TargetInfo
from netdoctor.reporters import gradient_bars
from netdoctor.reporters.html.charts import Thresholds
from netdoctor.reporters.html.demo import demo_history, demo_report
from netdoctor.reporters.html.history import normalize_history
from netdoctor.reporters.html import render

NASTY = 'enc<b>&"x\'</script><script id="pwned">1</script>'


class Elements(HTMLParser):
    """Every start tag as ``(tag, attrs, index of the enclosing svg.chart or None)``."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, dict[str, str], int | None]] = []
        self.charts: list[dict[str, str]] = []
        self._svg: int | None = None
        self._depth = 0
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg" and "chart" in a.get("class", "").split():
            self.charts.append(a)
            self._svg = len(self.charts) - 1
        self.items.append((tag, a, self._svg))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def chart(self, name: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
        idx = [i for i, c in enumerate(self.charts) if c.get("data-chart") == name]
        assert len(idx) == 1, f"expected one {name} chart, found {len(idx)}"
        return self.charts[idx[0]], [(t, a) for t, a, s in self.items if s == idx[0]]

    def marks(self, name: str, cls: str = "bar") -> list[dict[str, str]]:
        _, items = self.chart(name)
        return [a for _, a in items if cls in a.get("class", "").split()]

    def with_class(self, cls: str) -> list[dict[str, str]]:
        return [a for _, a, _ in self.items if cls in a.get("class", "").split()]


def _row(name: str, **kw: Any) -> dict[str, Any]:
    return {"layer": name, "type": "Linear", "kind": "linear", **kw}


def small_report(**finding_kw: Any) -> Report:
    rows = (
        _row(NASTY, weight_norm=2.0, grad_norm=3e-9, grad_to_weight=1.5e-9, act_std=0.8, weight_std=0.5,
             fan_in=8, fan_out=16),
        {"layer": "fc1/relu", "type": "ReLU", "kind": "activation", "act_std": 0.4, "dead_frac": 0.625},
        _row("fc2", weight_norm=1.0, grad_norm=0.0, grad_to_weight=0.0, act_std=0.0, weight_std=0.1,
             fan_in=16, fan_out=4),
        {"layer": "fc2/tanh", "type": "tanh", "kind": "activation", "act_std": 0.99, "saturated_frac": 0.75},
        _row("head", weight_norm=0.5, grad_norm=float("nan"), grad_to_weight=float("nan"), act_std=1.3,
             weight_std=0.2, fan_in=4, fan_out=2),
        _row("big", weight_norm=0.1, grad_norm=50.0, grad_to_weight=500.0, weight_std=0.05, fan_in=4, fan_out=3),
    )
    target = TargetInfo(file="model.py", framework="torch", framework_version="2.13.0", model_class="Net",
                        param_count=1234, batch_size=32, loss="CrossEntropyLoss", layers=rows,
                        rules_passed=("ND101",), skipped=(SkippedRule("ND601", "nonfinite-loss", "no history"),))
    first: dict[str, Any] = dict(
        code="ND301", name="vanishing-gradients", severity=Severity.ERROR, category=Category.GRADIENTS,
        message="gradient norm 3e-09 in the first layer (limit 1e-7)", layer=NASTY, file="model.py",
        recommendation="Use He initialization.", snippet="nn.init.kaiming_normal_(m.weight)  # <tag> & more",
        evidence={"grad_norm": 3e-9, "limit": 1e-7})
    first.update(finding_kw)
    findings = (
        Finding(**first),
        Finding(code="ND401", name="dead-units", severity=Severity.WARNING, category=Category.ACTIVATIONS,
                message="62% of units never fired", layer="fc1/relu", file="model.py"),
        Finding(code="ND504", name="bias-before-batchnorm", severity=Severity.INFO, category=Category.STRUCTURE,
                message="bias before BN", layer="fc2", file="model.py"),
    )
    return Report(findings=findings, targets=(target,), rules_run=("ND101", "ND301", "ND401", "ND504"),
                  timings={"collect": 0.5, "rules": 0.01, "total": 0.51})


# -- self-contained and safe --------------------------------------------------------
def test_page_is_self_contained() -> None:
    report, hist = demo_report()
    page = render(report, history=hist)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert "@import" not in page and "url(" not in page
    doc = Elements(page)
    for _, attrs, _ in doc.items:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith("#"), f"{key}={attrs[key]!r} leaves the page"
    assert sum(1 for t, _, _ in doc.items if t == "script") == 1
    assert sum(1 for t, _, _ in doc.items if t == "style") == 1


def test_layer_names_and_snippets_are_escaped() -> None:
    page = render(small_report())
    assert "<script id=\"pwned\">" not in page and '<b>&"x' not in page
    doc = Elements(page)
    assert sum(1 for t, _, _ in doc.items if t == "script") == 1
    assert not [a for _, a, _ in doc.items if a.get("id") == "pwned"]
    # attributes round-trip to the exact name
    assert NASTY in [a["data-layer"] for a in doc.marks("gradient-flow")]
    assert [a for a in doc.with_class("finding") if a.get("data-layer") == NASTY]
    assert "nn.init.kaiming_normal_(m.weight)  # &lt;tag&gt; &amp; more" in page
    assert re.search(r'<pre class="snippet"><code>nn\.init\.kaiming_normal_', page)


# -- charts hold the report's numbers ------------------------------------------------
def test_gradient_flow_bars_match_layers_in_order() -> None:
    report, _ = demo_report()
    rows = [r for r in report.targets[0].layers if "grad_norm" in r]
    doc = Elements(render(report))
    svg, _ = doc.chart("gradient-flow")
    bars = doc.marks("gradient-flow")
    assert int(svg["data-count"]) == len(bars) == len(rows) > 50
    assert [b["data-layer"] for b in bars] == [r["layer"] for r in rows]
    # the bars draw what ND301/ND302 judge: the relative gradient; the absolute norm rides along
    assert [float(b["data-value"]) for b in bars] == [r["grad_to_weight"] for r in rows]
    assert [float(b["data-grad"]) for b in bars] == [r["grad_norm"] for r in rows]


def test_gradient_flow_reference_lines_and_statuses() -> None:
    doc = Elements(render(small_report()))
    _, items = doc.chart("gradient-flow")
    refs = {a["data-ref"]: a for _, a in items if "data-ref" in a}
    th = Thresholds.from_rules()
    assert "vanishing-abs" not in refs  # an absolute floor has no place on a relative axis
    assert float(refs["vanishing-ratio"]["data-value"]) == th.vanishing_ratio  # ND301 min_relative
    assert float(refs["exploding-ratio"]["data-value"]) == th.exploding_ratio == 10.0  # ND302 max_relative
    assert float(refs["exploding-warn"]["data-value"]) == th.exploding_warn == 3.0  # ND302 warn_relative
    status = {b["data-layer"]: b["data-status"] for b in doc.marks("gradient-flow")}
    assert status == {NASTY: "low", "fc2": "zero", "head": "nonfinite", "big": "high"}
    nan_bar = [b for b in doc.marks("gradient-flow") if b["data-layer"] == "head"][0]
    assert math.isnan(float(nan_bar["data-grad"]))
    assert "ND302" in "".join(doc.text)
    # the finding on the first layer is marked on the gradient chart (gradient category only)
    flags = [a for t, a in doc.chart("gradient-flow")[1] if "flag" in a.get("class", "").split()]
    assert [(f["data-layer"], f["data-codes"]) for f in flags] == [(NASTY, "ND301")]


def test_thresholds_can_be_overridden_and_are_checked() -> None:
    doc = Elements(render(small_report(), thresholds={"vanishing_ratio": 1e-5}))
    refs = {a["data-ref"]: a for _, a in doc.chart("gradient-flow")[1] if "data-ref" in a}
    assert float(refs["vanishing-ratio"]["data-value"]) == 1e-5
    with pytest.raises(ValueError, match="vanishing_abz"):
        render(small_report(), thresholds={"vanishing_abz": 1.0})


def test_activation_charts() -> None:
    report = small_report()
    rows = report.targets[0].layers
    doc = Elements(render(report))
    health = doc.marks("activation-health")
    expected = [(r["layer"], m, r[m]) for r in rows for m in ("dead_frac", "saturated_frac") if m in r]
    assert [(b["data-layer"], b["data-metric"], float(b["data-value"])) for b in health] == expected
    assert int(doc.chart("activation-health")[0]["data-count"]) == 2
    assert all("over" in b["class"].split() for b in health)  # 62.5% and 75% exceed 50%
    points = doc.marks("activation-scale", "point")
    assert [(p["data-layer"], float(p["data-value"])) for p in points] == [
        (r["layer"], r["act_std"]) for r in rows if "act_std" in r]
    assert "zero" in points[2]["class"].split()  # act_std 0 cannot sit on a log axis


def test_weight_scale_against_he_and_xavier() -> None:
    report = small_report()
    rows = [r for r in report.targets[0].layers if "weight_std" in r]
    doc = Elements(render(report))
    bars = doc.marks("weight-scale")
    assert len(bars) == len(rows) == int(doc.chart("weight-scale")[0]["data-count"])
    for bar, row in zip(bars, rows):
        assert float(bar["data-value"]) == row["weight_std"]
        assert float(bar["data-he"]) == pytest.approx(math.sqrt(2 / row["fan_in"]))
        assert float(bar["data-xavier"]) == pytest.approx(math.sqrt(2 / (row["fan_in"] + row["fan_out"])))
    refs = {a.get("data-ref") for _, a in doc.chart("weight-scale")[1]}
    assert {"he", "xavier"} <= refs


def test_layer_table_lists_every_row() -> None:
    report, _ = demo_report()
    doc = Elements(render(report))
    trs = [a for t, a, _ in doc.items if t == "tr" and "data-layer" in a]
    assert [a["data-layer"] for a in trs] == [r["layer"] for r in report.targets[0].layers]


# -- findings, verification, summary --------------------------------------------------
def test_every_finding_with_fix_and_summary_counts() -> None:
    report = small_report()
    page = render(report)
    doc = Elements(page)
    arts = doc.with_class("finding")
    assert [(a["data-code"], a["data-severity"]) for a in arts] == [(f.code, str(f.severity)) for f in report.findings]
    assert "Fix: Use He initialization." in page
    cards = {a["data-count-of"]: a for a in doc.with_class("card") if "data-count-of" in a}
    assert {"errors", "warnings", "info", "rules-passed", "rules-run", "models-checked"} <= set(cards)
    assert "1 error, 1 warning, 1 info, 1 rules passed in 0.51s" in page
    text = "".join(doc.text)
    timing = {a["data-timing"] for _, a, _ in doc.items if "data-timing" in a}
    assert timing == {"total", "collect", "rules"} and "collect 0.50s" in text and "0.51s" in text
    assert "ND601" in text and "no history" in text  # skipped rule with its reason
    assert "CrossEntropyLoss" in text and "1,234" in text


def test_verification_before_after_and_verdict() -> None:
    good = {"verdict": "fixed", "before": {"grad_norm": 3e-9, "dead_frac": 0.62},
            "after": {"grad_norm": 0.004, "dead_frac": 0.05}, "method": "re-probe"}
    doc = Elements(render(small_report(verification=good)))
    [box] = doc.with_class("verification")
    assert box["data-tone"] == "good" and box["data-verdict"] == "fixed"
    deltas = [(a["data-metric"], float(a["data-before"]), float(a["data-after"])) for a in doc.with_class("delta")]
    assert deltas == [("grad_norm", 3e-9, 0.004), ("dead_frac", 0.62, 0.05)]
    assert "re-probe" in "".join(doc.text) and "→" in "".join(doc.text)

    bad = {"fixed": False, "grad_norm_before": 1e-9, "grad_norm_after": 2e-9}
    doc = Elements(render(small_report(verification=bad)))
    [box] = doc.with_class("verification")
    assert box["data-tone"] == "bad" and box["data-verdict"] == "not fixed"
    assert [(a["data-metric"], float(a["data-after"])) for a in doc.with_class("delta")] == [("grad_norm", 2e-9)]
    nested = {"status": "still vanishing", "grad_norm": {"before": 1.0, "after": 1.0}}
    doc = Elements(render(small_report(verification=nested)))
    assert doc.with_class("verification")[0]["data-tone"] == "bad"
    assert doc.with_class("delta")[0]["data-metric"] == "grad_norm"


def test_evidence_scalars_inline_and_long_mappings_folded() -> None:
    per_layer = {f"layer{i}": 1.5 * i for i in range(60)}
    doc = Elements(render(small_report(evidence={"grad_norms": per_layer, "limit": 3.0, "worst": "layer59"})))
    dds = {a["data-key"]: a for t, a, _ in doc.items if t == "dd"}
    assert float(dds["limit"]["data-value"]) == 3.0 and "worst" in dds and "grad_norms" not in dds
    [folded] = [a for t, a, _ in doc.items if t == "details" and "ev-long" in a.get("class", "")]
    assert folded["data-key"] == "grad_norms"
    text = "".join(doc.text)
    assert "(60 values:" in text and "layer59: 88.5" in text


def test_numpy_values_in_evidence_and_verification() -> None:
    ev = {"ratio": np.float64(1.5), "units": np.int64(7), "per_unit": np.arange(3.0), "pair": (np.float32(0.5), 2)}
    ver = {"verdict": "improved", "before": {"grad_norm": np.float64(1e-9)}, "after": {"grad_norm": np.float32(0.5)}}
    doc = Elements(render(small_report(evidence=ev, verification=ver)))
    dds = {a["data-key"]: a for t, a, _ in doc.items if t == "dd"}
    assert float(dds["ratio"]["data-value"]) == 1.5 and int(dds["units"]["data-value"]) == 7
    assert "[0, 1, 2]" in "".join(doc.text)
    [delta] = doc.with_class("delta")
    assert (float(delta["data-before"]), float(delta["data-after"])) == (1e-9, 0.5)


def test_empty_reports_render() -> None:
    page = render(Report())
    assert "No model was checked" in page and "No problems found" in page
    assert 'class="chart"' not in page
    bare = Report(targets=(TargetInfo(file=None, framework="keras"),))
    doc = Elements(render(bare))
    assert not doc.charts
    missing = {a["data-missing-chart"] for a in doc.with_class("empty") if "data-missing-chart" in a}
    assert missing == {"gradient-flow", "activation-health", "activation-scale", "weight-scale"}


def test_several_targets_get_tabs_and_orphans_are_kept() -> None:
    one = small_report()
    two = Report(targets=(TargetInfo(file="other.py", framework="keras", layers=one.targets[0].layers),),
                 findings=(Finding(code="ND103", name="constant-feature", severity=Severity.INFO,
                                   category=Category.DATA, message="feature 3 is constant", file="other.py"),))
    stray = Report(findings=(Finding(code="ND102", name="nonfinite-inputs", severity=Severity.ERROR,
                                     category=Category.DATA, message="NaN in x", file="elsewhere.py"),))
    doc = Elements(render(Report.merge([one, two, stray])))
    assert len([a for t, a, _ in doc.items if t == "button" and a.get("role") == "tab"]) == 2
    assert len([c for c in doc.charts if c["data-chart"] == "gradient-flow"]) == 2
    assert "Other findings" in "".join(doc.text) and "NaN in x" in "".join(doc.text)


# -- history -------------------------------------------------------------------------
def test_history_curves_with_finding_steps() -> None:
    report, hist = demo_report()
    doc = Elements(render(report, history=hist))
    loss_svg, items = doc.chart("loss-curve")
    n = len(hist["loss"])
    finite = [v for v in hist["loss"] if math.isfinite(v)]
    assert int(loss_svg["data-count"]) == n
    assert int(loss_svg["data-nonfinite"]) == n - len(finite)
    points = [a for _, a in items if "point" in a.get("class", "").split()]
    assert [float(p["data-value"]) for p in points] == finite
    events = {int(a["data-step"]): a["data-code"] for _, a in items if "event" in a.get("class", "").split()}
    assert events == {f.step: f.code for f in report.findings if f.step is not None}
    bands = [a for _, a in items if "nonfinite" in a.get("class", "").split() and "data-from" in a]
    assert [(int(b["data-from"]), int(b["data-to"])) for b in bands] == [(260, n - 1)]
    gn_svg, _ = doc.chart("grad-norm-curve")
    assert float(gn_svg["data-max"]) == max(v for v in hist["grad_norm"] if math.isfinite(v))


def test_long_history_is_reduced_but_keeps_spikes() -> None:
    hist = demo_history(steps=20000, nan_at=None)
    t0 = time.perf_counter()
    page = render(Report(), history=hist)
    assert time.perf_counter() - t0 < 1.0
    assert len(page.encode()) < 400_000
    doc = Elements(page)
    svg, items = doc.chart("grad-norm-curve")
    assert int(svg["data-count"]) == 20000 and int(svg["data-drawn"]) <= 1000
    assert not [a for _, a in items if "point" in a.get("class", "").split()]
    assert float(svg["data-max"]) == max(hist["grad_norm"])
    # the spikes survive the reduction: the highest drawn point is the largest value
    from netdoctor.reporters.html.svg import linear_domain

    lo, hi = linear_domain(hist["grad_norm"])
    top, bottom = 40.0, 220.0
    spike_y = bottom - (max(hist["grad_norm"]) - lo) / (hi - lo) * (bottom - top)
    ys = [float(p.split(",")[1]) for _, a in items if a.get("points") for p in a["points"].split()]
    assert min(ys) == pytest.approx(spike_y, abs=0.1)
    assert sum(1 for y in ys if y < top + 40) >= 200  # all ~206 spikes (one per 97 steps) are drawn


@pytest.mark.parametrize("form", ["mapping", "object", "records", "to_dict", "array"])
def test_history_forms(form: str) -> None:
    base = {"steps": [0, 10, 20], "loss": [1.0, 0.5, 0.25], "grad_norm": [2.0, 1.0, 0.5]}

    class Obj:
        steps, loss, grad_norm = base["steps"], base["loss"], base["grad_norm"]

    class Dictish:
        def to_dict(self) -> dict[str, Any]:
            return base

    value: Any = {
        "mapping": base,
        "object": Obj(),
        "records": [{"step": s, "loss": l, "grad_norm": g} for s, l, g in zip(*base.values())],
        "to_dict": Dictish(),
        "array": {k: np.asarray(v) for k, v in base.items()},
    }[form]
    assert normalize_history(value) == {"loss": ([0, 10, 20], [1.0, 0.5, 0.25]),
                                        "grad_norm": ([0, 10, 20], [2.0, 1.0, 0.5])}
    assert normalize_history({"loss": [3.0, 2.0]}) == {"loss": ([0, 1], [3.0, 2.0])}
    assert normalize_history({"loss": [3.0, 2.0], "grad_norm": [1.0], "grad_norm_steps": [5]}) == {
        "loss": ([0, 1], [3.0, 2.0]), "grad_norm": ([5], [1.0])}
    assert normalize_history(None) is None and normalize_history({}) is None


def test_monitor_history_object() -> None:
    """The monitor's History: loss of every step, gradient norm on the sampled steps only."""
    from netdoctor.history import HistoryRecorder, Sample

    rec = HistoryRecorder(every=5)
    rec.add_losses(0, [2.0 - 0.01 * i for i in range(30)] + [float("nan")] * 3)
    for step in range(0, 33, 5):
        rec.add_sample(Sample(step=step, grad_norm=1.0 / (step + 1)))
    hist = rec.view()
    norm = normalize_history(hist)
    assert norm is not None
    assert norm["loss"][0] == list(range(33)) and math.isnan(norm["loss"][1][-1])
    assert norm["grad_norm"] == (list(range(0, 33, 5)), [1.0 / (s + 1) for s in range(0, 33, 5)])
    fired = Finding(code="ND601", name="nonfinite-loss", severity=Severity.ERROR, category=Category.TRAINING,
                    message="loss became NaN at step 30", step=30)
    doc = Elements(render(Report(findings=(fired,)), history=hist))
    loss_svg, items = doc.chart("loss-curve")
    assert int(loss_svg["data-count"]) == 33 and int(loss_svg["data-nonfinite"]) == 3
    assert [a["data-step"] for _, a in items if "event" in a.get("class", "").split()] == ["30"]
    grad_svg, _ = doc.chart("grad-norm-curve")
    assert len(doc.marks("grad-norm-curve", "point")) == int(grad_svg["data-count"]) == 7


# -- size, speed, to_html ----------------------------------------------------------------
def test_resnet50_sized_report_is_small_and_fast(tmp_path: Any) -> None:
    report, hist = demo_report(n_findings=60)
    t0 = time.perf_counter()
    text = report.to_html(tmp_path / "r.html", history=hist)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == text
    assert len(text.encode()) < 1_000_000
    assert report.to_html(history=hist) == text


def test_layer_health_rows_carry_weight_std_and_fans() -> None:
    from netdoctor.analysis.health import layer_health
    from netdoctor.snapshot import LayerRecord, ModelSnapshot, ParamRecord, TensorStats

    w = np.random.default_rng(0).normal(0, 0.1, size=(4, 8))
    rec = LayerRecord(name="fc", type_name="Linear", kind="linear", params=(
        ParamRecord(name="weight", role="weight", stats=TensorStats.from_array(w), fan_in=8, fan_out=4,
                    grad=TensorStats.from_array(w * 1e-3)),))
    [row] = layer_health(ModelSnapshot(framework="torch", layers=(rec,)))
    assert row["weight_std"] == pytest.approx(float(w.std()))
    assert (row["fan_in"], row["fan_out"]) == (8, 4)
    # a record that only knows the norm (as the monitor builds them) gets no made-up std
    norm_only = LayerRecord(name="fc", type_name="linear", kind="linear",
                            params=(ParamRecord(name="weight", role="weight", stats=TensorStats(shape=(), l2=3.0)),))
    [row] = layer_health(ModelSnapshot(framework="torch", layers=(norm_only,)))
    assert row["weight_norm"] == 3.0 and "weight_std" not in row and "fan_in" not in row


# -- terminal gradient bars ------------------------------------------------------------
def test_gradient_bars_plain_and_markup() -> None:
    target = small_report().targets[0]
    rows = [r for r in target.layers if "grad_norm" in r]
    plain = gradient_bars.gradient_flow_lines(target, width=20, markup=False)
    assert len(plain) == 1 + len(rows) and "log scale" in plain[0]
    assert "[" not in "".join(plain[1:]).replace(NASTY, "")
    by_name = {r["layer"]: line for r, line in zip(rows, plain[1:])}
    assert by_name["fc2"].endswith("no gradient") and by_name["head"].endswith("non-finite")
    assert "vanishing" in by_name[NASTY] and "exploding" in by_name["big"]
    # the bar of the larger gradient is longer
    assert by_name["big"].count("█") > by_name[NASTY].count("█")
    marked = gradient_bars.gradient_flow_lines(TargetInfo(file=None, framework="torch", layers=(
        _row("[bold]x", weight_norm=1.0, grad_norm=0.1, grad_to_weight=0.1),)))
    from rich.text import Text

    assert "[bold]x" in Text.from_markup(marked[1]).plain
    assert gradient_bars.gradient_flow_lines(TargetInfo(file=None, framework="torch")) == []


def test_gradient_bars_compact_for_deep_models() -> None:
    report, _ = demo_report()
    rows = [r for r in report.targets[0].layers if "grad_norm" in r]
    lines = gradient_bars.gradient_flow_lines(report.targets[0], markup=False, max_rows=12)
    shown = [ln for ln in lines[1:] if "█" in ln or "·" in ln]
    assert len(shown) == 12 < len(rows)
    assert "of 54 layers shown" in lines[-1]
    from netdoctor.reporters import render as render_format

    text = render_format("gradient_bars", report)
    assert text.count("\n") >= len(rows) + 1


def test_text_reporter_includes_gradient_bars_on_request() -> None:
    from netdoctor.reporters import render as render_format

    report = small_report()
    with_bars = render_format("text", report, gradient_flow=True)
    assert "Gradient flow" in with_bars and "no gradient" in with_bars and "█" in with_bars
    assert "Gradient flow" not in render_format("text", report)


def test_report_read_back_from_json_renders() -> None:
    """Rows as JSON gives them back: NaN as the string "nan", missing values as None."""
    import json

    data = json.loads(json.dumps(small_report().to_dict()))
    rows = [dict(r) for r in data["targets"][0]["layers"]]
    rows.append({"layer": "unmeasured", "type": "Linear", "kind": "linear", "grad_norm": None, "act_std": None})
    report = Report(targets=(TargetInfo(file="m.py", framework="torch", layers=tuple(rows)),))
    doc = Elements(render(report))
    bars = doc.marks("gradient-flow")
    assert len(bars) == sum(1 for r in rows if r.get("grad_norm") is not None) == 4
    assert "unmeasured" not in [b["data-layer"] for b in bars]
    assert [b["data-status"] for b in bars if b["data-layer"] == "head"] == ["nonfinite"]
    assert len(doc.marks("activation-scale", "point")) == sum(1 for r in rows if r.get("act_std") is not None)


def test_charts_agree_with_the_rules_on_real_models() -> None:
    """Issue 16: a layer ND301 flags is drawn as vanishing on the gradient chart (the chart draws the
    relative gradient the rule judges), and the weight chart colours a layer only where ND203 does."""
    torch = pytest.importorskip("torch")
    from torch import nn

    import netdoctor

    torch.manual_seed(0)
    layers: list = []
    for i in range(10):
        layers += [nn.Linear(2 if i == 0 else 5, 5), nn.Sigmoid()]
    model = nn.Sequential(*layers, nn.Linear(5, 1), nn.Sigmoid())
    x = torch.rand(256, 2) * 2 - 1
    y = (x.pow(2).sum(1, keepdim=True) < 0.5).float()
    report = netdoctor.check(model, x, y, loss_fn=nn.BCELoss())
    doc = Elements(render(report))
    flagged = {f.layer for f in report.findings if f.code == "ND301"}
    assert flagged
    status = {b["data-layer"]: b["data-status"] for b in doc.marks("gradient-flow")}
    assert all(status[name] == "low" for name in flagged if name in status)
    nd203 = {f.layer for f in report.findings if f.code == "ND203"}
    far = {b["data-layer"] for b in doc.marks("weight-scale") if "far" in b["class"].split()}
    assert far <= nd203


# -- --verify diff, scoped stylesheet ---------------------------------------------------
def test_verify_diff_keeps_its_lines_in_pre() -> None:
    import html as _html

    diff = ("--- model.py\n+++ model.py (fixed)\n@@ -3,2 +3,2 @@\n-        nn.Sigmoid(),\n"
            "+        nn.ReLU(),  # <fix> & 'more'\n")
    page = render(small_report(verification={"verdict": "fixed", "diff": diff, "method": "re-probe"}))
    blocks = re.findall(r'<div class="ev-text" data-key="diff"><span>diff</span><pre><code>(.*?)</code></pre></div>',
                        page, re.S)
    assert len(blocks) == 1 and _html.unescape(blocks[0]) == diff  # every newline kept, markup escaped
    assert "<fix>" not in page and "&lt;fix&gt;" in blocks[0]
    doc = Elements(page)
    assert "diff" not in [a.get("data-key") for t, a, _ in doc.items if t == "dd"]  # not run together in a <dd>
    assert "method" in [a.get("data-key") for t, a, _ in doc.items if t == "dd"]  # one-line values stay inline


def _selectors(css: str) -> list[str]:
    """Every selector of a stylesheet (at-rule preludes left out), comments stripped."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out = []
    for head in re.findall(r"([^{}]+)\{", css):
        head = head.strip()
        if not head.startswith("@"):
            out.extend(s.strip() for s in head.split(","))
    return out


@pytest.mark.parametrize("fragment", [False, True])
def test_stylesheet_is_scoped_to_the_report_root(fragment: bool) -> None:
    report, hist = demo_report(n_findings=5)
    page = render(report, history=hist, fragment=fragment)
    [css] = re.findall(r"<style>(.*?)</style>", page, re.S)
    sels = _selectors(css)
    assert len(sels) > 100
    unscoped = [s for s in sels if not re.match(r"\.netdoctor-report(?![\w-])", s)]
    assert unscoped == []
    for s in sels:  # no rule reaches the host page: no body/html/:root/bare element or * at the start
        assert not re.match(r"(body|html|:root|\*|table|td|th|pre|code|h\d|main|figure)\b", s), s
    assert '<div class="netdoctor-report"' in page
    if fragment:
        assert not re.search(r"<(html|head|body)\b", page) and page.startswith('<div class="netdoctor-report"')
    # the emitted stylesheet still styles the report: one rule per old global rule, now under the root
    assert ".netdoctor-report table{" in css and ".netdoctor-report,.netdoctor-report *{box-sizing:border-box}" in css
