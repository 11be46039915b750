"""Small output helpers shared by the commands: error lines, colour decisions, writing."""

from __future__ import annotations

import os
import sys
from typing import NoReturn, TextIO

from netdoctor.sanitize import escape_controls

EXIT_USAGE = 2


class UsageFailure(Exception):
    """A user error the command reports as one ``error:`` line and exit code 2."""


def wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_width(stream: TextIO) -> int | None:
    """The width to render for: ``COLUMNS`` when set (also when piped: a pager, a CI log), else
    the terminal's when ``stream`` is one, else ``None`` (the caller's default)."""
    env = os.environ.get("COLUMNS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    if is_tty(stream):
        import shutil

        return shutil.get_terminal_size((100, 24)).columns
    return None


def error_line(message: str) -> None:
    """Write ``error: message`` (one line) to stderr."""
    text = escape_controls(" ".join(str(message).split()), one_line=True)  # one line, nothing raw
    prefix = "\x1b[1;31merror:\x1b[0m" if wants_color(sys.stderr) else "error:"
    sys.stderr.write(f"{prefix} {text}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    """Write ``warning: message`` (one line) to stderr."""
    text = escape_controls(" ".join(str(message).split()), one_line=True)
    prefix = "\x1b[1;33mwarning:\x1b[0m" if wants_color(sys.stderr) else "warning:"
    sys.stderr.write(f"{prefix} {text}\n")
    sys.stderr.flush()


def note_line(message: str) -> None:
    """Write an informational line to stderr."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def fail(message: str) -> NoReturn:
    """Report a user error and exit with code 2."""
    import typer

    error_line(message)
    raise typer.Exit(EXIT_USAGE)


def write_stdout(text: str) -> None:
    """Write to stdout, replacing characters the stream's encoding cannot show."""
    stream = sys.stdout
    try:
        stream.write(text)
    except UnicodeEncodeError:
        enc = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(enc, errors="replace").decode(enc))
    stream.flush()
