from __future__ import annotations

import pytest

from netdoctor import suppress


@pytest.mark.parametrize(
    ("layer", "expected"),
    [("head", "why"), ("head.fc", "why"), ("head/relu", "why"), ("head#2", "why"),
     ("header", None), ("body.head", None), (None, None)],
)
def test_reason_for_covers_children_and_repeated_calls(layer, expected):
    marks = {"head": {"ND201": "why"}}
    assert suppress.reason_for(marks, layer, "ND201", "zero-weights") == expected


def test_reason_for_matches_code_or_name_only():
    marks = {"head": {"zero-weights": "why"}}
    assert suppress.reason_for(marks, "head", "ND201", "zero-weights") == "why"
    assert suppress.reason_for(marks, "head", "ND202", "symmetric-weights") is None


def test_allow_needs_a_reason_and_a_known_rule():
    class Layer:  # any object works as a mark key
        pass

    layer = Layer()
    with pytest.raises(ValueError):
        suppress.allow(layer, "ND201", reason="  ")
    with pytest.raises(Exception, match="did you mean"):
        suppress.allow(layer, "zero-weight", reason="typo")
    suppress.allow(layer, "ND201", reason="zero-init head")
    assert suppress.marks_of(layer) == {"ND201": "zero-init head"}
    suppress.clear(layer)
    assert suppress.marks_of(layer) == {}
