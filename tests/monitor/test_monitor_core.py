"""The framework-free monitor core: JSONL log and report_from_log, findings announced once,
on_error, the live line staying off outside a terminal, the plot, and lazy imports."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
from _monitor_helpers import noisy_decay

import netdoctor
from netdoctor.errors import NetdoctorError
from netdoctor.findings import Report
from netdoctor.history import Sample
from netdoctor.monitor import MonitorCore, TrainingError, report_from_log

META = {"framework_version": "test", "model_class": "Toy", "layers": ["fc1"], "layer_kinds": ["linear"],
        "act_layers": [], "act_kinds": [], "grad_source": "backward"}


def feed(core: MonitorCore, losses: np.ndarray, every: int) -> int:
    """Drive the core like an adapter: on each sampled step, the losses since the last one and a
    sample. Returns the first step not yet recorded."""
    start = 0
    for t in range(0, len(losses), every):
        core.record(start, losses[start:t + 1], Sample(step=t, grad_norm=1.0, layer_grad=np.ones(1),
                                                       layer_weight=np.ones(1), layer_update=np.full(1, 1e-3), lr=1e-3))
        start = t + 1
    return start


def nan_run(n: int = 300, at: int = 137) -> np.ndarray:
    losses = noisy_decay(n)
    losses[at:] = np.nan
    return losses


def test_log_roundtrip_rebuilds_the_same_report(tmp_path):
    path = tmp_path / "run.jsonl"
    core = MonitorCore("torch", every=10, log_to=path)
    core.start(dict(META))
    losses = nan_run()
    start = feed(core, losses, 10)
    core.close(start, losses[start:])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["schema_version"] == 1 and lines[0]["every"] == 10
    assert sum(x["type"] == "sample" for x in lines) == 30
    assert any(x["type"] == "finding" and x["rule"] == "ND601" for x in lines)
    assert lines[-1]["type"] == "end"
    live, rebuilt = core.report(), report_from_log(path)
    assert isinstance(rebuilt, Report)
    assert [(f.code, f.step, f.message) for f in rebuilt.findings] == [(f.code, f.step, f.message) for f in live.findings]
    assert rebuilt.by_code("ND601")[0].step == 137
    assert core.history().steps == 300


def test_report_from_log_errors_are_clear(tmp_path):
    with pytest.raises(NetdoctorError, match="no such file"):
        report_from_log(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "sample"}\n')
    with pytest.raises(NetdoctorError, match="not a netdoctor log"):
        report_from_log(bad)
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"type": "header", "schema_version": 99}\n')
    with pytest.raises(NetdoctorError, match="upgrade netdoctor"):
        report_from_log(newer)


def test_a_truncated_log_still_gives_a_report(tmp_path):
    path = tmp_path / "run.jsonl"
    core = MonitorCore("torch", every=10, log_to=path)
    core.start(dict(META))
    feed(core, nan_run(), 10)
    core.close()
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # killed mid-write
    assert report_from_log(path).by_code("ND601")[0].step == 137


def test_each_finding_is_logged_once_when_it_fires(caplog):
    core = MonitorCore("torch", every=10)
    core.start(dict(META))
    with caplog.at_level(logging.INFO, logger="netdoctor.monitor"):
        feed(core, nan_run(), 10)
        core.close()
    fired = [r for r in caplog.records if "ND601" in r.getMessage()]
    assert len(fired) == 1 and fired[0].levelno == logging.ERROR and "step 137" in fired[0].getMessage()


def test_on_error_stop_and_raise():
    stop = MonitorCore("torch", every=10, on_error="stop")
    stop.start(dict(META))
    feed(stop, nan_run(), 10)
    assert stop.should_stop
    raising = MonitorCore("torch", every=10, on_error="raise")
    raising.start(dict(META))
    with pytest.raises(TrainingError, match="ND601 nonfinite-loss at step 137") as info:
        feed(raising, nan_run(), 10)
    assert isinstance(info.value, NetdoctorError) and info.value.findings[0].step == 137
    with pytest.raises(ValueError, match="on_error"):
        MonitorCore("torch", on_error="explode")


def test_no_live_line_and_no_output_when_not_a_terminal(capsys):
    core = MonitorCore("torch", every=10, live="auto")
    core.start(dict(META))
    feed(core, noisy_decay(200), 10)
    core.close()
    out = capsys.readouterr()
    assert core._live is None and out.out == "" and out.err == ""


def test_select_and_ignore_pick_history_rules():
    core = MonitorCore("torch", every=10, ignore=["ND601"])
    core.start(dict(META))
    feed(core, nan_run(), 10)
    core.close()
    report = core.report()
    assert "ND601" not in report.rules_run and not report.by_code("ND601")
    assert all(code.startswith("ND6") for code in report.rules_run)


def test_gradient_rules_are_skipped_with_the_reason_when_not_measured():
    core = MonitorCore("keras", every=10)
    core.start({**META, "grad_source": None, "notes": ["gradient norms were not measured: pass held_batch"]})
    for t in range(0, 100, 10):
        core.record(t, noisy_decay(10), Sample(step=t, layer_weight=np.ones(1)))
    skipped = {s.code: s.reason for s in core.report().skipped}
    # no gradients, no activation fractions, no update ratios in any sample: skipped, never passed
    assert set(skipped) == {"ND604", "ND605", "ND607", "ND608", "ND609", "ND610"} and "held_batch" in skipped["ND604"]
    assert set(core.report().rules_run) & set(skipped) == set()


def test_plot_writes_a_png_with_the_finding_steps(tmp_path):
    pytest.importorskip("matplotlib")
    core = MonitorCore("torch", every=10)
    core.start(dict(META))
    feed(core, nan_run(), 10)
    core.close()
    out = core.plot(tmp_path / "loss.png")
    assert open(out, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    core = MonitorCore("torch", every=10)
    core.start(dict(META))
    with pytest.raises(NetdoctorError, match=r"pip install 'netdoctor-ml\[plot\]'"):
        core.plot(tmp_path / "loss.png")


def test_import_netdoctor_and_the_monitor_stays_light():
    code = ("import sys, netdoctor, netdoctor.monitor, netdoctor.history, netdoctor.monitor.plot, netdoctor.rules\n"
            "assert callable(netdoctor.watch)\n"
            "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "KerasCallback" not in netdoctor.__all__  # a star-import must not import keras
    with pytest.raises(AttributeError):
        netdoctor.no_such_thing  # noqa: B018


def test_monitor_report_to_html_draws_the_loss_curve(tmp_path):
    core = MonitorCore("torch", every=10, log_to=tmp_path / "run.jsonl")
    core.start(dict(META))
    losses = nan_run()
    start = feed(core, losses, 10)
    core.close(start, losses[start:])
    for report in (core.report(), report_from_log(tmp_path / "run.jsonl")):
        assert report.history is not None
        page = report.to_html(tmp_path / "run.html")
        assert 'data-chart="loss-curve"' in page
        assert (tmp_path / "run.html").read_text(encoding="utf-8") == page
    assert "history" not in core.report().to_dict()  # the log carries it, not the JSON
