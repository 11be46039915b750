"""Several files in one call: per-framework worker processes, crash isolation, per-file findings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

FX = "tests/cli/fixtures/"


def test_a_native_crash_costs_only_its_own_file(netdoctor_subprocess):
    """crash.py calls os.abort() while building its model; every other file still gets its report.

    The torch group (crash, zero_hidden, syntax_error) shares one worker that dies on the
    first file and is restarted for the rest; the Keras file runs in its own worker.
    """
    files = [FX + "crash.py", FX + "zero_hidden.py", FX + "zero_hidden_keras.py", FX + "syntax_error.py"]
    result = netdoctor_subprocess("check", *files, "--select", "ND201", "--format", "json", "--no-progress")
    assert result.code == 2, result.err  # load errors win over findings
    data = json.loads(result.out)

    errors = {e["file"]: e["message"] for e in data["errors"]}
    assert set(errors) == {FX + "crash.py", FX + "syntax_error.py"}, errors
    assert "killed by SIGABRT" in errors[FX + "crash.py"]
    assert "syntax error in syntax_error.py at line 3" in errors[FX + "syntax_error.py"]

    assert [t["file"] for t in data["targets"]] == [FX + "zero_hidden.py", FX + "zero_hidden_keras.py"]
    assert [t["framework"] for t in data["targets"]] == ["torch", "keras"]
    flagged = {(f["file"], f["layer"]) for f in data["findings"] if f["rule"] == "ND201"}
    assert (FX + "zero_hidden.py", "fc2") in flagged, data["findings"]
    assert any(file == FX + "zero_hidden_keras.py" and layer.startswith("hidden") for file, layer in flagged), flagged

    err_lines = [line for line in result.err.splitlines() if line.startswith("error: ")]
    assert len(err_lines) == 2
    assert any("crash.py" in line and "SIGABRT" in line for line in err_lines)


def test_text_report_for_several_files(netdoctor_subprocess):
    result = netdoctor_subprocess("check", FX + "zero_hidden.py", FX + "multi.py", "--select", "ND201")
    assert result.code == 1, result.err
    out = result.out
    first, second = out.index(FX + "zero_hidden.py"), out.index(FX + "multi.py")
    assert first < out.index("ND201 zero-weights · fc2") < second
    assert "No problems found." in out[second:]
    assert out.rstrip().splitlines()[-1].startswith("1 error, 0 warnings")
