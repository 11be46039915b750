"""Helper: a fix snippet must be valid Python (it is printed to be pasted and run)."""

from __future__ import annotations

import ast

import pytest


def assert_valid_snippets(report, where: str) -> None:
    """Fail with the snippet when any finding's snippet does not parse and compile."""
    for f in (*report.findings, *report.suppressed):
        if not f.snippet:
            continue
        try:
            ast.parse(f.snippet)
            compile(f.snippet, where, "exec")
        except SyntaxError as exc:
            pytest.fail(f"{where} {f.code} {f.layer}: the snippet is not valid Python ({exc.msg}, line "
                        f"{exc.lineno}):\n{f.snippet}")
