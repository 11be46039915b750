"""Several files in one call: per-framework worker processes, crash isolation, per-file findings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

FX = "tests/cli/fixtures/"


def test_a_native_crash_costs_only_its_own_file(netdoctor_subprocess, tmp_path):
    """crash.py calls os.abort() while building its model; every other file still gets its report.

    The torch group (crash, zero_hidden, multi, syntax_error) shares one worker that dies on
    the first file and is restarted for the rest; the Keras file runs in a worker of its own.
    One run writes JSON to a file and text to stdout.
    """
    files = [FX + "crash.py", FX + "zero_hidden.py", FX + "zero_hidden_keras.py", FX + "syntax_error.py",
             FX + "multi.py"]
    out = tmp_path / "report.json"
    result = netdoctor_subprocess("check", *files, "--select", "ND201", "--format", "text", "--format", "json",
                                  "--output", str(out))
    assert result.code == 2, result.err  # load errors win over findings
    data = json.loads(out.read_text())

    errors = {e["file"]: e["message"] for e in data["errors"]}
    assert set(errors) == {FX + "crash.py", FX + "syntax_error.py"}, errors
    assert "killed by SIGABRT" in errors[FX + "crash.py"]
    assert "syntax error in syntax_error.py at line 3" in errors[FX + "syntax_error.py"]

    assert [t["file"] for t in data["targets"]] == [FX + "zero_hidden.py", FX + "zero_hidden_keras.py",
                                                    FX + "multi.py"]
    assert [t["framework"] for t in data["targets"]] == ["torch", "keras", "torch"]
    flagged = {(f["file"], f["layer"]) for f in data["findings"] if f["rule"] == "ND201"}
    assert (FX + "zero_hidden.py", "fc2") in flagged, data["findings"]
    assert any(file == FX + "zero_hidden_keras.py" and layer.startswith("hidden") for file, layer in flagged), flagged
    assert not any(file == FX + "multi.py" for file, _ in flagged)

    # stderr: exactly one error line per failed file, and no TensorFlow start-up chatter
    err_lines = result.err.strip().splitlines()
    assert len(err_lines) == 2 and all(line.startswith("error: ") for line in err_lines), result.err
    assert any("crash.py" in line and "SIGABRT" in line for line in err_lines)

    # the text report on stdout: one section per checked file, in the order given, then the failures
    text = result.out
    sections = [text.index(FX + name + " ") for name in ("zero_hidden.py", "zero_hidden_keras.py", "multi.py")]
    assert sections == sorted(sections)
    assert sections[0] < text.index("ND201 zero-weights · fc2") < sections[1]
    assert "No problems found." in text[sections[2]:]
    assert "Could not check" in text and "crash.py" in text.split("Could not check")[1]
    assert text.rstrip().splitlines()[-1].startswith("2 errors, 0 warnings")
    assert "2 files failed to load" in text.rstrip().splitlines()[-1]


def test_files_are_grouped_by_a_scan_of_their_imports():
    from netdoctor.modelfile.workers import group_by_framework

    specs = [FX + "crash.py", FX + "zero_hidden_keras.py", "saved/model.keras", FX + "multi.py::build_broken",
             FX + "no_such_file.py"]
    assert group_by_framework(specs) == {"torch": [0, 3], "keras": [1, 2], "unknown": [4]}


def test_input_shape_applies_only_to_files_without_data(netdoctor_subprocess, tmp_path):
    """--input-shape 3,8,8 (NCHW) for a torch file without data; the Keras file's own NHWC sample_batch() wins."""
    keras_file = tmp_path / "keras_cnn.py"
    keras_file.write_text(
        "import numpy as np\nimport keras\n\n"
        "def build_model():\n"
        "    inp = keras.Input((8, 8, 3))\n"
        "    h = keras.layers.Conv2D(4, 3, activation='relu', name='conv')(inp)\n"
        "    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(h))\n"
        "    return keras.Model(inp, out)\n\n"
        "def sample_batch():\n"
        "    rng = np.random.default_rng(0)\n"
        "    return rng.standard_normal((12, 8, 8, 3)).astype('float32'), rng.integers(0, 2, 12)\n"
    )
    torch_file = tmp_path / "torch_cnn.py"
    torch_file.write_text(
        "from torch import nn\n\n"
        "def build_model():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n"
    )
    out = tmp_path / "report.json"
    result = netdoctor_subprocess("check", str(keras_file), str(torch_file), "--input-shape", "3,8,8",
                                  "--format", "json", "--output", str(out), "--fail-on", "never")
    assert result.code == 0, result.err
    data = json.loads(out.read_text())
    assert data["errors"] == []
    targets = {t["file"]: t for t in data["targets"]}
    keras_t, torch_t = targets[str(keras_file)], targets[str(torch_file)]
    assert keras_t["framework"] == "keras" and keras_t["synthetic_inputs"] is False and keras_t["batch_size"] == 12
    assert "--input-shape not used: the data comes from sample_batch()" in keras_t["notes"]
    assert torch_t["framework"] == "torch" and torch_t["synthetic_inputs"] is True and torch_t["batch_size"] == 64
