"""Fitting names into a column: whole when they fit, else cut in the middle with an ellipsis."""

from __future__ import annotations

ELLIPSIS = "…"


def elide_middle(text: str, width: int) -> str:
    """``text`` when it fits in ``width`` characters, else its start and end around ``…``.

    ``elide_middle("encoder.layers.11.attention.output.dense", 24)`` ->
    ``"encoder.laye…utput.dense"``: both ends stay readable (the model part and the layer).
    """
    if width < 1:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return ELLIPSIS
    keep = width - 1
    head = keep // 2
    tail = keep - head
    return text[:head] + ELLIPSIS + text[len(text) - tail:]
