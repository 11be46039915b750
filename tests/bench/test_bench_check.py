"""``bench/bench_check.py`` keeps running as the adapter changes: its breakdown replaces the torch
adapter's reductions with stand-ins of the same signature, which must follow the real ones."""

from __future__ import annotations

import pytest
from _bench import load

torch = pytest.importorskip("torch")


def test_breakdown_runs_and_its_parts_add_up() -> None:
    bench = load("bench_check")
    parts = dict(bench.torch_breakdown(batch=16, repeats=1, warmup_s=0.0, min_s=0.0))
    plain, check = parts["MLP 784-512-512-10: plain forward+backward"], parts["check"]
    assert 0 < plain < check
    extra = sum(t for label, t in parts.items() if label.startswith(("probe pipeline", "tensor statistics", "rules")))
    assert extra == pytest.approx(check - plain)


def test_rounds_go_on_for_the_minimum_time_whatever_the_repeats() -> None:
    import time

    bench = load("bench_check")
    calls = {"fast": 0, "other": 0}

    def fast() -> None:
        calls["fast"] += 1
        time.sleep(0.001)

    def other() -> None:
        calls["other"] += 1

    t0 = time.perf_counter()
    got = bench.interleaved_medians([fast, other], repeats=2, warmup=1, warmup_s=0.05, min_s=0.1)
    assert time.perf_counter() - t0 >= 0.15  # 50 ms of warm-up, then 100 ms of rounds of about 1 ms
    assert len(got) == 2 and got[0] >= 0.001
    assert calls["fast"] == calls["other"] > 3  # more rounds than warm-up and repeats alone
    calls.update(fast=0, other=0)
    bench.interleaved_medians([fast, other], repeats=3, warmup=2, warmup_s=0.0, min_s=0.0)
    assert calls["fast"] == 5  # no time floor: exactly the warm-up and the repeats
