"""A Report in a notebook: IPython's display formatter shows the text report (text/plain) and the
HTML report in an iframe (text/html), and the HTML leaves the notebook page's own styles alone
(checked in headless Chromium)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netdoctor.reporters import render
from netdoctor.reporters.html.demo import demo_report

from test_html_browser import _chromium, run_chromium


@pytest.fixture(scope="module")
def report():
    return demo_report(n_findings=6)[0]


def test_ipython_display_formatter_gives_text_and_scoped_html(report):
    formatters = pytest.importorskip("IPython.core.formatters")
    data, _ = formatters.DisplayFormatter().format(report)
    text = data["text/plain"]
    assert text == render("text", report).rstrip("\n") == str(report).rstrip("\n")
    assert report.summary().split(" in ")[0] in text and "Report(findings=" not in text
    html = data["text/html"]
    assert html.startswith("<iframe") and html.endswith("</iframe>") and 'sandbox="allow-scripts"' in html
    assert repr(report).startswith("<netdoctor Report of ") and report.summary() in repr(report)


class _TopLevel(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_the_fragment_is_one_iframe_and_nothing_else(report):
    html = report._repr_html_()
    parser = _TopLevel()
    parser.feed(html)
    assert parser.tags == ["iframe"]  # no <style> or <script> reaches the notebook page itself
    srcdoc = re.search(r'srcdoc="([^"]*)"', html).group(1)
    assert "&lt;style&gt;" in srcdoc and "&lt;script&gt;" in srcdoc  # the report's own, inside the frame


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ font-family: serif; color: rgb(1, 2, 3); background: rgb(250, 240, 230); margin: 11px; }}
h2 {{ color: rgb(4, 5, 6); font-size: 31px; }}
p, td, code {{ margin: 7px; font-size: 13px; color: rgb(7, 8, 9); }}
</style></head><body>
<h2 id="cell-title">My notebook</h2><p id="cell-text">Some text in a cell</p>
<table><tr><td id="cell-td">1</td></tr></table><code id="cell-code">x = 1</code>
<div id="output">{fragment}</div>
<pre id="result"></pre>
<script>
window.addEventListener("load", () => {{
  const probe = ["cell-title", "cell-text", "cell-td", "cell-code"].map(id => {{
    const s = getComputedStyle(document.getElementById(id));
    return [id, s.color, s.fontFamily, s.fontSize, s.margin, s.backgroundColor].join("|");
  }});
  const b = getComputedStyle(document.body);
  probe.push(["body", b.color, b.fontFamily, b.backgroundColor, b.margin].join("|"));
  probe.push("sheets=" + document.styleSheets.length);
  const frames = document.querySelectorAll("iframe");
  probe.push("frames=" + frames.length + " height=" + (frames.length ? frames[0].getBoundingClientRect().height : 0));
  document.getElementById("result").textContent = probe.join("\\n");
}});
</script></body></html>
"""


def _measure(chromium: str, tmp_path: Path, fragment: str) -> list[str]:
    page = tmp_path / f"page{len(list(tmp_path.glob('page*')))}.html"
    page.write_text(PAGE.format(fragment=fragment), encoding="utf-8")
    proc = run_chromium(chromium, tmp_path, page, "--dump-dom", "--virtual-time-budget=3000")
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert found and found.group(1).strip(), proc.stdout[-2000:]
    return found.group(1).strip().splitlines()


def test_displaying_a_report_does_not_restyle_the_notebook(report, tmp_path):
    chromium = _chromium()
    without = _measure(chromium, tmp_path, "")
    with_report = _measure(chromium, tmp_path, report._repr_html_())
    assert with_report[:-1] == without[:-1]  # every probed style and the page's stylesheets, unchanged
    assert without[-1].startswith("frames=0")
    frames, height = with_report[-1].split()
    assert frames == "frames=1" and float(height.split("=")[1]) >= 300
    assert "rgb(1, 2, 3)" in without[-3] or "rgb(1, 2, 3)" in " ".join(without)
