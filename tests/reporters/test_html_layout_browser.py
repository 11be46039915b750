"""The HTML report embedded in a host page, measured in headless Chromium (one launch for the file).

The page holds a host's own styles and elements (body, a table, a pre, a padded box), then the
report's fragment (``render(..., fragment=True)``) of a run with findings at the same and at nearby
steps. A script in the page measures every finding label (``getBoundingClientRect``) and the host
elements' computed styles after the report's own script ran, and writes them into the DOM that
``--dump-dom`` returns.
"""

from __future__ import annotations

import html as _html
import json
import math
import random
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from netdoctor.findings import Category, Finding, Report, Severity
from netdoctor.reporters.html import render

from test_html_browser import _chromium, console_messages, run_chromium

HOST = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>host dashboard</title><style>
body {{ font-family: serif; color: rgb(1, 2, 3); background: rgb(250, 240, 230); margin: 11px; }}
h2 {{ font-size: 31px; color: rgb(4, 5, 6); }}
td {{ padding: 3px; }}
</style></head><body>
<h2 id="host-title">Dashboard</h2>
<table id="host-table"><tr><td id="host-td">1</td><td>2</td></tr></table>
<pre id="host-pre">x = 1</pre>
<div id="host-box" style="width:100px;padding:10px">box</div>
<div id="embed">{fragment}</div>
<pre id="result"></pre>
<script>
window.addEventListener("load", () => {{
  const out = {{labels: [], host: {{}}, ready: null}};
  document.querySelectorAll("svg.chart").forEach(svg => {{
    const sb = svg.getBoundingClientRect();
    svg.querySelectorAll(".event-label, .event text").forEach(t => {{
      const r = t.getBoundingClientRect();
      out.labels.push({{chart: svg.dataset.chart, text: t.textContent, left: r.left, right: r.right, top: r.top,
                       bottom: r.bottom, svg: [sb.left, sb.right, sb.top, sb.bottom]}});
    }});
  }});
  const cs = id => getComputedStyle(document.getElementById(id));
  const b = getComputedStyle(document.body);
  out.host = {{
    body: [b.margin, b.fontFamily, b.color, b.backgroundColor, b.boxSizing],
    title: [cs("host-title").fontSize, cs("host-title").color, cs("host-title").borderBottomStyle],
    table: [cs("host-table").borderCollapse, cs("host-table").width === getComputedStyle(document.body).width],
    td: [cs("host-td").padding, cs("host-td").borderBottomStyle, cs("host-td").fontSize],
    pre: [cs("host-pre").backgroundColor, cs("host-pre").borderTopStyle, cs("host-pre").fontSize],
    box: [document.getElementById("host-box").offsetWidth, cs("host-box").boxSizing],
  }};
  const root = document.querySelector(".netdoctor-report");
  out.ready = root ? root.getAttribute("data-nd-ready") : null;
  out.hostRoot = Array.from(document.documentElement.attributes).map(a => a.name);
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>
"""

#: What the host page's own styles give without any report on the page.
HOST_ALONE = {
    "body": ["11px", "serif", "rgb(1, 2, 3)", "rgb(250, 240, 230)", "content-box"],
    "title": ["31px", "rgb(4, 5, 6)", "none"],
    "table": ["separate", False],
    "td": ["3px", "none", "16px"],
    "pre": ["rgba(0, 0, 0, 0)", "none", "13px"],
    "box": [120, "content-box"],
}

SAME_AND_NEAR = [(400, "ND602"), (400, "ND607"), (400, "ND610"), (401, "ND603"), (404, "ND604"), (409, "ND605"),
                 (420, "ND606"), (440, "ND608"), (470, "ND609"), (1200, "ND611"), (1210, "ND612"),
                 (2990, "ND601"), (2995, "ND613"), (2999, "ND614"), (2999, "ND615"), (2999, "ND616")]


def run_report() -> tuple[Report, dict[str, Any]]:
    rng = random.Random(3)
    n = 3000
    loss = [2.0 * math.exp(-s / 700) + 0.3 + rng.uniform(-0.2, 0.2) for s in range(n)]
    hist = {"loss": loss, "grad_norm": [1.0 + rng.uniform(0, 0.5) for _ in range(n)],
            "lr": [0.1 * 0.1 ** (s // 1000) for s in range(0, n, 50)], "lr_steps": list(range(0, n, 50)),
            "val_loss": [loss[s] * 1.1 for s in range(299, n, 300)], "val_loss_steps": list(range(299, n, 300))}
    findings = tuple(Finding(code=c, name="x", severity=Severity.WARNING if i % 3 else Severity.ERROR,
                             category=Category.TRAINING, message=f"{c} fired", step=s)
                     for i, (s, c) in enumerate(SAME_AND_NEAR))
    return Report(findings=findings), hist


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    chromium = _chromium()
    tmp = tmp_path_factory.mktemp("embed")
    report, hist = run_report()
    page = tmp / "host.html"
    page.write_text(HOST.format(fragment=render(report, history=hist, fragment=True)), encoding="utf-8")
    proc = run_chromium(chromium, tmp, page, "--dump-dom", "--virtual-time-budget=3000", "--window-size=1200,900")
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert found and found.group(1).strip(), proc.stdout[-2000:]
    return json.loads(_html.unescape(found.group(1))), proc.stderr


def test_finding_labels_never_overlap_in_the_browser(measured: tuple[dict[str, Any], str]) -> None:
    data, _ = measured
    labels = data["labels"]
    charts = {lab["chart"] for lab in labels}
    assert charts == {"loss-curve", "grad-norm-curve", "lr-curve"}
    shown = " ".join(lab["text"] for lab in labels if lab["chart"] == "loss-curve")
    # every finding is labelled: by its code, or counted in a merged label's "+N"
    assert len(re.findall(r"ND\d+", shown)) + sum(int(k) for k in re.findall(r"\+(\d+)", shown)) == len(SAME_AND_NEAR)
    assert "ND602, ND607, ND610" in shown  # the same step: one label
    assert re.search(r"ND601, ND613, ND61\d, ND61\d \+1", shown)  # at the right edge: drawn left of its line
    for lab in labels:
        assert lab["right"] > lab["left"] and lab["bottom"] > lab["top"], lab  # laid out, not empty
        left, right, top, bottom = lab["svg"]
        assert left <= lab["left"] and lab["right"] <= right and top <= lab["top"], lab  # not clipped
    for a, b in combinations(labels, 2):
        if a["chart"] != b["chart"]:
            continue
        apart = a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
        assert apart, (a["text"], b["text"], a, b)


def test_the_embedded_report_leaves_the_host_page_styles_alone(measured: tuple[dict[str, Any], str]) -> None:
    data, stderr = measured
    assert data["ready"] == "1" and console_messages(stderr) == []  # the report's own script ran in the host
    assert data["host"] == HOST_ALONE
    assert data["hostRoot"] == []  # nothing written onto the host's <html> either
