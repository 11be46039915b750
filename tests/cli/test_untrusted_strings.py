"""Untrusted strings (layer names, file names, messages) never reach a terminal or XML raw.

Terminal escapes in a torch module name, a Keras layer name saved in a ``.keras`` file or a
model file's name are shown as visible escapes (``\\x1b``) by the text, github and
gradient_bars formats and in ``error:`` lines; JUnit XML stays well-formed; JSON keeps the
exact string (its own escaping is safe).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from netdoctor.reporters import render
from netdoctor.sanitize import escape_controls, sanitize_report

RAW = ("\x1b", "\x07", "\x0b", "\x9b", "\u202e")
OSC_TITLE = "\x1b]0;pwned\x07"
CLEAR = "act\x1b[2J\u202e"


def assert_no_raw(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} in output"


def test_escape_controls_shows_what_was_there() -> None:
    assert escape_controls(OSC_TITLE) == "\\x1b]0;pwned\\x07"
    assert escape_controls("a\x0bb\x9bc\u202ed") == "a\\x0bb\\x9bc\\u202ed"
    assert escape_controls("two\nlines\tok") == "two\nlines\tok"
    assert escape_controls("two\nlines", one_line=True) == "two\\nlines"
    clean = "fc1.weight (64x4) · 1e-3 — ok"
    assert escape_controls(clean) == clean


@pytest.fixture(scope="module")
def hostile_torch_report():
    torch = pytest.importorskip("torch")
    import netdoctor
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module(OSC_TITLE, nn.Linear(4, 8))
    model.add_module(CLEAR, nn.ReLU())
    model.add_module("head", nn.Linear(8, 3))
    nn.init.zeros_(model[0].weight)
    report = netdoctor.check(model, torch.randn(32, 4), torch.randint(0, 3, (32,)))
    assert any(f.layer == OSC_TITLE for f in report.findings), "the hostile layer name must reach a finding"
    return report


@pytest.mark.parametrize("fmt", ["text", "github", "gradient_bars", "junit"])
def test_plain_text_formats_escape_layer_names(hostile_torch_report, fmt: str) -> None:
    out = render(fmt, hostile_torch_report)
    assert_no_raw(out)
    assert "\\x1b]0;pwned\\x07" in out
    if fmt == "junit":
        ET.fromstring(out.encode())


def test_json_keeps_the_exact_name(hostile_torch_report) -> None:
    data = json.loads(render("json", hostile_torch_report))
    assert OSC_TITLE in {f["layer"] for f in data["findings"]}


def test_sanitize_report_leaves_a_clean_report_as_it_is(hostile_torch_report) -> None:
    clean = sanitize_report(hostile_torch_report)
    assert all(f.layer != OSC_TITLE for f in clean.findings)
    assert sanitize_report(clean) is clean
    assert hostile_torch_report.findings[0].severity is clean.findings[0].severity


def test_keras_layer_name_from_a_saved_file(cli, tmp_path) -> None:
    keras = pytest.importorskip("keras")
    inp = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", kernel_initializer="zeros", name="d\x1b[31m")(inp)
    out = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    model = keras.Model(inp, out)
    model.compile(loss="sparse_categorical_crossentropy")
    path = tmp_path / "hostile.keras"
    model.save(path)
    res = cli("check", str(path), "--input-shape", "4", "--no-progress", "--format", "text",
              "--format", "github", "--output", "-", "--output", str(tmp_path / "gh.txt"))
    assert res.code in (0, 1), res.err
    assert_no_raw(res.out)
    assert "d\\x1b[31m" in res.out
    gh = (tmp_path / "gh.txt").read_text()
    assert_no_raw(gh)


def test_hostile_file_name_in_error_line_and_junit(cli, tmp_path) -> None:
    bad = tmp_path / "model\x1b]0;x\x07\x0b.py"
    bad.write_text("raise ImportError('nope')\n")
    res = cli("check", str(bad), "--no-progress", "--format", "junit", "--output", str(tmp_path / "r.xml"))
    assert res.code == 2
    lines = [ln for ln in res.err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.err
    assert_no_raw(res.err)
    xml = (tmp_path / "r.xml").read_text()
    assert_no_raw(xml)
    root = ET.fromstring(xml.encode())
    assert root.get("errors") == "1"
