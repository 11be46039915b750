"""The ``netdoctor`` command line (typer + rich).

``main()`` is the console entry point. Importing this package imports neither torch,
tensorflow nor keras; the commands import what they need when they run.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``netdoctor`` command line; exits the process with the command's exit code.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).
    """
    import typer

    from netdoctor.cli._output import EXIT_USAGE, error_line
    from netdoctor.cli.app import app

    click = _click()

    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="netdoctor", standalone_mode=False)
    except getattr(click, "NoArgsIsHelpError", ()) as exc:  # bare `netdoctor`: typer showed the help
        error_line(f"no command given; run `{exc.ctx.command_path} COMMAND`, e.g. `netdoctor check model.py`")
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:  # a bad flag, value or command: one error line, no usage box
        where = exc.ctx.command_path if exc.ctx is not None else "netdoctor"
        error_line(f"{exc.format_message()} (see `{where} --help`)")
        sys.exit(EXIT_USAGE)
    except typer.Abort:
        error_line("interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        error_line(exc.format_message())
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _click():
    """The click exceptions typer raises (typer >= 0.20 vendors click as ``typer._click``)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: plain click
        from click import exceptions
    return exceptions


__all__ = ["main"]
