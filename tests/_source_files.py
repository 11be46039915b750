"""Writing small model files for tests that check where layers are located (path:line)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_source(path: Path, text: str) -> Path:
    """``text`` dedented into ``path``; returns ``path``."""
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def line_of(path: Path, needle: str) -> int:
    """The 1-based number of the first line of ``path`` that contains ``needle``."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)
