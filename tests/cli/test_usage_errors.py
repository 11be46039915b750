"""Usage errors end in exactly one ``error:`` line and exit 2, with no usage box or traceback."""

from __future__ import annotations

import pytest

CASES = {
    "bad integer": (["check", "--max-samples", "abc", "model.py"], "--max-samples"),
    "unknown option": (["check", "--bogus"], "--bogus"),
    "unknown command": (["chek"], "Did you mean 'check'?"),
    "missing argument": (["report"], "LOG"),
    "missing second argument": (["diff", "old.json"], "NEW"),
    "bad seed": (["check", "--seed", "x", "model.py"], "--seed"),
    "no command": ([], "no command given"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_usage_error_is_one_error_line(netdoctor_subprocess, name: str) -> None:
    args, needle = CASES[name]
    res = netdoctor_subprocess(*args)
    assert res.code == 2, (res.code, res.err)
    errors = [ln for ln in res.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.err
    assert needle in errors[0]
    assert "Traceback" not in res.err and "╭" not in res.err
    assert res.err.rstrip().splitlines()[-1].startswith("error:"), "the error line is the last thing said"


def test_help_and_version_still_exit_0(netdoctor_subprocess) -> None:
    for args in (["--help"], ["check", "--help"], ["--version"]):
        res = netdoctor_subprocess(*args)
        assert res.code == 0, (args, res.err)
        assert "error:" not in res.err
