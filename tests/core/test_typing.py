"""netdoctor is typed (PEP 561): mypy --strict checks a user's calls of netdoctor.check and netdoctor.watch.

The sources are copied into a folder laid out as installed (``netdoctor/adapters`` from ``adapters/``)
that mypy finds on the interpreter's path, where a package counts as typed only with ``py.typed``.
torch, Keras and TensorFlow are skipped (``follow_imports = skip``): their own types would cost
minutes, and the signatures under test are netdoctor's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[2]

GOOD = '''
import torch
from torch import nn

import netdoctor
from netdoctor.config import Config
from netdoctor.snapshot import ProbeSettings


def main() -> int:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    report: netdoctor.Report = netdoctor.check(
        model, x, y, loss_fn=nn.CrossEntropyLoss(), select=["ND2", "dead-units"], ignore=("ND203",),
        config=Config(), input_shape=(4,), settings=ProbeSettings(max_samples=8), verify=True, fit_probe=False,
    )
    monitor = netdoctor.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), every=5, log_to="run.jsonl",
                              on_error="stop", fail_on="warning", max_samples=64, step_grad_norm=False)
    callback = netdoctor.KerasCallback(every=10, fail_on="warning", print_report=True)
    del monitor, callback
    return report.exit_code("error")
'''

BAD = '''
import torch

import netdoctor


def main() -> None:
    model = torch.nn.Linear(4, 2)
    netdoctor.check(model, torch.randn(8, 4), verifyy=True)
    netdoctor.check(model, verify="yes")
    netdoctor.check(model, None, None, None)
    netdoctor.watch(model, evry=5)
'''


def _mypy(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    if not site.exists():
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(ROOT / "netdoctor", site / "netdoctor", ignore=ignore)
        shutil.copytree(ROOT / "adapters", site / "netdoctor" / "adapters", ignore=ignore)
        (tmp_path / "mypy.ini").write_text(textwrap.dedent("""
            [mypy]
            follow_imports = silent
            [mypy-torch.*,keras.*,tensorflow.*,lightning.*,transformers.*]
            follow_imports = skip
            ignore_missing_imports = True
        """))
    script = tmp_path / name
    script.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(tmp_path / "mypy.ini"),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(script)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )


def test_mypy_strict_checks_calls_of_check_and_watch(tmp_path: Path) -> None:
    good = _mypy(tmp_path, "good.py", GOOD)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _mypy(tmp_path, "bad.py", BAD)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    out = bad.stdout
    assert 'Unexpected keyword argument "verifyy" for "check"' in out, out
    assert 'Argument "verify" to "check" has incompatible type "str"; expected "bool"' in out, out
    assert 'Too many positional arguments for "check"' in out, out
    assert 'Unexpected keyword argument "evry" for "watch"' in out, out
    assert len([line for line in out.splitlines() if ": error:" in line]) == 4, out


def test_the_package_is_marked_typed() -> None:
    assert (ROOT / "netdoctor" / "py.typed").is_file()


def test_the_public_surface_spells_out_its_keywords() -> None:
    """No ``**kwargs`` on the public calls: a misspelled option is a TypeError at once, not at fit time."""
    import inspect

    for framework in ("keras", "lightning", "transformers"):
        pytest.importorskip(framework)
    import netdoctor
    from netdoctor.adapters.keras.callback import KerasCallback
    from netdoctor.integrations import lightning, transformers
    from netdoctor.monitor.watch import watch

    public = [netdoctor.check, watch, KerasCallback.__init__, lightning.NetdoctorCallback.__init__,
              transformers.NetdoctorCallback.__init__]
    for fn in public:
        params = inspect.signature(fn).parameters.values()
        assert not [p for p in params if p.kind is p.VAR_KEYWORD], fn.__qualname__
        assert all(p.annotation is not p.empty for p in params if p.name != "self"), fn.__qualname__
    from netdoctor.integrations.lightning import NetdoctorCallback

    with pytest.raises(TypeError, match="evry"):
        NetdoctorCallback(evry=5)  # type: ignore[call-arg]
    assert NetdoctorCallback(max_samples=32).watch_kwargs["max_samples"] == 32
