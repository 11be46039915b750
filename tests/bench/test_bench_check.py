"""``bench/bench_check.py`` keeps running as the adapter changes: its breakdown replaces the torch
adapter's reductions with stand-ins of the same signature, which must follow the real ones."""

from __future__ import annotations

import pytest
from _bench import load

torch = pytest.importorskip("torch")


def test_breakdown_runs_and_its_parts_add_up() -> None:
    bench = load("bench_check")
    parts = dict(bench.torch_breakdown(batch=16, repeats=1))
    plain, check = parts["MLP 784-512-512-10: plain forward+backward"], parts["check"]
    assert 0 < plain < check
    extra = sum(t for label, t in parts.items() if label.startswith(("probe pipeline", "tensor statistics", "rules")))
    assert extra == pytest.approx(check - plain)

