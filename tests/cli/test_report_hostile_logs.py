"""``netdoctor report`` on hostile logs: a clean ``error:`` or ``warning:`` naming file and line, never a traceback.

A real log is written by ``netdoctor.watch`` on a small torch run; each case damages it in one
way (the shapes of bad input seen in the field: a top-level array, a sample that is a string,
deep nesting, numbers near 1e308, words where numbers belong...). Every case is rendered in the
text, json and html formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def good_log(tmp_path_factory) -> list[str]:
    import netdoctor

    path = tmp_path_factory.mktemp("log") / "run.jsonl"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    with netdoctor.watch(model, opt, every=5, log_to=str(path)) as monitor:
        for _ in range(60):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            monitor.step(loss)
            opt.step()
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["type"] == "header" and len(lines) > 5
    return lines


def _sample_line(lines: list[str]) -> int:
    return next(i for i, ln in enumerate(lines) if json.loads(ln).get("type") == "sample")


def _edit(lines: list[str], fn) -> str:
    i = _sample_line(lines)
    obj = json.loads(lines[i])
    fn(obj)
    out = list(lines)
    out[i] = json.dumps(obj)
    return "\n".join(out) + "\n"


def _set(path: tuple, value):
    def fn(obj):
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return fn


def _header(lines: list[str], **changes) -> str:
    head = json.loads(lines[0])
    head.update(changes)
    return "\n".join([json.dumps(head)] + lines[1:]) + "\n"


def _deep(n: int) -> str:
    return "[" * n + "]" * n


# id: (log text from the good lines, expected: 2 = one error line, None = a report (exit 0/1) with a
# warning naming the line, "ok" = a report of valid but extreme values)
CASES = {
    "top-level array": (lambda L: "[1, 2, 3]\n", 2),
    "top-level string": (lambda L: '"header"\n', 2),
    "header not first": (lambda L: "\n".join(L[1:]) + "\n", 2),
    "empty file": (lambda L: "", 2),
    "only blank lines": (lambda L: "\n\n  \n", 2),
    "binary file": (lambda L: "\x00\x01\x02", 2),
    "newer schema": (lambda L: _header(L, schema_version=99), 2),
    "schema_version a string": (lambda L: _header(L, schema_version="1"), 2),
    "every zero": (lambda L: _header(L, every=0), 2),
    "every a float": (lambda L: _header(L, every=2.5), 2),
    "header deep nesting": (lambda L: _deep(100000) + "\n", 2),
    "sample is a string": (lambda L: _edit(L, _set(("sample",), "str")), None),
    "sample is a list": (lambda L: _edit(L, _set(("sample",), [1, 2])), None),
    "sample step missing": (lambda L: _edit(L, lambda o: o["sample"].pop("step")), None),
    "sample step a word": (lambda L: _edit(L, _set(("sample", "step"), "abc")), None),
    "grad_norm a word": (lambda L: _edit(L, _set(("sample", "grad_norm"), "abc")), None),
    "losses a string": (lambda L: _edit(L, _set(("losses",), "abc")), None),
    "losses hold a word": (lambda L: _edit(L, _set(("losses",), [0.5, "abc"])), None),
    "losses hold an object": (lambda L: _edit(L, _set(("losses",), [{"a": 1}])), None),
    "losses near 1e308": (lambda L: _edit(L, _set(("losses",), [1.7e308])), "ok"),
    "losses huge integer": (lambda L: _edit(L, _set(("losses",), [10 ** 400])), "ok"),
    "losses non-finite": (lambda L: _edit(L, _set(("losses",), ["inf"])), "ok"),
    "loss_start negative": (lambda L: _edit(L, _set(("loss_start",), -5)), None),
    "loss_start a word": (lambda L: _edit(L, _set(("loss_start",), "abc")), None),
    "grad_norms wrong length": (lambda L: _edit(L, _set(("grad_norms",), [1.0] * 7)), None),
    "act_dead longer than act_layers": (lambda L: _edit(L, _set(("sample", "act_dead"), [0.1] * 3)), None),
    "layer_grad shorter than layers": (lambda L: _edit(L, _set(("sample", "layer_grad"), [0.1])), None),
    "unknown line type": (lambda L: _edit(L, _set(("type",), "\x1b[31mevil")), None),
    "deep nesting in a line": (lambda L: "\n".join(L[:2] + [_deep(100000)] + L[2:]) + "\n", None),
    "truncated last line": (lambda L: "\n".join(L)[:-7] + "\n", None),
    "a line that is an array": (lambda L: "\n".join(L[:2] + ["[1, 2]"] + L[2:]) + "\n", None),
    "layer values near 1e308": (lambda L: _edit(L, lambda o: o["sample"].update(
        {k: [1.7e308] * len(v) for k, v in o["sample"].items() if isinstance(v, list)})), "ok"),
}


@pytest.mark.parametrize("fmt", ["text", "json", "html"])
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_log(cli, tmp_path: Path, good_log: list[str], case: str, fmt: str) -> None:
    make, expected = CASES[case]
    log = tmp_path / "run.jsonl"
    text = make(good_log)
    if case == "binary file":
        log.write_bytes(b"\x00\x01\xff\xfe binary")
    else:
        log.write_text(text)
    res = cli("report", str(log), "--format", fmt)
    assert "Traceback" not in res.err
    errors = [ln for ln in res.err.splitlines() if ln.startswith("error:")]
    warnings = [ln for ln in res.err.splitlines() if ln.startswith("warning:")]
    if expected == 2:
        assert res.code == 2, (res.code, res.err)
        assert len(errors) == 1 and str(log) in errors[0], res.err
        return
    assert res.code in (0, 1), (res.code, res.err)
    assert not errors, res.err
    if expected is None:
        assert warnings, res.err
    assert all(f"{log}:" in w for w in warnings), res.err
    assert all("\x1b" not in w for w in warnings)
    if fmt == "json":
        assert json.loads(res.out)["targets"]
    elif fmt == "html":
        assert res.out.lstrip().lower().startswith("<!doctype html")


def test_the_undamaged_log_gives_no_warning(cli, tmp_path: Path, good_log: list[str]) -> None:
    log = tmp_path / "run.jsonl"
    log.write_text("\n".join(good_log) + "\n")
    res = cli("report", str(log), "--format", "json")
    assert res.code in (0, 1) and not res.err.strip(), res.err
