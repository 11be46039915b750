"""Every way a user can hand netdoctor bad input: one `error:` line on stderr, exit 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")


def fixture(name: str) -> str:
    return str(Path(__file__).parent / "fixtures" / name)


def assert_one_error_line(result, *needles: str) -> str:
    assert result.code == 2, (result.code, result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in line, (needle, line)
    assert result.out == ""  # nothing was checked: no report on stdout
    return line


def test_missing_file(cli):
    assert_one_error_line(cli("check", "does_not_exist.py"), "no such file: does_not_exist.py", "check the path")


def test_syntax_error(cli):
    assert_one_error_line(cli("check", fixture("syntax_error.py")), "syntax error in syntax_error.py at line 3",
                          "fix the file")


def test_failing_import(cli):
    assert_one_error_line(cli("check", fixture("import_error.py")), "importing import_error.py failed at line 4",
                          "KeyError: 'depth'", "--debug")


def test_no_model_found_names_what_was_looked_for(cli):
    line = assert_one_error_line(cli("check", fixture("no_model.py")), "no model found in no_model.py")
    for name in ("build_model()", "get_model()", "create_model()", "make_model()", "`model`", "::NAME"):
        assert name in line


def test_unknown_name_after_double_colon(cli):
    assert_one_error_line(cli("check", fixture("multi.py") + "::nope"), "multi.py has no 'nope'",
                          "build_broken")


def test_data_that_does_not_fit_the_model(cli):
    # the adapter raises DataError naming the layer and both shapes
    line = assert_one_error_line(cli("check", fixture("bad_shape.py")))
    assert "5" in line and "4" in line, line


def test_loss_that_raises(cli):
    line = assert_one_error_line(cli("check", fixture("loss_raises.py")))
    assert "loss" in line.lower() and "broken on purpose" in line, line


def test_unsupported_object(cli):
    assert_one_error_line(cli("check", fixture("unsupported.py")), "builtins.dict",
                          "expected a torch.nn.Module or a Keras 3 model")


def test_bad_data_files(cli, tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"\x00\x01 not numpy")
    assert_one_error_line(cli("check", fixture("healthy.py"), "--data", str(garbage)),
                          "cannot read", "numpy.savez(path, x=inputs, y=targets)")
    no_x = tmp_path / "nox.npz"
    np.savez(no_x, inputs=np.ones((4, 4)), labels=np.ones(4))
    assert_one_error_line(cli("check", fixture("healthy.py"), "--data", str(no_x)),
                          "has no array 'x' (found: inputs, labels)")
    assert_one_error_line(cli("check", fixture("healthy.py"), "--data", "absent.npz"), "no such data file: absent.npz")


def test_debug_shows_the_traceback(cli):
    result = cli("check", fixture("import_error.py"), "--debug")
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err and "KeyError" in result.err
    assert result.err.strip().splitlines()[-1].startswith("error: importing import_error.py failed")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["--input-shape", "3,x,2"], ["--input-shape '3,x,2' is not a shape", "3,32,32"]),
        (["--format", "yaml"], ["unknown format 'yaml'; available:", "json", "text"]),
        (["--format", "text", "--format", "json"], ["2 formats but 0 --output"]),
        (["--fail-on", "sometimes"], ["--fail-on must be one of error, warning, info, never"]),
        (["--select", "ND999"], ["unknown rule 'ND999'"]),
        (["--config", "nope.toml"], ["no such config file: nope.toml"]),
        (["--baseline", "nope.json"], ["no such baseline file: nope.json", "--write-baseline"]),
    ],
)
def test_usage_errors(cli, args, needles):
    assert_one_error_line(cli("check", fixture("healthy.py"), *args), *needles)


def test_no_paths_and_weights_with_several_files(cli):
    assert_one_error_line(cli("check"), "no model files given")
    assert_one_error_line(cli("check", fixture("healthy.py"), fixture("multi.py"), "--weights", "w.pt"),
                          "--weights needs exactly one model file")
    assert_one_error_line(cli("check", "models/*.py"), "no files match 'models/*.py'")


def test_bad_config_is_one_line(cli, tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor]\nfail_onn = 'error'\n")
    assert_one_error_line(cli("check", fixture("healthy.py")), "unknown key 'fail_onn'")
