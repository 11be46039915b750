"""Every fix snippet netdoctor prints is valid Python (it is meant to be pasted and run).

Each example under examples/ and each bench case under bench/cases/ is checked in this process
with the library API; every snippet of every finding must parse (``ast.parse``) and compile.
Slow cases (real keras.applications / HF models, models trained in build_model()) carry the
``slow`` marker.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLOW = ("_h01_resnet50", "_h02_efficientnet", "_h03_mobilenetv3", "_h04_convnext", "_h19_densenet", "_hf_",
        "trained", "_h20_frozen_base")


def _model_files() -> list:
    files = sorted((REPO / "examples").rglob("*.py"))
    files += sorted(p for p in (REPO / "bench" / "cases").glob("*.py") if not p.name.startswith("_"))
    out = []
    for f in files:
        if f.name.startswith("save_"):  # scripts that write a saved model, not model files
            continue
        rel = f.relative_to(REPO).as_posix()
        marks = [pytest.mark.slow] if any(s in f.name for s in SLOW) else []
        out.append(pytest.param(f, id=rel, marks=marks))
    return out


def assert_valid_python(snippet: str, where: str) -> None:
    try:
        ast.parse(snippet)
        compile(snippet, where, "exec")
    except SyntaxError as exc:
        pytest.fail(f"{where}: the snippet is not valid Python ({exc.msg}, line {exc.lineno}):\n{snippet}")


@pytest.mark.parametrize("path", _model_files())
def test_every_snippet_is_valid_python(path: Path) -> None:
    import netdoctor
    from netdoctor.errors import ModelLoadError
    from netdoctor.modelfile.loader import load_model_file

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in path.name:
        pytest.importorskip("keras")
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)
    try:
        loaded = load_model_file(str(path))
    except ModelLoadError as exc:
        if "No module named" in str(exc):  # an optional integration (transformers, lightning) is missing
            pytest.skip(str(exc))
        raise
    report = netdoctor.check(loaded.model, loaded.inputs, loaded.targets, loss_fn=loaded.loss_fn,
                             input_shape=loaded.input_shape)
    for f in (*report.findings, *report.suppressed):
        if f.snippet:
            assert_valid_python(f.snippet, f"{path.name} {f.code} {f.layer}")
