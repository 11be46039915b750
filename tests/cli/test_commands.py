"""`netdoctor rules`, `explain`, `diff`, `--version` and the format list."""

from __future__ import annotations

import json
import sys
import types

from netdoctor import __version__


def test_version_and_help(cli):
    result = cli("--version")
    assert result.code == 0 and result.out.strip() == f"netdoctor {__version__}"
    help_text = cli("check", "--help").out
    for option in ("--format", "--output", "--fail-on", "--select", "--ignore", "--config", "--baseline",
                   "--write-baseline", "--data", "--input-shape", "--weights", "--unsafe", "--max-samples",
                   "--seed", "--debug", "--no-progress"):
        assert option in help_text, option


def test_help_lists_only_installed_formats(cli, monkeypatch):
    import netdoctor.reporters as reporters

    monkeypatch.setattr(reporters, "available", lambda: ["json", "text"])
    sys.modules.pop("netdoctor.cli.app", None)
    try:
        text = " ".join(cli("check", "--help").out.replace("│", " ").split())
        assert "Report format: json; text (default" in text
        assert "sarif" not in text and "concise (" not in text
    finally:
        sys.modules.pop("netdoctor.cli.app", None)


def test_rules_lists_the_catalogue(cli):
    from netdoctor.rules import registry

    reg = registry()
    assert "ND201" in reg, "rule ND201 zero-weights is not registered"
    result = cli("rules")
    assert result.code == 0
    for code, spec in reg.items():
        line = next(line for line in result.out.splitlines() if line.lstrip().startswith(code))
        assert spec.name in line and str(spec.category) in line and str(spec.severity) in line
    rows = json.loads(cli("rules", "--format", "json").out)
    assert {r["code"] for r in rows} == set(reg)
    assert set(rows[0]) >= {"code", "name", "category", "severity", "summary"}


def test_explain_by_code_and_name_and_unknown(cli):
    from netdoctor.rules import resolve

    spec = resolve("ND201")
    assert spec is not None, "rule ND201 zero-weights is not registered"
    by_code = cli("explain", "ND201")
    assert by_code.code == 0
    assert by_code.out.startswith("ND201 zero-weights (weights, default severity: error")
    assert spec.doc.splitlines()[0] in by_code.out
    assert cli("explain", "zero-weights").out == by_code.out
    assert cli("explain", "nd201").out == by_code.out
    unknown = cli("explain", "ND2O1")
    assert unknown.code == 2
    assert unknown.err.startswith("error: unknown rule 'ND2O1'; did you mean ND201?")
    assert cli("explain", "zero-weight").err.startswith("error: unknown rule 'zero-weight'; did you mean zero-weights?")


def test_diff_delegates_or_says_it_is_missing(cli, monkeypatch):
    calls = []
    fake = types.ModuleType("netdoctor.diff")
    fake.main = lambda old, new: calls.append((old, new)) or 1
    monkeypatch.setitem(sys.modules, "netdoctor.diff", fake)
    assert cli("diff", "old.json", "new.json").code == 1
    assert calls == [("old.json", "new.json")]
    monkeypatch.setitem(sys.modules, "netdoctor.diff", None)  # as if the module did not exist
    missing = cli("diff", "old.json", "new.json")
    assert missing.code == 2 and missing.err == "error: diff support is not installed in this netdoctor build\n"


def test_help_has_no_type_placeholders(cli, monkeypatch):
    import re

    monkeypatch.setenv("COLUMNS", "120")
    for args in ([], ["check"], ["rules"], ["explain"], ["diff"], ["report"]):
        text = cli(*args, "--help").out
        assert "Usage: netdoctor" in text, args
        for placeholder in re.findall(r"<[a-z][a-z\[\], |]*>|\{[a-zA-Z_]+\}", text):
            raise AssertionError(f"placeholder {placeholder} in `netdoctor {' '.join(args)} --help`")
    assert "Usage: netdoctor explain [OPTIONS] RULE" in cli("explain", "--help").out
    assert "Usage: netdoctor diff [OPTIONS] OLD NEW" in cli("diff", "--help").out
    check_help = " ".join(cli("check", "--help").out.replace("│", " ").split())
    for documented in ("--concise", "--show-layers", "--output-format", "gradient_bars (plain-text bar chart",
                       "concise (one line per finding"):
        assert documented in check_help, documented


def test_rules_at_80_columns_keep_summaries_readable(cli, monkeypatch):
    from netdoctor.rules import registry

    monkeypatch.setenv("COLUMNS", "80")
    out = cli("rules").out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    flat = " ".join(out.split())
    for spec in registry().values():
        assert f"{spec.code} {spec.name}" in flat
        assert " ".join(spec.summary.split()) in flat, spec.code  # whole, not squeezed or cut
    summary_lines = [line for line in lines if line.startswith("      ")]
    assert len(summary_lines) >= len(registry())  # each summary on lines of its own...
    assert max(len(line) for line in summary_lines) > 70  # ...wrapped at the width, not at ~20 characters
    monkeypatch.setenv("COLUMNS", "160")
    wide = cli("rules").out.splitlines()
    assert wide[0].split() == ["code", "name", "category", "default", "summary"]
