"""The rich text reporter on hand-built reports (no framework needed)."""

from __future__ import annotations

import re

from netdoctor.findings import Category, Finding, LoadError, Report, Severity, SkippedRule, TargetInfo
from netdoctor.reporters import available, render
from netdoctor.reporters.text import fmt_number

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def finding(code="ND201", name="zero-weights", sev=Severity.ERROR, layer="fc2", file="m.py", **kw):
    return Finding(code, name, sev, Category.from_code(code), kw.pop("message", f"{name} in {layer}"),
                   layer=layer, file=file, **kw)


def target(file="m.py", **kw):
    base = dict(framework="torch", framework_version="2.13.0", model_class="ZeroHiddenMLP",
                param_count=403, batch_size=32, loss="CrossEntropyLoss")
    base.update(kw)
    return TargetInfo(file=file, **base)


def sample_report() -> Report:
    err = finding(
        message="All 256 entries of `fc2.weight` are exactly zero (limit: any hidden matrix)",
        recommendation="Initialize fc2 with He initialization.",
        snippet='nn.init.kaiming_normal_(model.fc2.weight, nonlinearity="relu")',
        evidence={"zero_frac": 1.0, "entries": 256, "weight_std": 0.0, "ratio": 3.2e-9,
                  "per_unit": [0.1, 0.2, 0.3, 0.4, 0.5], "extra": 1, "hidden": 2},
    )
    warn = finding("ND401", "dead-units", Severity.WARNING, layer="fc1", message="62% of units never fired")
    info = finding("ND504", "bias-before-batchnorm", Severity.INFO, layer=None, message="bias cancelled")
    layers = (
        {"layer": "fc1", "type": "Linear", "grad_norm": 0.012, "grad_to_weight": 0.0031, "act_std": 0.5,
         "dead_frac": 0.62},
        {"layer": "fc2", "type": "Linear", "grad_norm": 0.0, "grad_to_weight": 0.0, "act_std": 0.0},
        {"layer": "fc3", "type": "Linear", "grad_norm": 1.5e-7, "grad_to_weight": 2e-8, "act_std": 0.1},
    )
    skipped = (
        SkippedRule("ND601", "nonfinite-loss", "needs a training history (netdoctor.monitor)"),
        SkippedRule("ND602", "diverging-loss", "needs a training history (netdoctor.monitor)"),
        SkippedRule("ND101", "unnormalized-inputs", "inputs are synthetic"),
    )
    t = target(layers=layers, skipped=skipped, rules_passed=("ND102", "ND202"), notes=("data from sample_batch()",))
    suppressed = finding("ND203", "init-scale", Severity.WARNING, layer="head",
                         evidence={"suppressed_because": "zero-init classifier head"})
    return Report(findings=(info, warn, err), targets=(t,), rules_run=("ND201", "ND401"),
                  suppressed=(suppressed,), timings={"total": 0.84})


def test_plain_text_layout():
    text = render("text", sample_report(), color=False, width=100)
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert lines[0].startswith("m.py ")
    assert "torch 2.13.0 · ZeroHiddenMLP · 403 parameters · batch of 32 samples · loss: CrossEntropyLoss" in text
    assert "data from sample_batch()" in text
    # severity groups, most severe first
    assert text.index("Errors (1)") < text.index("Warnings (1)") < text.index("Info (1)")
    assert "ND201 zero-weights · fc2" in text
    assert "fix: Initialize fc2 with He initialization." in text
    assert 'nn.init.kaiming_normal_(model.fc2.weight, nonlinearity="relu")' in text
    # a few key numbers, compactly, not all of them
    flat = " ".join(text.split())
    assert "evidence: zero_frac=1 entries=256 weight_std=0 ratio=3.20e-09 per_unit=[0.1, 0.2, 0.3, 0.4, …]" in flat
    assert "hidden=" not in flat
    # layer table
    assert "Layer health" in text
    header = next(line for line in lines if "grad norm" in line)
    for col in ("layer", "type", "grad/weight", "act std", "dead %"):
        assert col in header
    assert "sat %" not in header  # no row measured it
    fc1 = next(line for line in lines if line.strip().startswith("fc1 ") and "Linear" in line)
    assert "0.012" in fc1 and "62%" in fc1
    # skipped rules grouped by reason, suppressed findings counted with their reason
    assert "ND601 nonfinite-loss, ND602 diverging-loss: needs a training history" in text
    assert "ND101 unnormalized-inputs: inputs are synthetic" in text
    assert "ND203 init-scale on head: zero-init classifier head" in text
    assert lines[-1] == "1 error, 1 warning, 1 info, 2 rules passed (1 suppressed) in 0.84s"
    assert all(line == line.rstrip() for line in lines)


def test_color_only_when_asked():
    colored = render("text", sample_report(), color=True, width=100)
    assert ANSI.search(colored)
    assert ANSI.sub("", colored).splitlines()[-1].startswith("1 error, 1 warning")


def test_several_models_and_load_errors():
    a = finding(file="a.py", layer="fc2")
    b = finding("ND401", "dead-units", Severity.WARNING, file="b.py", layer="relu1")
    report = Report(
        findings=(a, b), targets=(target("a.py"), target("b.py", model_class="Other", synthetic_inputs=True,
                                                           batch_size=8)),
        errors=(LoadError("c.py", "syntax error in c.py at line 3: invalid syntax"),),
        timings={"total": 1.5},
    )
    text = render("text", report, width=100)
    a_part, b_part = text.split("\nb.py ")
    assert "ND201 zero-weights" in a_part and "ND401" not in a_part
    assert "ND401 dead-units · relu1" in b_part and "ND201" not in b_part
    assert "synthetic inputs (8 samples)" in b_part
    assert "Could not check" in text and "c.py: syntax error in c.py at line 3" in text
    assert text.rstrip().endswith("1 file failed to load in 1.50s")


def test_clean_model_and_long_layer_tables_are_cut():
    rows = tuple({"layer": f"block{i}", "type": "Linear", "grad_norm": 0.1, "act_std": 1.0} for i in range(50))
    flagged = finding(layer="block45", file="m.py")
    report = Report(findings=(flagged,), targets=(target(layers=rows),))
    text = render("text", report, max_layers=10)
    shown = [line for line in text.splitlines() if re.match(r"\s+block\d+\s", line)]
    assert len(shown) == 10
    assert any("block45" in line for line in shown)  # layers with findings always shown
    assert "40 more layers without findings" in text
    clean = render("text", Report(targets=(target(),), timings={"total": 0.1}))
    assert "No problems found." in clean
    assert render("text", report, show_layers=False).count("Layer health") == 0


def test_markup_in_user_text_is_not_interpreted():
    f = finding(message="shape [bold]x[/bold] mismatch [1, 2]", layer="layers[0]")
    text = render("text", Report(findings=(f,), targets=(target(),)))
    assert "shape [bold]x[/bold] mismatch [1, 2]" in text
    assert "layers[0]" in text


def test_numbers():
    assert fmt_number(0) == "0" and fmt_number(1024) == "1,024" and fmt_number(3.0) == "3"
    assert fmt_number(0.0123) == "0.0123" and fmt_number(1.5e-7) == "1.50e-07"
    assert fmt_number(float("nan")) == "nan" and fmt_number(True) == "true"


def test_registry_lists_modules():
    assert {"text", "json"} <= set(available())


def test_one_rule_on_many_layers_is_collapsed():
    same = tuple(finding("ND203", "init-scale", Severity.WARNING, layer=f"body.{i}", recommendation="Use Xavier.")
                 for i in range(4))
    report = Report(findings=same, targets=(target(),))
    text = render("text", report)
    assert text.count("ND203 init-scale") == 1 and "Warnings (4)" in text
    assert "also on 3 more layers: body.1, body.2, body.3" in text
    assert render("text", report, collapse=0).count("ND203 init-scale") == 4
    two = Report(findings=same[:2], targets=(target(),))
    assert render("text", two).count("ND203 init-scale") == 2


def test_monitored_run_header_has_no_empty_batch():
    report = Report(targets=(target(batch_size=0, loss=None),), timings={"total": 0.1})
    out = render("text", report)
    assert "batch of 0" not in out and "ZeroHiddenMLP" in out
    assert "batch of 32 samples" in render("text", Report(targets=(target(),)))


def test_no_problems_says_what_was_skipped_or_judged_in_part():
    from netdoctor.findings import Report, SkippedRule, TargetInfo
    from netdoctor.reporters import render

    skipped = (SkippedRule("ND503", "output-loss-mismatch", "no targets"),
               SkippedRule("ND302", "exploding-gradients", "surrogate loss", part="gradient-to-weight limits"))
    text = render("text", Report(targets=(TargetInfo(file="m.py", framework="torch", skipped=skipped),)))
    assert "No problems found. (1 rule skipped, 1 judged in part: see Skipped below)" in text
    assert "ND302 exploding-gradients (gradient-to-weight limits): surrogate loss" in text
    plain = render("text", Report(targets=(TargetInfo(file="m.py", framework="torch"),)))
    assert "No problems found.\n" in plain


# -- issue #15: output volume, width, pasteable snippets ----------------------------------------
def test_layer_table_only_for_files_with_findings_unless_asked() -> None:
    rows = ({"layer": "fc1", "type": "Linear", "grad_norm": 0.1},)
    clean = Report(targets=(target(layers=rows),), timings={"total": 0.1})
    assert "Layer health" not in render("text", clean)
    assert "Layer health" in render("text", clean, show_layers=True)
    flagged = Report(findings=(finding(layer="fc1"),), targets=(target(layers=rows),))
    assert "Layer health" in render("text", flagged)
    assert "Layer health" not in render("text", flagged, show_layers=False)


def test_failed_files_are_listed_at_the_end() -> None:
    a = finding(file="a.py", layer="fc1")  # error
    b = finding("ND401", "dead-units", Severity.WARNING, layer="relu1", file="b.py")
    b2 = finding("ND402", "saturated-activations", Severity.WARNING, layer="sig", file="b.py")
    report = Report(findings=(a, b, b2), targets=(target("a.py"), target("b.py"), target("c.py")),
                    errors=(LoadError("d.py", "syntax error in d.py\nat line 3"),), timings={"total": 1.0})
    lines = render("text", report, width=100).splitlines()
    tail = lines[lines.index(next(ln for ln in lines if ln.startswith("short summary"))) + 1:]
    assert tail[:2] == ["FAILED a.py - 1 error", "ERROR d.py - syntax error in d.py at line 3"]
    lines = render("text", report, width=100, fail_on="warning").splitlines()
    assert "FAILED b.py - 2 warnings" in lines and not any(ln.startswith("FAILED c.py") for ln in lines)
    never = render("text", report, width=100, fail_on="never")
    assert "FAILED" not in never and "ERROR d.py" in never
    assert "short summary" not in render("text", Report(targets=(target(),)))
    # a model checked in-process (library, the pytest fixture's assertion message) has no file to
    # list: no short summary, whose 'FAILED ...' lines would read as pytest's own
    in_process = Report(findings=(finding(file=None, layer="fc1"),), targets=(target(None),))
    assert "Errors (1)" in render("text", in_process) and "short summary" not in render("text", in_process)


def test_long_layer_names_fill_the_width_and_are_cut_in_the_middle() -> None:
    long = "encoder.layers.11.attention.self_attention.output_projection"  # 60 characters
    rows = ({"layer": long, "type": "Linear", "grad_norm": 0.1, "act_std": 1.0},)
    report = Report(findings=(finding(layer=long),), targets=(target(layers=rows),))
    wide = render("text", report, width=200)
    assert any(line.split()[:1] == [long] for line in wide.splitlines())
    narrow = render("text", report, width=60).splitlines()
    row = next(line for line in narrow if "Linear" in line and "…" in line)
    assert len(row) <= 60
    name = row.split()[0]
    head, tail = name.split("…")
    assert long.startswith(head) and long.endswith(tail) and len(head) >= 5 and len(tail) >= 5


def test_elide_middle() -> None:
    from netdoctor.reporters._elide import elide_middle

    assert elide_middle("fc1", 10) == "fc1"
    assert elide_middle("abcdefghij", 5) == "ab…ij"
    assert elide_middle("abcdefghij", 1) == "…" and elide_middle("abc", 0) == ""


def test_snippets_are_printed_unwrapped_and_paste_as_code() -> None:
    import ast

    snippet = ("nn.Linear(6, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(),  # in place of `body.0` and its "
               "activation\nx = (x - mean) / std")
    f = finding(recommendation="Put a BatchNorm before the activation.", snippet=snippet)
    for color in (False, True):
        text = ANSI.sub("", render("text", Report(findings=(f,), targets=(target(),)), width=60, color=color))
        lines = text.splitlines()
        first = lines.index(next(ln for ln in lines if ln.strip().startswith("nn.Linear(6, 64")))
        block = [ln.strip() for ln in lines[first:first + 2]]
        assert block == snippet.splitlines()  # one printed line per code line, never broken
        ast.parse("\n".join(block))


def test_concise_format() -> None:
    a = finding(file="a.py", layer="fc1", message="two\nlines")
    w = finding("ND401", "dead-units", Severity.WARNING, layer=None, file="a.py")
    report = Report(findings=(a, w), targets=(target("a.py"), target("b.py")),
                    errors=(LoadError("c.py", "cannot import torch"),), timings={"total": 0.5})
    lines = render("concise", report).splitlines()
    assert lines == [
        "a.py:1: ND201 zero-weights [error] fc1: two lines",
        "a.py:1: ND401 dead-units [warning] (model): dead-units in None",
        "c.py: ERROR could not check: cannot import torch",
        report.summary(),
    ]


def test_concise_line_points_at_the_layer_definition(tmp_path) -> None:
    src = tmp_path / "net.py"
    src.write_text("import torch\n\nclass Net:\n    def __init__(self):\n        self.fc2 = torch.nn.Linear(2, 2)\n")
    report = Report(findings=(finding(file=str(src), layer="fc2"),), targets=(target(str(src)),))
    assert render("concise", report).startswith(f"{src}:5: ND201 zero-weights [error] fc2: ")
