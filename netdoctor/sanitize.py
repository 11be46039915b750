"""Untrusted strings made safe to print: one sanitizer for every reporter and error line.

Layer names, file names, loss names, log fields and messages can hold anything a model file,
a saved model or a log put there, including terminal escape sequences (``ESC ]0;title BEL``
retitles a terminal; ``ESC [2J`` clears it), bidirectional overrides that make text read
differently from what it is, and characters XML 1.0 does not allow at all. Formats whose
syntax escapes them (JSON, SARIF, HTML) write strings as they are. Formats that are read as
plain text (the text report, GitHub workflow commands, the terminal gradient chart, error
lines) and JUnit XML show each such character as a visible escape instead: ``ESC`` becomes
``\\x1b``, U+202E becomes ``\\u202e``. The text stays readable, the escape shows what was
there, and nothing reaches the terminal or the XML parser raw.

:func:`escape_controls` escapes one string; :func:`sanitize_report` returns a copy of a
:class:`~netdoctor.findings.Report` with every string in it escaped, so a reporter cannot miss
a field.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from typing import Any, TypeVar

# C0 controls except TAB and LF, DEL, C1 controls, the bidirectional embeddings/overrides/
# isolates, line/paragraph separators, lone surrogates and the two XML non-characters.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff\ufffe\uffff]"
)
_UNSAFE_ONE_LINE = re.compile(_UNSAFE.pattern[:-1] + "\t\n]")

T = TypeVar("T")


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group(0))
    if m.group(0) == "\n":
        return "\\n"
    if m.group(0) == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control, bidi-override and XML-invalid character as a visible escape.

    Args:
        text: Any string.
        one_line: Escape TAB and newline too (for names and single-line fields).

    Returns:
        The escaped string; plain text comes back unchanged.
    """
    pattern = _UNSAFE_ONE_LINE if one_line else _UNSAFE
    return pattern.sub(_visible, text)


def is_clean(text: str) -> bool:
    """Whether ``text`` holds nothing :func:`escape_controls` would escape."""
    return _UNSAFE.search(text) is None


def sanitize_report(report: T) -> T:
    """A copy of ``report`` (any frozen dataclass tree) with every string escaped.

    Walks dataclass fields, mappings (keys and values), tuples and lists; enums, numbers and
    other objects are kept as they are. Strings without anything to escape are kept as the
    same objects, so a clean report costs one scan of its strings.
    """
    return _walk(report)


def _walk(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return escape_controls(value) if not is_clean(value) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = _walk(old)
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, Mapping):
        items = [(_walk(k), _walk(v)) for k, v in value.items()]
        if all(k is ok and v is ov for (k, v), (ok, ov) in zip(items, value.items())):
            return value
        return dict(items)
    if isinstance(value, (tuple, list)):
        items = [_walk(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return type(value)(items) if isinstance(value, list) or type(value) is tuple else tuple(items)
    return value
