"""Finding labels above a training curve, laid out so that no two overlap.

Findings at the same step, or closer than :data:`MERGE_PX` on the chart, share one label
(``ND602, ND607``; more than :data:`MAX_LABEL_CODES` codes end in ``+N``). Each label goes into the
lowest of at most :data:`MAX_LABEL_ROWS` rows where it clears the labels already there by its
estimated width (:func:`text_width`, on the wide side of common sans-serif fonts), and is drawn to
the left of its line where it would run off the chart. ``tests/reporters/test_html_layout_browser.py``
measures the labels in Chromium.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from netdoctor.reporters.html.svg import WIDTH, Scale, esc

if TYPE_CHECKING:  # annotations only: the layout reads a finding's code, step and severity
    from netdoctor.findings import Finding

#: Height of one row of finding labels above a curve (viewBox units; a 10 px label box is about 12 high).
LABEL_ROW = 14
#: Rows of labels at most; a label that fits in none is left out (its line keeps its tooltip).
MAX_LABEL_ROWS = 4
#: Labels of findings closer than this (viewBox units) are merged into one label.
MERGE_PX = 8.0
#: Codes shown in one merged label; more are summarized as "+N".
MAX_LABEL_CODES = 4
_LABEL_GAP = 6.0


def text_width(text: str, size: float = 10.0) -> float:
    """Width of ``text`` at ``size`` px, estimated on the wide side (DejaVu Sans metrics), so
    labels laid out with it do not touch in any common sans-serif font."""
    em = 0.0
    for ch in text:
        if ch.isupper() or ch in "+%&@#":
            em += 0.78
        elif ch.isdigit():
            em += 0.66
        elif ch in ",.;:' ":
            em += 0.36
        else:
            em += 0.64
    return em * size * 1.08


def layout_event_labels(events: Iterable[Finding], sx: Scale, smin: float, smax: float
                        ) -> tuple[list[dict[str, Any]], int, int]:
    """``(labels, rows used, labels left out)`` of the finding codes above a curve.

    Findings at the same step or closer than :data:`MERGE_PX` share one label ("ND602, ND607");
    each label goes into the lowest row where it clears the labels already there by its
    estimated width (:func:`text_width`), flipping to the left of its line at the right edge.
    """
    by_step: dict[int, list[Finding]] = {}
    for f in events:
        if f.step is not None and smin <= f.step <= smax:
            by_step.setdefault(f.step, []).append(f)
    clusters: list[list[tuple[int, list[Finding]]]] = []
    for step, fs in sorted(by_step.items()):
        if clusters and sx(step) - sx(clusters[-1][0][0]) < MERGE_PX:
            clusters[-1].append((step, fs))
        else:
            clusters.append([(step, fs)])
    labels: list[dict[str, Any]] = []
    ends: list[float] = []  # right edge of the last label in each row
    hidden = 0
    for cl in clusters:
        fs = [f for _, group in cl for f in group]
        codes = list(dict.fromkeys(f.code for f in fs))
        text = ", ".join(codes[:MAX_LABEL_CODES]) + (f" +{len(codes) - MAX_LABEL_CODES}"
                                                     if len(codes) > MAX_LABEL_CODES else "")
        x = sx(cl[0][0])
        w = text_width(text)
        left, anchor, tx = x + 3, "start", x + 3
        if left + w > WIDTH - 2:  # would run off the chart: to the left of its line
            left, anchor, tx = x - 3 - w, "end", x - 3
        if left < 2:  # wider than the room on either side: flush with the chart's left edge
            left, anchor, tx = 2.0, "start", 2.0
        row = next((r for r, end in enumerate(ends) if left >= end + _LABEL_GAP), None)
        if row is None and len(ends) < MAX_LABEL_ROWS:
            ends.append(-math.inf)
            row = len(ends) - 1
        if row is None:
            hidden += 1
            continue
        ends[row] = left + w
        labels.append({"text": text, "x": tx, "anchor": anchor, "row": row,
                       "steps": [s for s, _ in cl], "codes": codes,
                       "sev": str(max(f.severity for f in fs))})
    return labels, len(ends), hidden


def labels_svg(labels: Sequence[Mapping[str, Any]], top: float) -> str:
    parts = []
    for lab in labels:
        y = top - 4 - LABEL_ROW * lab["row"]
        parts.append(
            f'<text class="event-label sev-{lab["sev"]}" x="{lab["x"]:.1f}" y="{y:.1f}" text-anchor="{lab["anchor"]}" '
            f'data-steps="{" ".join(str(s) for s in lab["steps"])}" data-codes="{esc(" ".join(lab["codes"]))}" '
            f'data-row="{lab["row"]}">{esc(lab["text"])}</text>'
        )
    return f'<g class="event-labels">{"".join(parts)}</g>' if parts else ""
