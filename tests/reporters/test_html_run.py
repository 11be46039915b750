"""The HTML page of a real monitored torch run (``monitor.report().to_html()`` and the replayed
``log_to`` file): the run is described (not "batch of 0"), the activation samples behind ND607 are
drawn, the learning rate and smoothed loss are plotted, and labels of same-step findings merge."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netdoctor.findings import Report, TargetInfo
from netdoctor.history import HistoryRecorder, Sample
from netdoctor.monitor.log import report_from_log
from netdoctor.reporters.html import render

from test_html import Elements

torch = pytest.importorskip("torch")

STEPS, EVERY, KILL_AT = 300, 10, 120


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real run whose first ReLU layer dies at step 120 (its bias is pushed to -100): ND607."""
    import netdoctor

    log = tmp_path_factory.mktemp("run") / "run.jsonl"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.StepLR(opt, 100, 0.1)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    with netdoctor.watch(model, opt, every=EVERY, scheduler=sched, log_to=log) as monitor:
        for i in range(STEPS):
            if i == KILL_AT:
                with torch.no_grad():
                    model[0].bias.fill_(-100.0)
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            monitor.step(loss)
            sched.step()
    report = monitor.report()
    return {"report": report, "history": monitor.history(), "live": report.to_html(),
            "replayed": render(report_from_log(log)), "log": log}


@pytest.mark.parametrize("page", ["live", "replayed"])
def test_the_run_is_described_and_its_activation_samples_drawn(run: dict[str, Any], page: str) -> None:
    report, hist = run["report"], run["history"]
    assert "ND607" in report.codes()
    html = run[page]
    assert "batch of 0" not in html
    assert f"training run: {STEPS} steps, sampled every {EVERY} ({len(hist.samples)} samples kept)" in html
    assert "Activation health: not" not in html
    doc = Elements(html)
    bars = doc.marks("activation-health")
    last = hist.samples[-1]
    want = [(name, "dead_frac", float(last.act_dead[i])) for i, name in enumerate(hist.act_layers)
            if math.isfinite(last.act_dead[i])]
    want += [(name, "saturated_frac", float(last.act_saturated[i])) for i, name in enumerate(hist.act_layers)
             if math.isfinite(last.act_saturated[i])]
    got = [(b["data-layer"], b["data-metric"], float(b["data-value"])) for b in bars]
    assert sorted(got) == sorted(want) and ("1", "dead_frac", 1.0) in got  # the layer ND607 names is dead
    # ND607 names layer "1": its bar carries the finding marker
    flags = [a for _, a in doc.chart("activation-health")[1] if "flag" in a.get("class", "").split()]
    assert [f["data-layer"] for f in flags] == ["1"] and "ND607" in flags[0]["data-codes"]
    assert f"at step {last.step}, the latest sampled step" in html
    # what the monitor does not record is named, not "not measured"
    assert "Weight scale: not recorded in a monitored run" in html


@pytest.mark.parametrize("page", ["live", "replayed"])
def test_the_trend_of_dead_and_saturated_units_over_the_run(run: dict[str, Any], page: str) -> None:
    hist = run["history"]
    doc = Elements(run[page])
    svg, items = doc.chart("unit-trend")
    series = {(a["data-layer"], a["data-metric"]): a for t, a in items if "unit-series" in a.get("class", "").split()}
    assert set(series) == {("1", "dead"), ("3", "saturated")} and svg["data-count"] == "2"
    steps, dead = hist.matrix("act_dead")
    relu = series[("1", "dead")]
    assert [int(s) for s in relu["data-steps"].split()] == steps.tolist()
    assert [float(v) for v in relu["data-values"].split()] == dead[:, 0].tolist()
    before, after = dead[steps < KILL_AT, 0], dead[steps >= KILL_AT + EVERY, 0]
    assert before.max() < 0.5 and after.min() == 1.0  # the rise ND607 reports is on the chart
    assert "flagged" in relu["class"].split() and "flagged" not in series[("3", "saturated")]["class"].split()
    events = [a for t, a in items if "event" in a.get("class", "").split()]
    assert str(KILL_AT) in [a["data-step"] for a in events]


def test_learning_rate_and_smoothed_loss_of_the_run(run: dict[str, Any]) -> None:
    hist = run["history"]
    doc = Elements(run["live"])
    lr_svg, _ = doc.chart("lr-curve")
    points = doc.marks("lr-curve", "point")
    assert [(int(p["data-step"]), float(p["data-value"])) for p in points] == [(s.step, s.lr) for s in hist.samples]
    assert lr_svg["data-scale"] == "log"  # 0.05 -> 5e-4 spans two decades
    loss_svg, items = doc.chart("loss-curve")
    assert 0.6 <= float(loss_svg["data-smoothing"]) < 1
    classes = [a.get("class", "") for t, a in items if t == "polyline"]
    assert "line series raw" in classes and "line series smooth" in classes


def test_findings_at_the_same_step_share_one_label(run: dict[str, Any]) -> None:
    report = run["report"]
    same = [f.code for f in report.findings if f.step == KILL_AT]
    assert len(same) >= 2
    labels = Elements(run["live"]).marks("loss-curve", "event-label")
    merged = [a for a in labels if a["data-steps"] == str(KILL_AT)]
    assert len(merged) == 1 and merged[0]["data-codes"].split() == list(dict.fromkeys(same))


def _run_report(every: int = 5) -> Report:
    return Report(targets=(TargetInfo(file="run.jsonl", framework="torch", model_class="MLP", param_count=10),))


def test_a_run_without_activation_samples_says_what_was_not_recorded() -> None:
    rec = HistoryRecorder(every=5)
    rec.meta = {"layers": ["fc"], "layer_kinds": ["linear"], "act_layers": [], "act_kinds": []}
    rec.add_losses(0, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5])
    rec.add_sample(Sample(step=0, grad_norm=1.0, lr=0.1))
    html = render(_run_report(), history=rec.view())
    assert "batch of 0" not in html and "training run: 6 steps, sampled every 5 (1 sample kept)" in html
    assert ("Activation health: not recorded in this run: no sampled step measured an activation layer "
            "(ReLU family, sigmoid/tanh).") in html
    assert 'data-chart="unit-trend"' not in html


def test_activation_rows_come_from_the_latest_sample_that_measured_them() -> None:
    rec = HistoryRecorder(every=1)
    rec.meta = {"layers": [], "layer_kinds": [], "act_layers": ["relu", "sig"], "act_kinds": ["relu", "sigmoid"]}
    rec.add_losses(0, [1.0, 1.0, 1.0])
    rec.add_sample(Sample(step=0, act_dead=np.array([0.1, np.nan]), act_saturated=np.array([np.nan, 0.2])))
    rec.add_sample(Sample(step=1, act_dead=np.array([0.7, np.nan]), act_saturated=np.array([np.nan, 0.4])))
    rec.add_sample(Sample(step=2, grad_norm=1.0))  # no activation data on this one
    doc = Elements(render(_run_report(), history=rec.view()))
    got = [(b["data-layer"], b["data-metric"], float(b["data-value"])) for b in doc.marks("activation-health")]
    assert got == [("relu", "dead_frac", 0.7), ("sig", "saturated_frac", 0.4)]
    assert "at step 1, the latest sampled step" in "".join(doc.text)


def test_a_validation_loss_kept_outside_the_monitor_joins_the_runs_loss_chart(run: dict[str, Any]) -> None:
    """The monitor records no validation loss; one kept by the user is drawn on the run's loss chart."""
    report = run["report"]
    val_steps, val = [99, 199, 299], [1.4, 1.3, 1.35]
    doc = Elements(report.to_html(history={"val_loss": val, "val_loss_steps": val_steps}))
    _, items = doc.chart("loss-curve")
    pts = [(int(a["data-step"]), float(a["data-value"])) for t, a in items if "val-point" in a.get("class", "")]
    assert pts == list(zip(val_steps, val))
    # the run's own series still come from the monitor, not from the argument
    assert int(doc.chart("loss-curve")[0]["data-count"]) == STEPS
    assert not [a for t, a in Elements(run["live"]).chart("loss-curve")[1] if "val-point" in a.get("class", "")]
