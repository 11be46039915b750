"""``netdoctor rules`` and ``netdoctor explain``: the rule catalogue."""

from __future__ import annotations

import difflib
import json
import sys

from netdoctor.cli._output import error_line, terminal_width, wants_color, write_stdout

MIN_SUMMARY_WIDTH = 40  # narrower than this, each summary goes on its own line


def list_rules(fmt: str = "text") -> int:
    """Print the catalogue (code, name, category, default severity, summary); return the exit code."""
    from netdoctor.rules import registry

    specs = list(registry().values())
    if fmt == "json":
        rows = [
            {"code": s.code, "name": s.name, "category": str(s.category), "severity": str(s.severity),
             "needs": sorted(str(n) for n in s.needs), "summary": s.summary, "options": dict(s.options)}
            for s in specs
        ]
        write_stdout(json.dumps(rows, indent=2, default=str) + "\n")
        return 0
    if fmt != "text":
        error_line(f"unknown format {fmt!r} for `netdoctor rules`; use text or json")
        return 2
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    import io

    color = wants_color(sys.stdout)
    buf = io.StringIO()
    # on a terminal (or with COLUMNS set): its width; elsewhere one rule per line (grep-friendly)
    width = terminal_width(sys.stdout) or 200
    console = Console(file=buf, force_terminal=color, no_color=not color, highlight=False, width=width,
                      color_system="auto" if color else None)
    if not specs:
        write_stdout("no rules are installed\n")
        return 0
    style = {"error": "red", "warning": "yellow", "info": "cyan"}
    fixed = max(len(s.name) for s in specs) + max(len(str(s.category)) for s in specs) + 5 + len("warning") + 2 * 4
    if width - fixed >= MIN_SUMMARY_WIDTH:  # one row per rule, the summary wrapped in its column
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
        table.add_column("code", no_wrap=True)
        table.add_column("name", no_wrap=True)
        table.add_column("category", no_wrap=True)
        table.add_column("default", no_wrap=True)
        table.add_column("summary")
        for s in specs:
            sev = str(s.severity)
            table.add_row(s.code, s.name, str(s.category), f"[{style[sev]}]{sev}[/]", escape(s.summary))
        console.print(table)
    else:  # narrow: the rule on one line, its summary wrapped below it at the full width
        from rich.padding import Padding

        for s in specs:
            sev = str(s.severity)
            console.print(f"[bold]{s.code}[/] {escape(s.name)} [dim]({s.category},[/] "
                          f"[{style[sev]}]{sev}[/][dim])[/]")
            console.print(Padding(escape(s.summary), (0, 0, 0, 6)))
    console.print(f"[dim]{len(specs)} rules; `netdoctor explain CODE` shows one in full.[/]")
    write_stdout("\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n")
    return 0


def explain_rule(key: str) -> int:
    """Print a rule's docstring; unknown codes/names get a suggestion and exit code 2."""
    from netdoctor.rules import registry, resolve

    spec = resolve(key)
    if spec is None:
        reg = registry()
        names = list(reg) + [s.name for s in reg.values()]
        close = difflib.get_close_matches(key.upper() if key[:2].upper() == "ND" else key.lower(), names, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]}?" if close else ""
        error_line(f"unknown rule {key!r}{hint} (`netdoctor rules` lists them all)")
        return 2
    needs = ", ".join(sorted(str(n) for n in spec.needs)) or "nothing"
    header = f"{spec.code} {spec.name} ({spec.category}, default severity: {spec.severity}; needs {needs})"
    options = ""
    if spec.options:
        options = "Default options: " + ", ".join(f"{k}={v!r}" for k, v in spec.options.items())
    if wants_color(sys.stdout):  # on a terminal the docstring's Markdown is rendered
        from rich.console import Console
        from rich.markdown import Markdown
        from rich.markup import escape

        console = Console(highlight=False)
        console.print(f"[bold]{escape(header)}[/]")
        console.print(Markdown(spec.doc or spec.summary))
        if options:
            console.print(f"\n[dim]{escape(options)}[/]")
        return 0
    lines = [header, "=" * len(header), "", spec.doc or spec.summary]
    if options:
        lines += ["", options]
    write_stdout("\n".join(lines).rstrip() + "\n")
    return 0
