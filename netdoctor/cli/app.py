"""Command definitions. Keep this module cheap to import: ``netdoctor --help`` loads it.

The command bodies import their implementation (and through it numpy, the rules and the
frameworks) only when they run.
"""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from netdoctor._version import __version__
from netdoctor.cli._help import Command, Group

app = typer.Typer(
    name="netdoctor",
    help="A pytest-style diagnostic linter for neural networks (PyTorch and Keras 3).\n\n"
    "Run `netdoctor check model.py` on a file that defines build_model(); "
    "`netdoctor rules` lists what is checked.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _available_formats() -> list[str]:
    from netdoctor.reporters import available

    return available()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"netdoctor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[  # a plain bool: typer then skips its (pydantic) coercion, keeping --help fast
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """A pytest-style diagnostic linter for neural networks (PyTorch and Keras 3)."""


# what each format is, for --help (a reporter module without an entry is listed by name)
_FORMAT_HELP = {
    "text": "text (default: findings, layer table of files with findings, failed files)",
    "concise": "concise (one line per finding: path:line: CODE name \\[severity] layer: message)",
    "json": "json", "sarif": "sarif (code scanning)", "junit": "junit (XML)", "github": "github (workflow annotations)",
    "html": "html (self-contained, charts)",
    "gradient_bars": "gradient_bars (plain-text bar chart of each layer's gradient norm, log scale)",
}
_FORMATS = "; ".join(_FORMAT_HELP.get(f, f) for f in _available_formats())
_DATA = "Data and model"
_RULES = "Rules"
_OUTPUT = "Output"


@app.command(cls=Command, no_args_is_help=False)
def check(
    paths: Annotated[
        Optional[List[str]],
        typer.Argument(
            metavar="PATH",
            help="Model files (.py defining build_model() or `model`; PATH::NAME picks one), folders to walk "
            "or saved Keras models (.keras, .h5). Default: `paths` from \\[tool.netdoctor].",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        Optional[List[str]],
        typer.Option("--format", "--output-format", "-f", metavar="FORMAT",
                     help=f"Report format: {_FORMATS}. Repeat for several.",
                     rich_help_panel=_OUTPUT, show_default=False),
    ] = None,
    concise: Annotated[
        bool, typer.Option("--concise", help="Shorthand for --format concise: one line per finding and a summary.",
                           rich_help_panel=_OUTPUT),
    ] = False,
    show_layers: Annotated[
        bool, typer.Option("--show-layers", help="Show the layer-health table of every file in the text report "
                           "(default: only of files with findings).", rich_help_panel=_OUTPUT),
    ] = False,
    output: Annotated[
        Optional[List[str]],
        typer.Option("--output", "-o", metavar="FILE", help="Write a report to FILE; repeat in the order of --format "
                     "(text goes to stdout when it has none).", rich_help_panel=_OUTPUT,
                     show_default=False),
    ] = None,
    html: Annotated[
        Optional[str],
        typer.Option("--html", metavar="FILE", help="Also write the self-contained HTML report (charts) to FILE.",
                     rich_help_panel=_OUTPUT, show_default=False),
    ] = None,
    fail_on: Annotated[
        Optional[str],
        typer.Option("--fail-on", metavar="LEVEL", help="Exit 1 on findings at or above: error, warning, info, never. "
                     "Default: error (or fail-on in \\[tool.netdoctor]).", rich_help_panel=_RULES,
                     show_default=False),
    ] = None,
    select: Annotated[
        Optional[List[str]],
        typer.Option("--select", metavar="RULES", help="Rules to run: comma-separated codes, prefixes or names "
                     "(ND3, ND201, dead-units); replaces the configured selection.",
                     rich_help_panel=_RULES, show_default=False),
    ] = None,
    ignore: Annotated[
        Optional[List[str]],
        typer.Option("--ignore", metavar="RULES", help="Rules not to run: comma-separated codes, prefixes or names.",
                     rich_help_panel=_RULES, show_default=False),
    ] = None,
    config: Annotated[
        Optional[str],
        typer.Option("--config", metavar="PYPROJECT", help="pyproject.toml to read \\[tool.netdoctor] from "
                     "(default: the nearest one above the working directory).",
                     rich_help_panel=_RULES, show_default=False),
    ] = None,
    baseline: Annotated[
        Optional[str],
        typer.Option("--baseline", metavar="FILE", help="Hide findings recorded in this baseline file.",
                     rich_help_panel=_RULES, show_default=False),
    ] = None,
    write_baseline: Annotated[
        Optional[str],
        typer.Option("--write-baseline", metavar="FILE", help="Record the current findings as a baseline and exit 0.",
                     rich_help_panel=_RULES, show_default=False),
    ] = None,
    data: Annotated[
        Optional[str],
        typer.Option("--data", metavar="FILE.npz", help="An .npz file with arrays x (and y) to use instead of the "
                     "file's sample_batch().", rich_help_panel=_DATA, show_default=False),
    ] = None,
    input_shape: Annotated[
        Optional[str],
        typer.Option("--input-shape", metavar="SHAPE", help="Synthesize inputs of this per-sample shape, e.g. 3,32,32, for "
                     "files without data of their own (data rules are skipped).", rich_help_panel=_DATA, show_default=False),
    ] = None,
    weights: Annotated[
        Optional[str],
        typer.Option("--weights", metavar="FILE", help="Load this checkpoint into the built model first.",
                     rich_help_panel=_DATA, show_default=False),
    ] = None,
    unsafe: Annotated[
        bool,
        typer.Option("--unsafe", help="Allow code and pickles from saved models and checkpoints "
                     "(only for files you trust).", rich_help_panel=_DATA),
    ] = False,
    max_samples: Annotated[
        Optional[int],
        typer.Option("--max-samples", metavar="N", min=1, help="Use at most N samples of the batch (default 256; synthetic: 16-64 by input size).",
                     rich_help_panel=_DATA, show_default=False),
    ] = None,
    seed: Annotated[
        Optional[int],
        typer.Option("--seed", metavar="N", min=0, max=2**32 - 1,
                     help="Seed for synthetic inputs and dropout masks (default 0).",
                     rich_help_panel=_DATA, show_default=False),
    ] = None,
    timeout: Annotated[
        Optional[float],
        typer.Option("--timeout", metavar="SECONDS", help="Stop checking a file after this long and report it as an "
                     "error (default 300; 0: no limit).", rich_help_panel=_DATA, show_default=False),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Apply each recommended fix to a copy of the model, measure again and run a "
                     "short training probe; show before/after and whether the fix is verified.",
                     rich_help_panel=_RULES),
    ] = False,
    fit_probe: Annotated[
        bool,
        typer.Option("--fit-probe", help="Also train a copy of the model on the probe batch for up to 150 steps and "
                     "report (ND509) when the loss does not approach its floor, with the likely cause.",
                     rich_help_panel=_RULES),
    ] = False,
    skip_no_model: Annotated[
        bool,
        typer.Option("--skip-no-model", help="The files come from a pattern (the pre-commit hook): keep those in the "
                     "project's model files, report a file without a model as 'no model: skipped', not an error.",
                     rich_help_panel=_RULES),
    ] = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Do not show progress on the terminal.",
                           rich_help_panel=_OUTPUT),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks of errors.", rich_help_panel=_OUTPUT),
    ] = False,
) -> None:
    """Check model files and report problems (exit 0 clean, 1 findings, 2 errors)."""
    from netdoctor.cli.check import CheckArgs, run_check

    formats = list(fmt or [])
    if concise and "concise" not in formats:
        formats.append("concise")
    code = run_check(CheckArgs(
        paths=list(paths or []), formats=formats, outputs=list(output or []), html=html,
        fail_on=fail_on, select=select, ignore=ignore, config=config, baseline=baseline,
        write_baseline=write_baseline, data=data, input_shape=input_shape, weights=weights,
        unsafe=unsafe, max_samples=max_samples, seed=seed, timeout=timeout, no_progress=no_progress, debug=debug,
        verify=verify, fit_probe=fit_probe, show_layers=show_layers, skip_no_model=skip_no_model,
    ))
    raise typer.Exit(code)


@app.command(cls=Command)
def rules(
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="text or json."),
    ] = "text",
) -> None:
    """List the rules: code, name, category, default severity, summary."""
    from netdoctor.cli.catalogue import list_rules

    raise typer.Exit(list_rules(fmt))


@app.command(cls=Command)
def explain(
    rule: Annotated[str, typer.Argument(metavar="RULE", help="Rule code (ND301) or name (vanishing-gradients).",
                                        show_default=False)],
) -> None:
    """Show a rule's documentation."""
    from netdoctor.cli.catalogue import explain_rule

    raise typer.Exit(explain_rule(rule))


@app.command(cls=Command)
def diff(
    old: Annotated[str, typer.Argument(metavar="OLD", help="Earlier JSON report.", show_default=False)],
    new: Annotated[str, typer.Argument(metavar="NEW", help="Later JSON report.", show_default=False)],
) -> None:
    """Compare two JSON reports: new, fixed and unchanged findings."""
    import importlib

    from netdoctor.cli._output import fail
    from netdoctor.errors import NetdoctorError

    try:
        diff_mod = importlib.import_module("netdoctor.diff")
    except ModuleNotFoundError as exc:
        if exc.name not in ("netdoctor.diff", None):
            raise
        fail("diff support is not installed in this netdoctor build")
    try:
        code = diff_mod.main(old, new)
    except NetdoctorError as exc:
        fail(str(exc))
    raise typer.Exit(int(code or 0))


@app.command(cls=Command)
def report(
    log: Annotated[str, typer.Argument(metavar="LOG", help="JSONL log of a monitored run (netdoctor.watch(..., "
                                       "log_to=LOG) or netdoctor.KerasCallback(log_to=LOG)).", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", "-f", metavar="FORMAT", help=f"Report format: {_FORMATS}.")] = "text",
    fail_on: Annotated[
        Optional[str],
        typer.Option("--fail-on", metavar="LEVEL", help="Exit 1 on findings at or above: error, warning, info, never. "
                     "Default: error (or fail-on in \\[tool.netdoctor]).", show_default=False),
    ] = None,
    select: Annotated[
        Optional[List[str]],
        typer.Option("--select", metavar="RULES", help="Rules to run (ND6, ND602, diverging-loss).", show_default=False),
    ] = None,
    ignore: Annotated[
        Optional[List[str]],
        typer.Option("--ignore", metavar="RULES", help="Rules not to run.", show_default=False),
    ] = None,
) -> None:
    """Rebuild the report of a monitored training run from its log (exit 0 clean, 1 findings, 2 errors)."""
    import sys
    from pathlib import Path

    from netdoctor.cli._output import UsageFailure, fail, warning_line, write_stdout
    from netdoctor.cli.check import render_report, resolve_fail_on, split_refs
    from netdoctor.config import make_config
    from netdoctor.config_file import load_project_config
    from netdoctor.errors import NetdoctorError
    from netdoctor.monitor import report_from_log

    try:
        project = load_project_config(start=Path.cwd())
        level = resolve_fail_on(fail_on, project.config.fail_on)
        cfg = make_config(select=split_refs(select), ignore=split_refs(ignore), base=project.config, fail_on=level)
        result = report_from_log(log, config=cfg, on_problem=warning_line)
        text = render_report(fmt, result, sys.stdout, level)
    except (NetdoctorError, UsageFailure, ValueError) as exc:
        fail(str(exc))
    write_stdout(text)
    raise typer.Exit(result.exit_code(level))
