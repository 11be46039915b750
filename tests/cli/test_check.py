"""`netdoctor check` on real (tiny) torch models: exit codes, JSON, text, rule selection, options.

The fault in zero_hidden.py is unmistakable (fc2's weight matrix is all zeros), so these
tests need rule ND201 zero-weights; they fail, not skip, when it is missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SUMMARY = re.compile(r"^\d+ errors?, \d+ warnings?(, \d+ info)?, \d+ rules passed.* in \d+\.\d\ds$")
FIELDS = {"file", "rule", "name", "severity", "layer", "message", "recommendation", "evidence"}


def fixture(name: str) -> str:
    return str(Path(__file__).parent / "fixtures" / name)


def as_json(result) -> dict:
    assert result.err == "" or "error" not in result.err, result.err
    return json.loads(result.out)


def test_zero_hidden_layer_fails_with_json_fields(cli):
    path = fixture("zero_hidden.py")
    result = cli("check", path, "--format", "json")
    assert result.code == 1, result.err
    data = as_json(result)
    assert data["schema_version"] >= 1
    nd201 = [f for f in data["findings"] if f["rule"] == "ND201"]
    assert nd201, f"ND201 zero-weights did not flag fc2: {data['findings']}"
    f = nd201[0]
    assert FIELDS <= set(f)
    assert f["file"] == path and f["name"] == "zero-weights" and f["severity"] == "error"
    assert f["layer"] == "fc2" and f["message"] and f["recommendation"]
    assert isinstance(f["evidence"], dict)
    (target,) = data["targets"]
    assert target["framework"] == "torch" and target["model_class"] == "ZeroHiddenMLP"
    assert target["batch_size"] == 32 and target["synthetic_inputs"] is False
    assert "data from sample_batch()" in target["notes"]

    assert cli("check", path, "--fail-on", "never").code == 0


def test_select_and_ignore(cli):
    path = fixture("zero_hidden.py")
    only = as_json(cli("check", path, "--select", "ND201", "--format", "json"))
    assert only["rules_run"] == ["ND201"] and {f["rule"] for f in only["findings"]} == {"ND201"}
    by_name = as_json(cli("check", path, "--select", "zero-weights", "--format", "json"))
    assert by_name["rules_run"] == ["ND201"]
    ignored = cli("check", path, "--select", "ND2", "--ignore", "ND201,ND202", "--format", "json")
    data = as_json(ignored)
    assert "ND201" not in data["rules_run"] and "ND201" not in {f["rule"] for f in data["findings"]}
    assert len(data["rules_run"]) >= 1  # the other weight rules still ran


def test_exit_0_on_a_healthy_model_and_double_colon_picks(cli):
    assert cli("check", fixture("healthy.py"), "--select", "ND201").code == 0
    assert cli("check", fixture("multi.py"), "--select", "ND201").code == 0
    broken = cli("check", fixture("multi.py") + "::build_broken", "--select", "ND201", "--format", "json")
    assert broken.code == 1
    (f,) = as_json(broken)["findings"]
    assert f["layer"] == "2" and f["file"].endswith("multi.py::build_broken")


def test_text_report_without_a_terminal(netdoctor_subprocess):
    result = netdoctor_subprocess("check", "tests/cli/fixtures/zero_hidden.py", "--select", "ND2,ND3,ND4")
    assert result.code == 1, result.err
    text = result.out
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert lines[0].startswith("tests/cli/fixtures/zero_hidden.py")
    header = lines[1]
    assert re.search(r"torch 2\.\d+\.\d+.* · ZeroHiddenMLP · [\d,]+ parameters · batch of 32 samples · "
                     r"loss: CrossEntropyLoss", header), header
    assert "Errors (" in text and "ND201 zero-weights · fc2" in text and "fix: " in text
    assert "Layer health" in text and "grad norm" in text and "fc2" in text
    assert SUMMARY.match(lines[-1]), lines[-1]
    assert result.err == ""


def test_color_follows_force_color_and_no_color(cli, monkeypatch):
    path = fixture("zero_hidden.py")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ANSI.search(cli("check", path, "--select", "ND201").out)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(cli("check", path, "--select", "ND201").out)


def test_synthetic_inputs_skip_data_rules(cli, tmp_path):
    bare = tmp_path / "bare.py"
    bare.write_text("from torch import nn\n\ndef build_model():\n    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), "
                    "nn.Linear(16, 3))\n")
    data = as_json(cli("check", str(bare), "--input-shape", "4", "--format", "json"))
    (target,) = data["targets"]
    assert target["synthetic_inputs"] is True and target["batch_size"] == 64
    skipped = {s["rule"]: s["reason"] for s in target["skipped"]}
    assert "ND102" in skipped and skipped["ND102"], skipped  # nonfinite-inputs needs real data
    # a file with its own data keeps it: --input-shape is for files without data
    own = as_json(cli("check", fixture("healthy.py"), "--input-shape", "4", "--format", "json"))["targets"][0]
    assert own["synthetic_inputs"] is False
    assert "--input-shape not used: the data comes from sample_batch()" in own["notes"]


def test_max_samples_caps_synthetic_inputs(cli, tmp_path):
    bare = tmp_path / "bare.py"
    bare.write_text("from torch import nn\n\ninput_shape = (4,)\n\ndef build_model():\n"
                    "    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))\n")
    (target,) = as_json(cli("check", str(bare), "--max-samples", "4", "--format", "json"))["targets"]
    assert target["synthetic_inputs"] is True and target["batch_size"] == 4


def test_data_file_max_samples_and_seed(cli, tmp_path):
    npz = tmp_path / "batch.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x=rng.standard_normal((20, 4)).astype("float32"), y=rng.integers(0, 3, 20))
    data = as_json(cli("check", fixture("healthy.py"), "--data", str(npz), "--format", "json",
                       "--select", "ND201"))
    assert data["targets"][0]["batch_size"] == 20
    assert f"data from {npz}" in data["targets"][0]["notes"]
    capped = as_json(cli("check", fixture("healthy.py"), "--max-samples", "8", "--seed", "3",
                         "--format", "json", "--select", "ND201"))
    assert capped["targets"][0]["batch_size"] == 8


def test_several_formats_and_outputs(cli, tmp_path):
    out = tmp_path / "reports" / "r.json"
    result = cli("check", fixture("zero_hidden.py"), "--select", "ND201", "--format", "text",
                 "--format", "json", "--output", str(out))
    assert result.code == 1
    assert "ND201 zero-weights" in result.out  # text went to stdout
    assert json.loads(out.read_text())["findings"][0]["rule"] == "ND201"
    both = cli("check", fixture("zero_hidden.py"), "--select", "ND201", "-f", "json", "-f", "text",
               "-o", str(tmp_path / "a.json"), "-o", str(tmp_path / "a.txt"))
    assert both.out == "" and both.code == 1
    assert (tmp_path / "a.txt").read_text().rstrip().splitlines()[-1].startswith("1 error")


def test_config_file_and_cli_override(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.netdoctor]\nignore = ["ND201"]\nfail-on = "never"\n')
    path = fixture("zero_hidden.py")
    data = as_json(cli("check", path, "--format", "json"))
    assert "ND201" not in data["rules_run"]
    # --select replaces the configured selection; --fail-on overrides fail-on
    result = cli("check", path, "--select", "ND201", "--fail-on", "error")
    assert result.code == 1 and "ND201" in result.out
    other = tmp_path / "other.toml"
    other.write_text('[tool.netdoctor]\nselect = ["ND201"]\n')
    assert cli("check", path, "--config", str(other)).code == 1


def test_baseline_round_trip(cli, tmp_path):
    path = fixture("zero_hidden.py")
    base = tmp_path / "baseline.json"
    wrote = cli("check", path, "--select", "ND201", "--write-baseline", str(base))
    assert wrote.code == 0 and base.is_file()
    again = cli("check", path, "--select", "ND201", "--baseline", str(base), "--format", "json")
    assert again.code == 0, again.out
    assert not [f for f in json.loads(again.out)["findings"] if f["rule"] == "ND201"]


def test_baseline_reports_fixed_findings(cli, tmp_path):
    path = fixture("zero_hidden.py")
    base = tmp_path / "baseline.json"
    assert cli("check", path, "--select", "ND201", "--write-baseline", str(base)).code == 0
    doc = json.loads(base.read_text())
    ghost = dict(doc["findings"][0], layer="ghost_layer", fingerprint="0" * 16)
    doc["findings"].append(ghost)  # a finding of the same file and rule that is gone now
    base.write_text(json.dumps(doc))
    again = cli("check", path, "--select", "ND201", "--baseline", str(base))
    assert again.code == 0
    assert "fixed since the baseline: 1 finding(s)" in again.err
    assert "ND201" in again.err and "ghost_layer" in again.err


def test_html_option_writes_the_page_beside_the_text_report(cli, tmp_path):
    page = tmp_path / "report.html"
    result = cli("check", fixture("zero_hidden.py"), "--html", str(page))
    assert result.code == 1 and "ND201 zero-weights" in result.out
    html = page.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "ND201" in html
    assert 'data-chart="gradient-flow"' in html
    both = cli("check", fixture("zero_hidden.py"), "--html", str(page), "-f", "html", "-o", str(page))
    assert both.code == 2 and "either with --html" in both.err


def test_unknown_fail_on_level_is_a_usage_error(cli):
    bad = cli("check", fixture("zero_hidden.py"), "--fail-on", "fatal")
    assert bad.code == 2 and bad.err.startswith("error: --fail-on must be one of error, warning, info, never")
