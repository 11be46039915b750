"""The text and concise reports as the real command prints them at 80 and 200 columns.

One finding per line in concise; the layer table only for files with findings (every file with
--show-layers); a closing list of the failed files; layer names whole when the width allows;
no line wider than the terminal except code, which is never wrapped (it must paste and run).
"""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")

BAD = "examples/rules/ND401-dead-units/bad.py"  # 3 warnings
GOOD = "examples/rules/ND401-dead-units/good.py"  # clean
MLP = "examples/mlp_torch.py"  # 1 error, 2 warnings
LONG = "bench/cases/torch_h01_transformer_encoder.py"  # clean, long layer names
FILES = (BAD, GOOD, MLP, LONG)
RULE = re.compile(r"^(\S.*?) ─+$")  # a file's header line


def _run(run_netdoctor, tmp_path, columns: int, *flags: str):
    out_json = tmp_path / f"report-{columns}-{len(flags)}.json"
    result = run_netdoctor("check", "--fail-on", "warning", *flags, "--format", "text", "--format", "json",
                           "--output", str(out_json), *FILES, env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    assert result.code == 1, result.err
    return result.out, json.loads(out_json.read_text(encoding="utf-8"))


def _sections(text: str) -> dict[str, str]:
    """The text of each file's section, by file name."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = RULE.match(line)
        if m and m.group(1) in FILES:
            current = m.group(1)
            out[current] = []
        elif m:
            current = None
        elif current:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _code_lines(report: dict) -> set[str]:
    return {line.strip() for f in report["findings"] for line in (f["snippet"] or "").splitlines()}


def test_default_text_at_80_columns(netdoctor_subprocess, tmp_path) -> None:
    text, report = _run(netdoctor_subprocess, tmp_path, 80)
    code = _code_lines(report)
    assert code, "the corpus should produce snippets"
    for line in text.splitlines():
        if line.strip() not in code:
            assert len(line) <= 80, f"wider than 80 columns: {line!r}"
    sections = _sections(text)
    assert set(sections) == set(FILES)
    for clean in (GOOD, LONG):
        assert "No problems found." in sections[clean]
        assert "Layer health" not in sections[clean], f"a layer table for the clean file {clean}"
    for flagged in (BAD, MLP):
        assert "Layer health" in sections[flagged]
    # snippets are printed whole, one code line per text line (never wrapped)
    printed = {line.strip() for line in text.splitlines()}
    assert code <= printed
    # pytest-style closing list of the failed files, then the summary line
    tail = text.splitlines()[-5:]
    assert tail[0].startswith("short summary ─")
    assert f"FAILED {BAD} - 3 warnings" in tail
    assert f"FAILED {MLP} - 1 error, 2 warnings" in tail
    assert not any(GOOD in line or LONG in line for line in tail)
    assert tail[-1].startswith("1 error, 5 warnings")


def test_default_text_at_200_columns_shows_whole_names(netdoctor_subprocess, tmp_path) -> None:
    text, report = _run(netdoctor_subprocess, tmp_path, 200, "--show-layers")
    assert max(len(line) for line in text.splitlines()) <= 200
    sections = _sections(text)
    assert all("Layer health" in sections[f] for f in FILES)  # --show-layers: every file
    long_target = next(t for t in report["targets"] if t["file"] == LONG)
    names = [row["layer"] for row in long_target["layers"]]
    assert max(len(n) for n in names) > 30
    rows = [line.split()[0] for line in sections[LONG].splitlines() if line.startswith("  ") and line.split()]
    for name in names:
        assert name in rows, f"layer {name!r} is not shown whole"
    assert "…" not in sections[LONG]


def test_concise_is_one_line_per_finding(netdoctor_subprocess) -> None:
    run_netdoctor = netdoctor_subprocess
    result = run_netdoctor("check", "--concise", *FILES, env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    findings, summary = lines[:-1], lines[-1]
    assert len(findings) == 6  # 3 (bad.py) + 3 (mlp_torch.py), no line for the clean files
    pattern = re.compile(r"^(\S+\.py):(\d+): (ND\d{3}) ([a-z-]+) \[(error|warning|info)\] (\S+): (.+)$")
    for line in findings:
        m = pattern.match(line)
        assert m, f"not a concise finding line: {line!r}"
        assert m.group(1) in (BAD, MLP) and int(m.group(2)) >= 1
    assert any(len(line) > 80 for line in findings)  # one line each, whatever the width
    assert summary.startswith("1 error, 5 warnings") and "rules passed" in summary
    # the long form of the flag does the same
    again = run_netdoctor("check", "--output-format", "concise", BAD, env={"NO_COLOR": "1"})
    assert again.out.splitlines()[:-1] == [line for line in findings if line.startswith(BAD)]


def test_concise_flag_with_other_formats(cli) -> None:
    # --concise with --format concise is one format; with text both want stdout: one clean error line
    both = cli("check", "--concise", "--format", "text", "missing.py")
    assert both.code == 2 and both.err.count("error:") == 1 and "--output" in both.err
    same = cli("check", "--concise", "--format", "concise", "missing.py")
    assert same.code == 2 and "each --format" not in same.err and "missing.py" in same.err


def test_terminal_width_is_columns_else_the_terminal_else_none(monkeypatch) -> None:
    import io

    from netdoctor.cli._output import terminal_width

    monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal_width(io.StringIO()) is None  # piped, no COLUMNS: the reporter's default (100)
    monkeypatch.setenv("COLUMNS", "123")
    assert terminal_width(io.StringIO()) == 123
    monkeypatch.setenv("COLUMNS", "wide")
    assert terminal_width(io.StringIO()) is None
