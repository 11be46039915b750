"""`netdoctor report run.jsonl`: the report of a monitored run, rebuilt from its log."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _monitor_helpers import noisy_decay

from netdoctor.history import Sample
from netdoctor.monitor import MonitorCore

typer_testing = pytest.importorskip("typer.testing")


@pytest.fixture()
def log(tmp_path):
    path = tmp_path / "run.jsonl"
    core = MonitorCore("torch", every=10, log_to=path)
    core.start({"model_class": "Toy", "layers": ["fc1"], "layer_kinds": ["linear"], "grad_source": "backward"})
    losses = noisy_decay(300)
    losses[137:] = np.nan
    start = 0
    for t in range(0, 300, 10):
        core.record(start, losses[start:t + 1], Sample(step=t, grad_norm=1.0, layer_grad=np.ones(1),
                                                       layer_weight=np.ones(1)))
        start = t + 1
    core.close(start, losses[start:])
    return path


def invoke(*args: str):
    from netdoctor.cli.app import app

    return typer_testing.CliRunner().invoke(app, list(args))


def test_report_command_renders_the_log_and_exits_1_on_errors(log):
    res = invoke("report", str(log))
    assert res.exit_code == 1 and "ND601" in res.output and "step 137" in res.output
    data = json.loads(invoke("report", str(log), "--format", "json").output)
    assert [(f["rule"], f["step"]) for f in data["findings"]] == [("ND601", 137)]


def test_report_command_selection_and_errors(log, tmp_path):
    assert invoke("report", str(log), "--ignore", "ND601").exit_code == 0
    missing = invoke("report", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.output
    assert invoke("report", str(log), "--format", "nope").exit_code == 2


def test_report_command_fail_on_is_resolved_like_check(log):
    assert invoke("report", str(log), "--fail-on", "never").exit_code == 0
    bad = invoke("report", str(log), "--fail-on", "fatal")
    assert bad.exit_code == 2 and "--fail-on must be one of error, warning, info, never" in bad.output
