"""`import netdoctor` and `netdoctor --help` stay light: no torch, tensorflow or keras (subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "tensorflow", "keras")


def run_python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


REPORT = "import json, sys; print(json.dumps({m: m in sys.modules for m in %r + ('numpy', 'netdoctor.rules')}))"


def test_import_netdoctor_is_light():
    loaded = run_python("import netdoctor, netdoctor.findings, netdoctor.config, netdoctor.errors; " + REPORT % (HEAVY,))
    assert not any(loaded[m] for m in HEAVY), loaded


def test_help_imports_no_framework():
    code = (
        "import io, contextlib, netdoctor.cli\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    for argv in (['--help'], ['check', '--help'], ['rules', '--help']):\n"
        "        try:\n"
        "            netdoctor.cli.main(argv)\n"
        "        except SystemExit as exc:\n"
        "            assert exc.code == 0, exc.code\n"
        "assert 'Usage' in buf.getvalue() and '--input-shape' in buf.getvalue()\n"
        + REPORT % (HEAVY,)
    )
    loaded = run_python(code)
    assert not any(loaded[m] for m in HEAVY), loaded
    # nor numpy and the rule catalogue: they are what makes --help slow
    assert not loaded["numpy"] and not loaded["netdoctor.rules"], loaded


def test_console_script_help_is_fast():
    exe = shutil.which("netdoctor", path=os.path.dirname(sys.executable)) or shutil.which("netdoctor")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "netdoctor.cli", "--help"]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - t0)
        assert proc.returncode == 0 and "check" in proc.stdout
    # measured ~0.17 s here; the loose bound only catches a framework import (>1.5 s) on a busy box
    assert statistics.median(times) < 1.0, times
