"""Every fix snippet netdoctor prints is valid Python (it is meant to be pasted and run).

Each example under examples/ and each bench case under bench/cases/ is checked in this process
with the library API; every snippet of every finding must parse (``ast.parse``) and compile.
The rule examples (examples/rules/*/) are checked by test_examples.py, which asserts the same
while it checks them; this module takes the other examples and the bench corpus. Slow cases
(real keras.applications / HF models, models trained in build_model()) carry the ``slow`` marker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _snippet_syntax import assert_valid_snippets

REPO = Path(__file__).resolve().parents[2]
SLOW = ("_h01_resnet50", "_h02_efficientnet", "_h03_mobilenetv3", "_h04_convnext", "_h19_densenet", "_hf_",
        "trained", "_h20_frozen_base")


def _model_files() -> list:
    files = sorted(p for p in (REPO / "examples").rglob("*.py") if "rules" not in p.relative_to(REPO).parts[1:2])
    files += sorted(p for p in (REPO / "bench" / "cases").glob("*.py") if not p.name.startswith("_"))
    out = []
    for f in files:
        if f.name.startswith("save_"):  # scripts that write a saved model, not model files
            continue
        rel = f.relative_to(REPO).as_posix()
        marks = [pytest.mark.slow] if any(s in f.name for s in SLOW) else []
        out.append(pytest.param(f, id=rel, marks=marks))
    return out


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
    assert_valid_snippets(report, str(path.relative_to(REPO)))
