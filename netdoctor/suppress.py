"""In-code suppression: ``netdoctor.allow(layer, rule, reason=...)``.

Marks a layer object (a torch module or a Keras layer) as knowingly exempt from a rule.
Adapters copy the marks into ``ModelSnapshot.suppressions`` by layer name; the engine
moves matching findings into ``Report.suppressed`` (counted, never hidden). The mark is
kept in a side table keyed by object identity, so the user's model is not modified.
"""

from __future__ import annotations

import weakref
from typing import Any, Mapping

from netdoctor.config import validate_refs

_MARKS: "weakref.WeakKeyDictionary[Any, dict[str, str]]" = weakref.WeakKeyDictionary()
_STRONG: dict[int, tuple[Any, dict[str, str]]] = {}  # for objects that do not support weakrefs


def allow(layer: Any, rule: str, reason: str) -> None:
    """Exempt ``layer`` (and the layers inside it) from ``rule`` (code or name).

    Args:
        layer: A ``torch.nn.Module`` or ``keras.layers.Layer`` of the model.
        rule: Rule code (``"ND201"``) or name (``"zero-weights"``).
        reason: Why this is deliberate; shown in the report.
    """
    if not reason or not str(reason).strip():
        raise ValueError("netdoctor.allow needs a reason, e.g. reason='zero-init classifier head'")
    validate_refs([rule])
    try:
        _MARKS.setdefault(layer, {})[rule] = str(reason)
    except TypeError:
        _STRONG.setdefault(id(layer), (layer, {}))[1][rule] = str(reason)


def marks_of(layer: Any) -> Mapping[str, str]:
    """The ``{rule: reason}`` marks on one layer object (empty when none)."""
    try:
        got = _MARKS.get(layer)
    except TypeError:
        got = None
    if got is None:
        entry = _STRONG.get(id(layer))
        got = entry[1] if entry is not None and entry[0] is layer else None
    return dict(got or {})


def clear(layer: Any) -> None:
    """Remove all marks from one layer object."""
    try:
        _MARKS.pop(layer, None)
    except TypeError:
        pass
    _STRONG.pop(id(layer), None)


def reason_for(suppressions: Mapping[str, Mapping[str, str]], layer: str | None, code: str, name: str) -> str | None:
    """Reason a finding on ``layer`` is suppressed, or ``None``.

    A mark on a layer covers the layers inside it (``"head"`` covers ``"head.fc"`` and
    ``"head/relu"``) and its repeated calls (``"relu"`` covers ``"relu#2"``).
    """
    if layer is None:
        return None
    for marked, rules in suppressions.items():
        if layer == marked or marked == "" or layer.startswith((marked + ".", marked + "/", marked + "#")):
            for ref, why in rules.items():
                if ref.upper() == code or ref.lower() == name:
                    return why
    return None
