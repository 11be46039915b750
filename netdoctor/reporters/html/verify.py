"""Evidence and verification blocks of a finding in the HTML report.

``Finding.verification`` is a free-form mapping written by whoever verified the fix. The
block shows, in this order:

* the verdict: the first of ``verdict``/``status``/``result``/``outcome`` (text), or a
  boolean ``fixed``/``resolved``/``verified``/``ok``/``passed``;
* before -> after evidence, gathered from ``before``/``after`` mappings (or scalars),
  from ``<name>_before``/``<name>_after`` (or ``before_<name>``/``after_<name>``) pairs,
  and from entries whose value is itself a mapping with ``before`` and ``after``;
* every other entry as a key/value list; multi-line text (``diff``) in a ``<pre>``.

Each before/after row is ``<tr class="delta" data-metric=... data-before=... data-after=...>``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from netdoctor.reporters.html.svg import esc, fmt, is_number, num_attr

VERDICT_TEXT = ("verdict", "status", "result", "outcome")
VERDICT_BOOL = ("fixed", "resolved", "verified", "ok", "passed", "success")
GOOD_WORDS = re.compile(r"\b(fix|resolv|pass|confirm|verified|ok\b|improv|success|clean|gone)", re.I)
BAD_WORDS = re.compile(r"\b(not\b|no\b|fail|worse|unchanged|still|regress|unresolved|broken|persist)", re.I)
MAX_ITEMS = 4
MAX_FULL = 300


def plain(v: Any) -> Any:
    """numpy scalars/arrays -> Python numbers/lists, recursively (tuples become lists)."""
    if isinstance(v, Mapping):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):
        return plain(v.tolist())
    return v


def _value(v: Any) -> str:
    v = plain(v)
    if isinstance(v, Mapping):
        items = list(v.items())
        text = ", ".join(f"{k}={fmt(x)}" for k, x in items[:MAX_ITEMS])
        return esc(text + (", …" if len(items) > MAX_ITEMS else ""))
    if isinstance(v, list):
        seq = v
        text = ", ".join(fmt(x) for x in seq[:MAX_ITEMS])
        return esc(f"[{text}{', …' if len(seq) > MAX_ITEMS else ''}]")
    return esc(fmt(v))


def _size(v: Any) -> int:
    if isinstance(v, Mapping):
        return len(v)
    if isinstance(v, (list, tuple)):
        return len(v)
    return 1


def _full(v: Any) -> str:
    """Every item of a long mapping/list (capped at ``MAX_FULL``), one per line."""
    if isinstance(v, Mapping):
        items = [f"{k}: {fmt(x, 4)}" for k, x in list(v.items())[:MAX_FULL]]
    else:
        items = [fmt(x, 4) for x in list(v)[:MAX_FULL]]
    more = [f"… {_size(v) - MAX_FULL} more"] if _size(v) > MAX_FULL else []
    return esc("\n".join(items + more))


def render_evidence(evidence: Mapping[str, Any], cls: str = "evidence") -> str:
    """Measured numbers: scalars as a ``<dl>`` (``data-key``/``data-value`` on each ``dd``),
    long per-layer mappings and lists folded into ``<details>`` below it, multi-line text (the
    ``diff`` of ``--verify``) in a ``<pre>`` that keeps its lines."""
    items, long = [], []
    for k, v in plain(dict(evidence)).items():
        if isinstance(v, str) and "\n" in v:  # a diff or other multi-line text keeps its lines
            long.append(f'<div class="ev-text" data-key="{esc(k)}"><span>{esc(k)}</span>'
                        f'<pre><code>{esc(v)}</code></pre></div>')
            continue
        if isinstance(v, (Mapping, list, tuple)) and _size(v) > 4:
            long.append(f'<details class="ev-long" data-key="{esc(k)}"><summary>{esc(k)} '
                        f'<span>({_size(v)} values: {_value(v)})</span></summary><pre>{_full(v)}</pre></details>')
            continue
        data = f' data-value="{num_attr(v)}"' if is_number(v) else ""
        items.append(f'<dt>{esc(k)}</dt><dd data-key="{esc(k)}"{data}>{_value(v)}</dd>')
    dl = f'<dl class="{cls}">{"".join(items)}</dl>' if items else ""
    return dl + "".join(long)


def verdict_of(verification: Mapping[str, Any]) -> tuple[str | None, str]:
    """``(verdict text, "good" | "bad" | "unknown")``."""
    for key in VERDICT_BOOL:
        v = verification.get(key)
        if isinstance(v, bool):
            return ("fixed" if v else "not fixed"), ("good" if v else "bad")
    for key in VERDICT_TEXT:
        v = verification.get(key)
        if v is not None and not isinstance(v, Mapping):
            text = str(v)
            if BAD_WORDS.search(text):
                return text, "bad"
            if GOOD_WORDS.search(text):
                return text, "good"
            return text, "unknown"
    return None, "unknown"


def before_after(verification: Mapping[str, Any]) -> tuple[list[tuple[str, Any, Any]], set[str]]:
    """``([(metric, before, after)], keys used)`` gathered from the verification mapping."""
    rows: list[tuple[str, Any, Any]] = []
    used: set[str] = set()
    b, a = verification.get("before"), verification.get("after")
    if isinstance(b, Mapping) or isinstance(a, Mapping):
        bm = b if isinstance(b, Mapping) else {}
        am = a if isinstance(a, Mapping) else {}
        for k in dict.fromkeys([*bm, *am]):
            rows.append((str(k), bm.get(k), am.get(k)))
        used |= {"before", "after"}
    elif b is not None or a is not None:
        rows.append(("value", b, a))
        used |= {"before", "after"}
    for k, v in verification.items():
        if k in used:
            continue
        if isinstance(v, Mapping) and "before" in v and "after" in v:
            rows.append((str(k), v["before"], v["after"]))
            used.add(k)
            continue
        for pre, post, strip in (("_before", "_after", "suffix"), ("before_", "after_", "prefix")):
            if strip == "suffix" and k.endswith(pre):
                base, other = k[: -len(pre)], k[: -len(pre)] + post
            elif strip == "prefix" and k.startswith(pre):
                base, other = k[len(pre):], post + k[len(pre):]
            else:
                continue
            if other in verification:
                rows.append((base, v, verification[other]))
                used |= {k, other}
                break
    return rows, used


def render_verification(verification: Mapping[str, Any]) -> str:
    """The verification block: verdict, before -> after table, remaining details."""
    verification = plain(dict(verification))
    text, tone = verdict_of(verification)
    rows, used = before_after(verification)
    used |= set(VERDICT_TEXT) | set(VERDICT_BOOL)
    out = [f'<div class="verification {tone}" data-verdict="{esc(text or "")}" data-tone="{tone}">']
    out.append(f'<div class="verdict">Verified fix: {esc(text) if text else "result not stated"}</div>')
    if rows:
        out.append('<table class="deltas"><thead><tr><th>measure</th><th>before</th><th></th><th>after</th>'
                   "</tr></thead><tbody>")
        for metric, b, a in rows:
            out.append(
                f'<tr class="delta" data-metric="{esc(metric)}" data-before="{num_attr(b)}" data-after="{num_attr(a)}">'
                f'<td>{esc(metric)}</td><td class="num">{_value(b)}</td><td class="arrow">→</td>'
                f'<td class="num">{_value(a)}</td></tr>'
            )
        out.append("</tbody></table>")
    rest = {k: v for k, v in verification.items() if k not in used}
    if rest:
        out.append(render_evidence(rest, "evidence verification-details"))
    out.append("</div>")
    return "".join(out)
