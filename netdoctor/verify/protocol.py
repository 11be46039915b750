"""How the fixers' code snippets are joined into a verification's ``diff`` (part of :mod:`netdoctor.verify`)."""

from __future__ import annotations


def join_blocks(blocks: list[tuple[str, list[str]]], limit: int = 4) -> str:
    """Join the fixers' per-step diff blocks: identical blocks once, at most ``limit`` blocks per edit kind."""
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for op, lines in blocks:
        key = tuple(lines)
        if not lines or key in seen:
            continue
        seen.add(key)
        if shown.get(op, 0) >= limit:
            hidden[op] = hidden.get(op, 0) + 1
            continue
        shown[op] = shown.get(op, 0) + 1
        out.extend(lines)
    out += [f"# ... and {n} more layer{'s' if n > 1 else ''} the same way" for n in hidden.values()]
    return "\n".join(out)
