"""The HTML report in a real headless browser (Debian's chromium).

Skipped only when chromium is absent and ``CI`` is unset; under ``CI=true`` a missing
chromium fails these tests. Three chromium launches in all (~2 s each).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from netdoctor.findings import Category, Finding, Report
from netdoctor.reporters.html.demo import demo_report
from netdoctor.reporters.html import render

NASTY = 'layer1.0.conv1<img src=x onerror="document.title=\'pwned\'">&</script><b id="pwned">'
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars")


def _chromium() -> str:
    for cand in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
                 shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if cand and os.path.exists(cand):
            return cand
    if os.environ.get("CI"):
        pytest.fail("chromium is required under CI (apt-get install -y chromium)")
    pytest.skip("chromium not installed (apt-get install -y chromium); set CI=1 to make this a failure")


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


def run_chromium(binary: str, tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args, page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp,
                          env={**os.environ, "HOME": str(tmp)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def console_messages(stderr: str) -> list[str]:
    """Console output and uncaught errors the page produced (chromium logs them as CONSOLE)."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]


def browser_report() -> tuple[Report, dict[str, list[float]]]:
    report, hist = demo_report(n_findings=30)
    t = report.targets[0]
    rows = list(t.layers)
    k = next(i for i, r in enumerate(rows) if i and "grad_norm" in r)
    rows[k] = {**rows[k], "layer": NASTY}
    from dataclasses import replace

    extra = Finding(code="ND401", name="dead-units", severity=report.findings[0].severity,
                    category=Category.ACTIVATIONS, message="hostile name", layer=NASTY, file=t.file)
    return replace(report, targets=(replace(t, layers=tuple(rows)),), findings=report.findings + (extra,)), hist


class Dom(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.els: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.els.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


@pytest.fixture(scope="module")
def dumped(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Dom, str, Report, Any]:
    tmp = tmp_path_factory.mktemp("dom")
    report, hist = browser_report()
    page = tmp / "report.html"
    page.write_text(render(report, history=hist), encoding="utf-8")
    proc = run_chromium(chromium, tmp, page, "--dump-dom", "--virtual-time-budget=3000")
    return Dom(proc.stdout), proc.stderr, report, hist


def test_scripts_ran_without_console_errors(dumped: tuple[Dom, str, Report, Any]) -> None:
    dom, stderr, _, _ = dumped
    html = [a for t, a in dom.els if t == "html"][0]
    assert html.get("data-nd-ready") == "1", "the page script did not finish"
    assert "data-nd-error" not in html, html.get("data-nd-error")
    assert console_messages(stderr) == []
    assert [a for t, a in dom.els if a.get("class") == "nd-tip"], "script-added tooltip element missing"
    # the hostile layer name stayed text: no injected element, no extra script
    assert not [a for _, a in dom.els if a.get("id") == "pwned"]
    assert sum(1 for t, _ in dom.els if t == "script") == 1
    assert not [a for t, a in dom.els if t == "img"]


def test_charts_hold_the_report_numbers(dumped: tuple[Dom, str, Report, Any]) -> None:
    dom, _, report, hist = dumped
    rows = report.targets[0].layers
    charts = {a["data-chart"]: a for t, a in dom.els if t == "svg" and "chart" in a.get("class", "")}
    html = [a for t, a in dom.els if t == "html"][0]
    assert int(html["data-nd-charts"]) == len(charts) == 6
    expected = {
        "gradient-flow": sum(1 for r in rows if "grad_norm" in r),
        "activation-health": sum(("dead_frac" in r) + ("saturated_frac" in r) for r in rows),
        "activation-scale": sum(1 for r in rows if "act_std" in r),
        "weight-scale": sum(1 for r in rows if "weight_std" in r),
        "loss-curve": sum(1 for v in hist["loss"] if v == v),
        "grad-norm-curve": sum(1 for v in hist["grad_norm"] if v == v and abs(v) != float("inf")),
    }
    for name, n in expected.items():
        svg = charts[name]
        # data-rendered is counted by the page script in the browser, data-laid-out from getBBox()
        assert int(svg["data-rendered"]) == n, name
        assert svg["data-laid-out"] == "1", name
        if not name.endswith("curve"):
            assert int(svg["data-count"]) == n, name
    bars = [a for t, a in dom.els if t == "rect" and "bar" in a.get("class", "") and a.get("data-status")]
    want = [(r["layer"], r["grad_to_weight"]) for r in rows if "grad_norm" in r]
    assert [(b["data-layer"], float(b["data-value"])) for b in bars] == want
    assert NASTY in [b["data-layer"] for b in bars]


# -- screenshot ------------------------------------------------------------------------
def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Pure-Python PNG decoder for 8-bit RGB/RGBA non-interlaced images (chromium's output)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    w = h = bpp = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and ctype in (2, 6), (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride, rows, prev, p = w * bpp, [], bytearray(w * bpp), 0
    for _ in range(h):
        f, line = raw[p], bytearray(raw[p + 1:p + 1 + stride])
        p += 1 + stride
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif f == 4:
            for i in range(stride):
                a, b = (line[i - bpp] if i >= bpp else 0), prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def pixel_stats(png: bytes) -> dict[str, float]:
    """Share of non-background pixels, distinct colours, and share of saturated (coloured) pixels."""
    w, h, bpp, rows = decode_png(png)
    bg = tuple(rows[0][:3])
    colors: set[tuple[int, int, int]] = set()
    ink = vivid = 0
    for row in rows:
        for x in range(0, w * bpp, bpp):
            rgb = (row[x], row[x + 1], row[x + 2])
            colors.add(rgb)
            if sum(abs(a - b) for a, b in zip(rgb, bg)) > 30:
                ink += 1
                if max(rgb) - min(rgb) > 60:
                    vivid += 1
    return {"width": w, "height": h, "ink": ink / (w * h), "colors": len(colors), "vivid": vivid / (w * h)}


def looks_rendered(stats: dict[str, float]) -> bool:
    """A readable report page, not a blank or near-blank one."""
    return stats["ink"] > 0.03 and stats["colors"] > 40 and stats["vivid"] > 0.002


def test_screenshot_is_not_blank(chromium: str, tmp_path: Path) -> None:
    report, hist = browser_report()
    page = tmp_path / "report.html"
    page.write_text(render(report, history=hist), encoding="utf-8")
    shot = tmp_path / "report.png"
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    blank_shot = tmp_path / "blank.png"
    run_chromium(chromium, tmp_path, page, f"--screenshot={shot}", "--window-size=1200,900")
    run_chromium(chromium, tmp_path, blank, f"--screenshot={blank_shot}", "--window-size=1200,900")
    stats = pixel_stats(shot.read_bytes())
    assert (stats["width"], stats["height"]) == (1200, 900)
    assert looks_rendered(stats), stats
    # the check itself can fail: a blank page is rejected
    assert not looks_rendered(pixel_stats(blank_shot.read_bytes()))
    if os.environ.get("NETDOCTOR_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["NETDOCTOR_KEEP_SCREENSHOT"])


def test_ci_without_chromium_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(os.path, "exists", lambda p: False)
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        _chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        _chromium()

