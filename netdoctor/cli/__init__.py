"""The ``netdoctor`` command line (typer + rich).

``main()`` is the console entry point. Importing this package imports neither torch,
tensorflow nor keras; the commands import what they need when they run.
"""

from __future__ import annotations

from typing import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``netdoctor`` command line; exits the process with the command's exit code.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).
    """
    from netdoctor.cli.app import app

    app(args=list(argv) if argv is not None else None, prog_name="netdoctor")


__all__ = ["main"]
