"""Cost of a netdoctor check relative to one plain training step of the same batch.

Run: ``python bench/bench_check.py [--repeats N]``. For an MLP, a small CNN and
``nn.TransformerEncoder`` (batch 256) it prints the median time of a plain forward+backward,
of ``netdoctor.check(model, x, y, loss_fn=...)`` and of the adapter collecting *every* need
(the cost once all rules are registered), each with its ratio to the plain step (target:
at most 1.5x for ``check``), then where the MLP's time above the plain step goes (the probe
pipeline, the tensor statistics, the rules and report: see :func:`torch_breakdown`). It also
prints the import time of ``import netdoctor`` and of
``netdoctor --help`` in fresh subprocesses. If ``bench/keras_rows.py`` exists, its
``rows()`` are appended (dicts with ``model``, ``plain_s``, ``check_s``; ``--no-keras`` skips
them). Timings of the three functions per model are interleaved, so machine load hits
them alike and the ratios stay meaningful on a shared machine; each model is warmed up for
a second and measured for at least two (``--min-time``) as well as ``--repeats`` rounds (see
:func:`interleaved_medians`); the 1-minute load average is printed before and after the
timed rows (on a machine shared with other work, compare ratios, not absolute times).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


#: Seconds each model's rows are warmed up and measured for at least (see :func:`interleaved_medians`).
WARMUP_S, MIN_S = 1.0, 2.0


def interleaved_medians(fns: list[Callable[[], Any]], repeats: int, warmup: int = 2,
                        clock: Callable[[], float] = time.perf_counter, rotate: bool = False,
                        warmup_s: float = WARMUP_S, min_s: float = MIN_S) -> list[float]:
    """Median time of each function, run in turn at least ``repeats`` times after ``warmup`` rounds.

    Interleaving makes every function see the same machine load, so the ratios stay
    meaningful on a shared machine even when the absolute times drift. ``clock`` is wall
    time by default; ``time.process_time`` (CPU time of this process, all its threads)
    leaves out the time the process waits for a core, which on a crowded machine is most
    of the noise. ``rotate`` starts each round one function later, so that every function
    follows every other one equally often: a function that runs right after a near copy of
    itself (``collect`` after ``check``) finds the caches warm and would look cheaper.

    Rounds go on for at least ``warmup_s`` seconds of warm-up and ``min_s`` seconds of
    measurement (wall time), whatever ``repeats`` says: a millisecond model is otherwise timed
    on a few dozen milliseconds right after the process started, its first checks still slower
    than the later ones (caches, the allocator, the CPU's frequency) and its median of seven
    at the mercy of one busy moment of the machine; a model of a tenth of a second gets its
    ``repeats`` either way.
    """
    start, rounds = time.perf_counter(), 0
    while rounds < warmup or time.perf_counter() - start < warmup_s:
        for fn in fns:
            fn()
        rounds += 1
    times: list[list[float]] = [[] for _ in fns]
    start, r = time.perf_counter(), 0
    while r < repeats or time.perf_counter() - start < min_s:
        first = r % len(fns) if rotate else 0
        for i in list(range(first, len(fns))) + list(range(first)):
            t0 = clock()
            fns[i]()
            times[i].append(clock() - t0)
        r += 1
    return [statistics.median(t) for t in times]


def subprocess_time(args: list[str], repeats: int = 3) -> float | None:
    """Median wall time of a fresh subprocess (``None`` when it fails)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return None
    return statistics.median(times)


def torch_cases(batch: int) -> list[tuple[str, Any, Any, Any, Any]]:
    """``(name, model, x, y, loss_fn)`` for the three torch reference models."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    cnn = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10),
    )

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(16, 64)
            layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.encoder(self.embed(x)).mean(dim=1))

    ce = nn.CrossEntropyLoss()
    y = torch.randint(0, 10, (batch,))
    return [
        ("MLP 784-512-512-10", mlp, torch.randn(batch, 784), y, ce),
        ("CNN 2 conv+BN, 32x32", cnn, torch.randn(batch, 3, 32, 32), y, ce),
        ("TransformerEncoder 2x64, seq 32", Encoder(), torch.randn(batch, 32, 16), y, ce),
    ]


def torch_rows(batch: int, repeats: int, clock: Callable[[], float] = time.perf_counter,
               warmup_s: float = WARMUP_S, min_s: float = MIN_S) -> list[tuple[str, float, float, float]]:
    """``(name, plain_s, check_s, collect_all_s)`` per torch model."""
    import torch

    import netdoctor
    from netdoctor.adapters import torch as adapter
    from netdoctor.snapshot import Need, ProbeSettings

    rows = []
    for name, model, x, y, loss_fn in torch_cases(batch):
        params = [p for p in model.parameters() if p.requires_grad]

        def plain() -> None:
            model.train()
            loss = loss_fn(model(x), y)
            torch.autograd.grad(loss, params)

        def check() -> None:
            netdoctor.check(model, x, y, loss_fn=loss_fn)

        def collect_all() -> None:
            adapter.collect(model, inputs=x, targets=y, loss_fn=loss_fn, needs=frozenset(Need),
                            settings=ProbeSettings(), input_shape=None)

        t_plain, t_check, t_all = interleaved_medians([plain, check, collect_all], repeats, clock=clock,
                                                      warmup_s=warmup_s, min_s=min_s)
        rows.append((name, t_plain, t_check, t_all))
    return rows


def torch_breakdown(batch: int, repeats: int, clock: Callable[[], float] = time.perf_counter,
                    warmup_s: float = WARMUP_S, min_s: float = MIN_S) -> list[tuple[str, float]]:
    """Where the MLP's cost above a plain step goes: ``(phase, seconds)``, medians of interleaved runs.

    Five runs are timed in turn (in rotating order): the plain step, ``check``, the adapter's ``collect`` alone,
    ``collect`` with every tensor reduction replaced by a constant (the probe pipeline without its
    statistics: hooks, data-flow tracing, loss probe, snapshot) and the floor of :func:`_floor`.
    Their differences split the extra time into the probe pipeline, the statistics and the rules
    with the report; the floor says what the statistics alone cost at the least.
    """
    import numpy as np
    import torch

    import netdoctor
    from netdoctor.adapters import torch as adapter
    from netdoctor.adapters.torch import graph, io, records, stats
    from netdoctor.config import Config
    from netdoctor.engine import merged_needs, selected_rules
    from netdoctor.snapshot import ProbeSettings, TensorStats

    name, model, x, y, loss_fn = torch_cases(batch)[0]
    params = [p for p in model.parameters() if p.requires_grad]
    needs = merged_needs(selected_rules(Config(), one_shot=True))
    real = stats.reduce

    def constant(t: Any, *, unit_axis: Any = None, max_units: int = 4096, unit_moments: bool = False,
                 active: bool = False, saturation: Any = None, nonneg: bool = False,
                 sparsity: bool = True, **_: Any) -> tuple[TensorStats, Any, Any]:  # row_sums, known_max...
        shape = tuple(t.shape)
        units = shape[unit_axis] if unit_axis is not None and shape else 1
        vec = {"unit_mean": np.zeros(units), "unit_std": np.ones(units), "unit_min": -np.ones(units),
               "unit_max": np.ones(units)} if unit_moments and unit_axis is not None else {}
        return (TensorStats(shape=shape, mean=0.0, std=1.0, min=-1.0, max=1.0, abs_max=1.0, abs_mean=0.8, l2=1.0,
                            **vec), np.full(units, 0.5) if active else None, np.zeros(units) if saturation else None)

    real_many, real_grads = graph.reduce_many, graph.gradient_stats

    def constant_many(tensors: list[Any], max_units: int = 4096, sparsity: bool = True,
                      **_: Any) -> list[TensorStats]:
        return [constant(t)[0] for t in tensors]

    def use(fn: Any) -> None:
        for module in (stats, graph, records, io):
            module.reduce = fn
        graph.reduce_many = real_many if fn is real else constant_many
        graph.gradient_stats = real_grads if fn is real else constant_many

    def plain() -> None:
        model.train()
        torch.autograd.grad(loss_fn(model(x), y), params)

    def collect() -> None:
        adapter.collect(model, inputs=x, targets=y, loss_fn=loss_fn, needs=needs, settings=ProbeSettings(),
                        input_shape=None)

    def bare() -> None:
        use(constant)
        try:
            collect()
        finally:
            use(real)

    t_plain, t_check, t_collect, t_bare, t_floor = interleaved_medians(
        [plain, lambda: netdoctor.check(model, x, y, loss_fn=loss_fn), collect, bare, _floor(model, x, y, loss_fn)],
        repeats, clock=clock, rotate=True, warmup_s=warmup_s, min_s=min_s)
    return [(f"{name}: plain forward+backward", t_plain),
            ("probe pipeline (hooks, tracing, loss probe, snapshot)", t_bare - t_plain),
            ("tensor statistics (weights, gradients, activations, data)", t_collect - t_bare),
            ("rules and report", t_check - t_collect),
            ("check", t_check),
            ("floor: the step plus bare reductions (no netdoctor code)", t_floor)]


def _floor(model: Any, x: Any, y: Any, loss_fn: Any) -> Callable[[], Any]:
    """The plain step plus the bare torch reductions the rules need, with no netdoctor code: what any
    implementation of the statistics made of torch operations costs at least.

    Per-feature sums, sums of squares, minima and maxima of the data; in forward hooks, each module
    output's sum, sum of squares, minimum and maximum, and a ReLU's positive count per unit; the same
    four of every parameter after the forward pass and of every gradient after the backward pass;
    each group copied to the host once. (No loss probe, no tracing, no records, no rules.)
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]

    def four(t: Any) -> Any:
        f = t.detach().reshape(-1)
        return torch.stack([f.sum(), torch.dot(f, f), f.amin(), f.amax()])

    def step() -> list[Any]:
        out = [torch.stack([x.sum(0), x.square().sum(0), x.amin(0), x.amax(0)]).tolist()]
        acts: list[Any] = []

        def hook(module: Any, args: Any, o: Any) -> None:
            acts.append(four(o))
            if isinstance(module, torch.nn.ReLU):
                acts.append((o > 0).sum(0).float())

        handles = [m.register_forward_hook(hook) for m in model.modules() if m is not model]
        try:
            model.train()
            loss = loss_fn(model(x), y)
        finally:
            for h in handles:
                h.remove()
        out.append([a.tolist() for a in acts])
        out.append(torch.stack([four(p) for p in params]).tolist())
        grads = torch.autograd.grad(loss, params)
        out.append(torch.stack([four(g) for g in grads]).tolist())
        return out

    return step


def keras_rows(repeats: int, batch: int, clock: str = "wall", min_s: float = MIN_S) -> list[Any]:
    """Rows from ``bench/keras_rows.py`` (written by the Keras adapter), if present."""
    path = HERE / "keras_rows.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location("keras_rows", path)
    if spec is None or spec.loader is None:
        return []
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.rows(repeats=repeats, batch=batch, clock=CLOCKS[clock], min_s=min_s))


def format_keras_row(row: Any) -> str:
    """One printed line for a Keras row: a dict (``model``, ``plain_s``, ``check_s``, extras)
    or a tuple ``(name, plain_s, check_s, note)``."""
    if isinstance(row, dict):
        name, t_plain, t_check = row.get("model", "?"), row["plain_s"], row["check_s"]
        skip = {"framework", "model", "plain_s", "check_s", "ratio"}
        note = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in row.items() if k not in skip)
    else:
        name, t_plain, t_check, note = row
    return (f"{'keras ' + str(name):34s} {t_plain * 1000:7.1f}ms {t_check * 1000:7.1f}ms "
            f"{t_check / t_plain:5.2f}x  {note}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds per model, at least (default 7)")
    parser.add_argument("--min-time", type=float, default=MIN_S,
                        help=f"seconds of measured rounds per model, at least (default {MIN_S:g}), after "
                             f"{WARMUP_S:g} s of warm-up")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--no-keras", action="store_true", help="skip the rows of bench/keras_rows.py")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time (default) or cpu: CPU time of the process, robust on a crowded machine")
    args = parser.parse_args(argv)
    out = sys.stdout.write

    t_import = subprocess_time([sys.executable, "-c", "import netdoctor"])
    out(f"import netdoctor (fresh process, incl. interpreter start): "
        f"{'failed' if t_import is None else f'{t_import * 1000:.0f} ms'}\n")
    script = shutil.which("netdoctor") or str(Path(sys.executable).with_name("netdoctor"))
    cli = subprocess_time([script, "--help"]) if Path(script).exists() else None
    if cli is None:
        out("netdoctor --help: skipped (the CLI does not run yet)\n")
    else:
        out(f"netdoctor --help (fresh process): {cli * 1000:.0f} ms\n")
    t_bare = subprocess_time([sys.executable, "-c", "pass"])
    if t_bare is not None:
        out(f"  (bare interpreter start: {t_bare * 1000:.0f} ms)\n")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"median of {args.repeats}, {args.clock} time, load average {_load()} on {os.cpu_count()} CPUs\n")
    out(f"{'model':34s} {'fwd+bwd':>9s} {'check':>9s} {'ratio':>6s} {'all needs':>10s} {'ratio':>6s}\n")
    for name, t_plain, t_check, t_all in torch_rows(args.batch, args.repeats, CLOCKS[args.clock],
                                                        min_s=args.min_time):
        out(f"{name:34s} {t_plain * 1000:7.1f}ms {t_check * 1000:7.1f}ms {t_check / t_plain:5.2f}x "
            f"{t_all * 1000:8.1f}ms {t_all / t_plain:5.2f}x\n")
    from netdoctor.engine import merged_needs, selected_rules
    from netdoctor.config import Config

    needs = sorted(str(n) for n in merged_needs(selected_rules(Config(), one_shot=True)))
    out(f"('check' collects what the registered rules need: {', '.join(needs) or 'nothing yet'}; "
        "'all needs' collects every statistic)\n")
    out("\nwhere the MLP's cost above the plain step goes (interleaved medians):\n")
    parts = torch_breakdown(args.batch, max(args.repeats, 15), CLOCKS[args.clock], min_s=args.min_time)
    base = parts[0][1]
    for label, t in parts:
        out(f"  {label:58s} {t * 1000:7.2f}ms {t / base:5.2f}x\n")
    if not args.no_keras:
        rows = keras_rows(args.repeats, args.batch, args.clock, args.min_time)
        if rows:
            out("\nKeras (bench/keras_rows.py):\n")
        for row in rows:
            out(format_keras_row(row))
    out(f"\nload average after the timed rows: {_load()}\n")
    return 0


def _load() -> str:
    """The 1-minute load average (``?`` where the platform has none)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "?"



if __name__ == "__main__":
    raise SystemExit(main())
