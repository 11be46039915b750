"""Every examples/rules/<code>-<name>/ pair: the bad model triggers its rule, the good twin does not
and has no error-severity finding at all; every fix snippet either prints is valid Python."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from _snippet_syntax import assert_valid_snippets

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
CASES = sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name[:2] == "ND") if EXAMPLES.is_dir() else []


def _params(suffix: str) -> list:
    out = []
    for d in CASES:
        for kind in ("bad", "good"):
            f = d / f"{kind}{suffix}.py"
            if f.exists():
                out.append(pytest.param(d.name[:5], kind, f, id=f"{d.name}/{f.name}"))
    return out


def _load(path: Path):
    name = f"_ndexample_{path.parent.name.replace('-', '_')}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(code: str, kind: str, path: Path):
    import netdoctor
    from netdoctor.findings import Severity

    mod = _load(path)
    model = mod.build_model()
    x, y = mod.sample_batch()
    report = netdoctor.check(model, x, y, loss_fn=getattr(mod, "loss_fn", None))
    assert_valid_snippets(report, str(path))
    listing = "\n".join(f"{f.code} {f.severity} {f.layer}: {f.message}" for f in report.findings)
    skipped = [s for s in report.skipped if s.code == code]
    assert not skipped, f"{code} was skipped on {path.name}: {skipped[0].reason}"
    if kind == "bad":
        assert code in report.codes(), f"{code} did not fire on {path}:\n{listing}"
    else:
        assert code not in report.codes(), f"{code} fired on the good twin {path}:\n{listing}"
        errors = [f for f in report.findings if f.severity == Severity.ERROR]
        assert not errors, f"error findings on the good twin {path}:\n{listing}"


@pytest.mark.parametrize(("code", "kind", "path"), _params(""))
def test_torch_example(code: str, kind: str, path: Path) -> None:
    pytest.importorskip("torch")
    import torch

    torch.set_num_threads(1)
    _check(code, kind, path)


@pytest.mark.parametrize(("code", "kind", "path"), _params("_keras"))
def test_keras_example(code: str, kind: str, path: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    pytest.importorskip("keras")
    _check(code, kind, path)


def test_every_rule_has_examples() -> None:
    codes = {d.name[:5] for d in CASES}
    expected = {f"ND{n}" for n in (101, 102, 103, 201, 202, 203, 204, 301, 302, 303, 304, 401, 402, 403, 501, 502,
                                   503, 504)}
    assert expected <= codes
    for d in CASES:
        if d.name[:5] in expected:
            for f in ("bad.py", "good.py", "bad_keras.py", "good_keras.py"):
                assert (d / f).exists(), f"missing {d.name}/{f}"
