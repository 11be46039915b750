"""Benchmark the HTML report: page size, Python render time, browser load time.

    python bench/bench_html.py                 # ResNet50-sized report (~160 layer rows, 60 findings)
    python bench/bench_html.py --torch         # also a real torch ResNet50 checked by netdoctor
    python bench/bench_html.py --out r.html    # keep the page

Budget (the issue): under 1 MB and under 1 s to render for a ResNet50-sized report. The
browser load time is measured inside the page (``performance.now()`` when the page script
finished, ``data-nd-ready-ms``) in headless chromium when it is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from netdoctor.findings import Report
from netdoctor.reporters.html.demo import demo_report
from netdoctor.reporters.html import render

SIZE_BUDGET = 1_000_000
TIME_BUDGET = 1.0
CASES = (
    # (label, stages, findings, history steps)
    ("resnet50-sized", (3, 4, 16, 3), 60, 2000),
    ("3x deeper", (3, 4, 66, 3), 150, 20000),
)


def time_render(report: Report, history: Any, repeat: int = 5) -> tuple[str, float]:
    best = float("inf")
    page = ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        page = render(report, history=history)
        best = min(best, time.perf_counter() - t0)
    return page, best


def browser_ms(page: str) -> float | None:
    """Milliseconds from navigation start to the page script finishing, in headless chromium."""
    binary = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if binary is None:
        return None
    import re

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(page, encoding="utf-8")
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp}/profile", "--window-size=1200,900", "--dump-dom", path.as_uri()]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": tmp})
    m = re.search(r'data-nd-ready-ms="(\d+)"', out.stdout)
    return float(m.group(1)) if m else None


def torch_resnet50_report() -> Report | None:
    """Check a real (hand-written) ResNet50 with netdoctor, or ``None`` when that fails."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None

    class Bottleneck(nn.Module):
        def __init__(self, c_in: int, width: int, stride: int) -> None:
            super().__init__()
            c_out = width * 4
            self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU()
            self.down = None
            if stride != 1 or c_in != c_out:
                self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

        def forward(self, x: Any) -> Any:
            idt = x if self.down is None else self.down(x)
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.relu(self.bn2(self.conv2(y)))
            return self.relu(self.bn3(self.conv3(y)) + idt)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
            blocks, c = [], 64
            for i, (width, n) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
                for b in range(n):
                    blocks.append(Bottleneck(c, width, 2 if b == 0 and i else 1))
                    c = width * 4
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x: Any) -> Any:
            return self.fc(self.blocks(self.stem(x)).mean((2, 3)))

    try:
        import netdoctor

        torch.manual_seed(0)
        x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 1000, (4,))
        return netdoctor.check(ResNet50(), x, y)
    except Exception as exc:  # noqa: BLE001 - the adapter or rules may be mid-change
        print(f"torch ResNet50: netdoctor.check failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torch", action="store_true", help="also check a real torch ResNet50")
    ap.add_argument("--out", help="write the ResNet50-sized page here")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args(argv)

    cases: list[tuple[str, Report, Any]] = []
    for label, stages, n_findings, steps in CASES:
        report, hist = demo_report(n_findings=n_findings, stages=stages, history_steps=steps)
        cases.append((label, report, hist))
    if args.torch:
        real = torch_resnet50_report()
        if real is not None:
            cases.append(("torch ResNet50 (real)", real, None))

    ok = True
    print(f"{'case':<24}{'layers':>7}{'findings':>9}{'steps':>7}{'size':>11}{'render':>10}{'browser':>10}")
    for i, (label, report, hist) in enumerate(cases):
        page, secs = time_render(report, hist)
        size = len(page.encode())
        ms = None if args.no_browser else browser_ms(page)
        layers = sum(len(t.layers) for t in report.targets)
        steps = len(hist["loss"]) if hist else 0
        shown = "n/a" if ms is None else f"{ms:.0f} ms"
        print(f"{label:<24}{layers:>7}{len(report.findings):>9}{steps:>7}{size / 1e3:>9.0f}kB{secs * 1e3:>8.1f}ms"
              f"{shown:>10}")
        if i == 0:
            ok = size < SIZE_BUDGET and secs < TIME_BUDGET
            if args.out:
                Path(args.out).write_text(page, encoding="utf-8")
    print(f"budget (first case): < {SIZE_BUDGET / 1e6:.0f} MB and < {TIME_BUDGET:.0f} s: {'ok' if ok else 'EXCEEDED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
