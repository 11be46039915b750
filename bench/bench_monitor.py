"""Cost of the training-loop monitor (netdoctor.watch / netdoctor.KerasCallback).

Measures, in one run (about 4 minutes on 2 CPU cores):

1. PyTorch step-time overhead of ``netdoctor.watch`` at the default ``every`` and at
   ``every=10`` and ``every=1``, against the same loop without the monitor, on two models:
   a 64-128-128-10 MLP (worst case: a step is a fraction of a millisecond, so fixed
   per-step costs show) and a 64-1024-1024-10 MLP, batch 64; CPU time and wall. Configurations are interleaved round by round
   and the median round is reported, so background load hits all of them alike; an A/A row (the
   baseline loop timed again) shows the noise of the method in the same run, and a row at the
   default ``every`` without the per-step gradient norm shows what that norm costs. Two floor rows
   time only the bare torch operations those measurements need (no netdoctor code): the default's
   per-step loss and gradient norms, and everything ``every=1`` measures (see ``_Floor``).
2. Keras: ``model.fit`` with no callback, with ``KerasCallback`` (default ``every``, with and
   without a held batch for gradients, and ``every=1``) and with
   ``keras.callbacks.TensorBoard(histogram_freq=1)`` (log dir in a temporary folder; needs the
   ``tensorboard`` package), same model and data.

Times are CPU time (thread CPU for the single-threaded torch loop, process CPU for Keras),
which background load on a shared machine disturbs far less than wall time.
3. Memory over 10,000 monitored steps: Python/numpy allocations (tracemalloc) and RSS at
   step 1,000 and step 10,000, at the default ``every`` and at ``every=1``.

4. Trainer integrations: Lightning ``Trainer.fit`` and Hugging Face ``Trainer.train`` with and
   without netdoctor's callback, interleaved pairs (median of 5).

Usage: ``python bench/bench_monitor.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

import netdoctor  # noqa: E402
from netdoctor.adapters.torch.monitor import TorchMonitor  # noqa: E402

DEFAULT_EVERY = TorchMonitor.__init__.__kwdefaults__["every"]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


# -- 1. PyTorch overhead ---------------------------------------------------------------

class _Floor:
    """The bare torch operations a monitor's measurements need, with none of netdoctor's code: the
    floor under what an implementation made of torch operations can cost in the same loop.

    ``"step"``: every step's loss and each gradient's norm written into a preallocated row
    (``torch._foreach_norm`` and one ``torch.stack(out=)``), what issue item 3 asks of every step.
    ``"every1"``: that plus, every step, what ``every=1`` measures: the weights' norms, the update
    (a copy of the weights, then their difference and its norm), forward hooks on the activation
    modules counting dead units, one stack per step and one host transfer per 16 steps.
    """

    def __init__(self, kind: str, model: Any) -> None:
        import torch

        self.kind = kind
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.weights = [p.detach() for p in self.params if p.dim() >= 2]
        self.row = torch.empty(1 + len(self.params))
        self.calls: list[Any] = []
        self.queue: list[Any] = []
        if kind == "every1":
            self.prev = [w.clone() for w in self.weights]
            for m in model.modules():
                if isinstance(m, torch.nn.ReLU):
                    m.register_forward_hook(self._hook)

    def _hook(self, module: Any, inputs: Any, output: Any) -> None:
        import torch

        self.calls.append((output.detach().amax(0) <= 0).sum(dtype=torch.float32))

    def step(self, loss: Any) -> None:
        import torch

        gs = [p.grad for p in self.params]
        if self.kind == "step":
            torch.stack([loss.detach(), *torch._foreach_norm(gs)], out=self.row)
            return
        diffs = torch._foreach_sub(self.weights, self.prev)
        norms = torch._foreach_norm(gs + self.weights + list(diffs))
        torch._foreach_copy_(self.prev, self.weights)
        self.queue.append(torch.stack([loss.detach(), *norms, *self.calls]))
        self.calls.clear()
        if len(self.queue) == 16:
            torch.cat(self.queue).numpy()
            self.queue.clear()


def torch_loop(sizes: tuple[int, ...], batch: int, steps: int, every: int | None,
               seed: int = 0, step_grad_norm: bool = True, floor: str | None = None) -> dict[str, float]:
    """One Adam loop of ``steps`` steps, with the monitor at ``every`` (None: without): CPU s per
    step (``cpu``), wall s per step (``wall``), one-time CPU s of watch() + close() (``once``), the
    monitor's self-time per step (``self``) and the part of it spent in live rule checks
    (``checks``), and minor page faults per step (``faults``).

    Thread CPU time, not wall time: with torch on one thread all the work is on this thread,
    and CPU time is far less disturbed than wall time by other processes on a shared machine.
    The steps are timed apart from creating and closing the monitor (one-time costs, reported
    separately: close() runs the final rule check). The self-time is what the monitor measures
    of its own sampled-step work (``core.overhead_s``: weight copy, norms, host copy, history,
    live checks; not the per-step ``step()`` calls nor the armed activation hooks): a number
    that background load barely moves, unlike the difference of two loop timings.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(16 * batch, sizes[0])
    y = torch.randint(0, sizes[-1], (16 * batch,))
    c0 = time.thread_time()
    mon = netdoctor.watch(model, opt, every=every, live=False, step_grad_norm=step_grad_norm) if every else None
    bare = _Floor(floor, model) if floor else None
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.thread_time()
    w0 = time.perf_counter()
    for t in range(steps):
        i = (t % 16) * batch
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x[i:i + batch]), y[i:i + batch])
        loss.backward()
        opt.step()
        if mon is not None:
            mon.step(loss)
        elif bare is not None:
            bare.step(loss)
    t1 = time.thread_time()
    out = {"cpu": (t1 - t0) / steps, "wall": (time.perf_counter() - w0) / steps,
           "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps,
           "self": mon.core.overhead_s / steps if mon is not None else 0.0,
           "checks": mon.core.check_s / steps if mon is not None else 0.0}
    if mon is not None:
        mon.close()
    out["once"] = (t0 - c0) + (time.thread_time() - t1)
    return out


def steady_malloc() -> bool:
    """Stop glibc malloc from returning freed memory to the system (trim and mmap thresholds
    fixed high), for the baseline and the monitored loops alike. Left dynamic, glibc hands the
    4 MB gradient buffers of the 1024-wide MLP back to the system and page-faults them in again on
    a history-dependent share of runs: 0 to 2,000 minor faults per step, +1 to +3 ms on an 8.5 ms
    step, in the baseline as much as under the monitor (the faults/step column shows what is
    left). Returns whether it applied (glibc only)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-1, 1 << 30)) and bool(libc.mallopt(-3, 32 << 20))  # M_TRIM_, M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def bench_torch(rounds: int, quick: bool = False) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    # steps per round: about 1.2 s of training each, so that the throttled live rule checks
    # (~0.25% of the run once it is long) are not the whole difference of a short round
    models = {"MLP 64-128-128-10, batch 64": ((64, 128, 128, 10), 64, 1000 if quick else 2000),
              "MLP 64-1024-1024-10, batch 64": ((64, 1024, 1024, 10), 64, 100 if quick else 150)}
    # label -> torch_loop keywords: the default, the default without the per-step gradient norm
    # (what ND604's every-step spikes cost), then denser sampling. Two controls: "A/A" runs the
    # baseline loop again (its "overhead" is the noise of the method in this run), and the two
    # "floor" rows run only the bare torch operations that the default's per-step values and
    # every=1's measurements need (see _Floor): an implementation made of torch operations
    # costs at least that (the 1024-wide model's per-step norms use a subsample; its floor
    # row measures them whole).
    configs: dict[str, dict[str, Any]] = {
        "baseline": {"every": None},
        "A/A: no monitor again": {"every": None},
        f"every={DEFAULT_EVERY}": {"every": DEFAULT_EVERY},
        f"every={DEFAULT_EVERY} step_grad_norm=False": {"every": DEFAULT_EVERY, "step_grad_norm": False},
        "every=10": {"every": 10},
        "every=1": {"every": 1},
        "floor: per-step loss + grad norms": {"every": None, "floor": "step"},
        "floor: every=1 measurements": {"every": None, "floor": "every1"},
    }
    labels = list(configs)
    out: dict[str, Any] = {}
    for name, (sizes, batch, steps) in models.items():
        torch_loop(sizes, batch, 50, DEFAULT_EVERY)  # warm-up: imports, allocator, rule registry
        runs: dict[str, list[dict[str, float]]] = {c: [] for c in labels}
        for r in range(rounds):
            for c in labels if r % 2 == 0 else reversed(labels):
                runs[c].append(torch_loop(sizes, batch, steps, **configs[c]))

        def med(c: str, key: str) -> float:
            return statistics.median(x[key] for x in runs[c])

        base, wbase = med("baseline", "cpu"), med("baseline", "wall")
        rows = {}
        for c in labels[1:]:
            t = med(c, "cpu")
            rows[c] = {"step_ms": t * 1e3, "overhead_pct": 100 * (t - base) / base,
                       "wall_overhead_pct": 100 * (med(c, "wall") - wbase) / wbase,
                       "extra_us_per_step": (t - base) * 1e6,
                       "setup_and_close_ms": med(c, "once") * 1e3,
                       "self_us_per_step": med(c, "self") * 1e6,
                       "self_pct": 100 * med(c, "self") / base,
                       "checks_pct": 100 * med(c, "checks") / base,
                       "faults_per_step": med(c, "faults")}
        out[name] = {"baseline_step_ms": base * 1e3, "steps_per_round": steps,
                     "baseline_faults_per_step": med("baseline", "faults"), **rows}
    return out


# -- 2. Keras: callback vs TensorBoard --------------------------------------------------

def bench_keras(repeats: int, epochs: int) -> dict[str, Any]:
    import keras

    rng = np.random.default_rng(0)
    x = rng.standard_normal((12_800, 64)).astype("float32")
    y = (x[:, :10].argmax(1)).astype("int64")

    def model() -> Any:
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
        m.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return m

    def fit(callbacks: Callable[[], list]) -> float:
        m = model()
        m.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # build + trace outside the timing
        cbs = callbacks()
        t0 = time.process_time()  # CPU of all threads: TensorFlow runs ops on a thread pool
        m.fit(x, y, batch_size=128, epochs=epochs, verbose=0, callbacks=cbs)
        return time.process_time() - t0

    held = (x[:64], y[:64])
    with tempfile.TemporaryDirectory() as tmp:
        configs: dict[str, Callable[[], list]] = {
            "no callback": lambda: [],
            f"KerasCallback(every={DEFAULT_EVERY}, held_batch)": lambda: [netdoctor.KerasCallback(held_batch=held)],
            f"KerasCallback(every={DEFAULT_EVERY}), no held batch": lambda: [netdoctor.KerasCallback()],
            "KerasCallback(every=1, held_batch)": lambda: [netdoctor.KerasCallback(every=1, held_batch=held)],
            "TensorBoard(histogram_freq=1)": lambda: [keras.callbacks.TensorBoard(
                log_dir=os.path.join(tmp, f"tb{time.perf_counter_ns()}"), histogram_freq=1)],
        }
        times: dict[str, list[float]] = {k: [] for k in configs}
        fit(configs["no callback"])  # warm-up
        for r in range(repeats):
            for k in (configs if r % 2 == 0 else reversed(list(configs))):
                times[k].append(fit(configs[k]))
    steps = epochs * (len(x) // 128)
    base = statistics.median(times["no callback"])
    return {k: {"fit_cpu_s": statistics.median(v), "per_step_ms": statistics.median(v) / steps * 1e3,
                "overhead_pct": 100 * (statistics.median(v) - base) / base} for k, v in times.items()} | {
        "steps": steps}


# -- 3. Memory over 10,000 steps ---------------------------------------------------------

def bench_memory(every: int, steps: int = 10_000) -> dict[str, Any]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    x, y = torch.randn(32, 32), torch.randint(0, 10, (32,))
    tracemalloc.start()
    mon = netdoctor.watch(model, opt, every=every)
    marks: dict[str, Any] = {}
    for t in range(1, steps + 1):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        mon.step(loss)
        if t in (1_000, steps):
            marks[f"step {t}"] = {"traced_kb": tracemalloc.get_traced_memory()[0] / 1024, "rss_mb": _rss_mb(),
                                  "history_kb": mon.core.recorder.nbytes / 1024,
                                  "loss_points": int(mon.core.recorder.view().loss_values.size),
                                  "samples": mon.core.recorder._ns}
    mon.close()
    tracemalloc.stop()
    return marks


# -- 4. Trainer integrations: Lightning and Hugging Face ---------------------------------

def bench_trainers(pairs: int) -> dict[str, Any]:
    """Lightning ``Trainer.fit`` and HF ``Trainer.train`` with and without netdoctor's callback,
    interleaved pair by pair (process CPU time and wall, median of ``pairs``)."""
    import logging
    import warnings

    import torch
    from torch import nn

    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    out: dict[str, Any] = {}

    def timed(fn: Callable[[], None]) -> tuple[float, float]:
        c, w = time.process_time(), time.perf_counter()
        fn()
        return time.process_time() - c, time.perf_counter() - w

    def measure(name: str, run: Callable[[bool], None]) -> None:
        run(True)  # warm-up
        res: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for r in range(pairs):
            for with_cb in ((False, True) if r % 2 == 0 else (True, False)):
                res[with_cb].append(timed(lambda: run(with_cb)))
        row = {}
        for i, what in enumerate(("cpu", "wall")):
            base = statistics.median(x[i] for x in res[False])
            cb = statistics.median(x[i] for x in res[True])
            row[f"{what}_s"] = base
            row[f"{what}_overhead_pct"] = 100 * (cb - base) / base
        out[name] = row

    if importlib.util.find_spec("lightning") is not None:
        import lightning as L

        from netdoctor.integrations.lightning import NetdoctorCallback as LitCallback

        x = torch.randn(64 * 64, 64)
        data = torch.utils.data.TensorDataset(x, x[:, :10].argmax(1))

        class Module(L.LightningModule):
            def __init__(self) -> None:
                super().__init__()
                self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))

            def training_step(self, batch: Any, i: int) -> Any:
                return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

            def configure_optimizers(self) -> Any:
                return torch.optim.Adam(self.parameters(), lr=1e-3)

        def lit(with_cb: bool) -> None:
            torch.manual_seed(0)
            cbs = [LitCallback(preflight=False)] if with_cb else []
            L.Trainer(max_epochs=8, callbacks=cbs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", devices=1).fit(
                Module(), torch.utils.data.DataLoader(data, batch_size=64))

        measure("Lightning Trainer.fit, MLP 64-128-128-10, 512 steps", lit)
    if importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("accelerate") is not None:
        import transformers

        from netdoctor.integrations.transformers import NetdoctorCallback as HFCallback

        ids = torch.randint(5, 64, (512, 12), generator=torch.Generator().manual_seed(0))
        rows = [{"input_ids": i, "attention_mask": torch.ones_like(i), "labels": int(i[0] > 34)} for i in ids]
        with tempfile.TemporaryDirectory() as tmp:
            def hf(with_cb: bool) -> None:
                torch.manual_seed(0)
                cfg = transformers.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                              intermediate_size=64, max_position_embeddings=32, num_labels=2)
                args = transformers.TrainingArguments(output_dir=tmp, max_steps=192, per_device_train_batch_size=16,
                                                      logging_steps=1000, save_strategy="no", report_to=[], use_cpu=True,
                                                      disable_tqdm=True)
                transformers.Trainer(model=transformers.BertForSequenceClassification(cfg), args=args,
                                     train_dataset=rows, callbacks=[HFCallback()] if with_cb else []).train()

            measure("HF Trainer.train, tiny BERT (2x32), 192 steps", hf)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (noisier numbers)")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)
    rounds = 5 if args.quick else 7
    t0 = time.perf_counter()
    results: dict[str, Any] = {"default_every": DEFAULT_EVERY, "steady_malloc": steady_malloc()}

    print(f"== PyTorch: netdoctor.watch overhead (thread CPU time, median of {rounds} interleaved rounds, "
          f"torch on 1 thread; glibc malloc trimming {'off' if results['steady_malloc'] else 'left on'} "
          "for every configuration, see steady_malloc())")
    results["torch"] = bench_torch(rounds, quick=args.quick)
    for name, r in results["torch"].items():
        print(f"  {name}: baseline {r['baseline_step_ms']:.3f} ms/step, {r['steps_per_round']} steps per round, "
              f"{r['baseline_faults_per_step']:.0f} page faults/step")
        for cfg, v in r.items():
            if cfg.startswith(("every=", "A/A", "floor")):
                print(f"    {cfg:<35} {v['step_ms']:.3f} ms/step  overhead CPU {v['overhead_pct']:+6.2f}% "
                      f"wall {v['wall_overhead_pct']:+6.2f}% "
                      f"({v['extra_us_per_step']:+.1f} us/step) | monitor self-time {v['self_us_per_step']:.1f} us/step "
                      f"= {v['self_pct']:.2f}% (live rule checks {v['checks_pct']:.2f}%) | "
                      f"{v['faults_per_step']:.0f} faults/step | once: watch()+close() {v['setup_and_close_ms']:.1f} ms")

    print("== Keras: model.fit with KerasCallback vs TensorBoard(histogram_freq=1) (process CPU time, median)")
    if importlib.util.find_spec("tensorboard") is None:
        results["keras"] = {"error": "TensorBoard is not installed (pip install tensorboard)"}
    else:
        results["keras"] = bench_keras(repeats=2 if args.quick else 3, epochs=2 if args.quick else 3)
    keras_res = results["keras"]
    if "error" in keras_res:
        print(f"  skipped: {keras_res['error']}")
    else:
        base = keras_res["no callback"]["fit_cpu_s"]
        for k, v in keras_res.items():
            if k != "steps":
                print(f"  {k:<44} {v['fit_cpu_s']:6.2f} CPU s  ({v['per_step_ms']:.2f} ms/step, "
                      f"{v['overhead_pct']:+6.1f}%, x{v['fit_cpu_s'] / base:.2f})")
        tb = keras_res["TensorBoard(histogram_freq=1)"]["fit_cpu_s"] - base
        nd = keras_res[f"KerasCallback(every={DEFAULT_EVERY}, held_batch)"]["fit_cpu_s"] - base
        print(f"  extra CPU time over {keras_res['steps']} steps: KerasCallback {nd:+.2f} s, TensorBoard {tb:+.2f} s")

    print("== Memory over 10,000 monitored steps (tracemalloc: Python + numpy allocations; RSS: process)")
    results["memory"] = {}
    for every in (DEFAULT_EVERY, 1):
        m = bench_memory(every)
        results["memory"][f"every={every}"] = m
        a, b = m["step 1000"], m["step 10000"]
        for label, v in (("1k", a), ("10k", b)):
            print(f"  every={every:<3} step {label:>3}: {v['traced_kb']:7.1f} KiB traced, RSS {v['rss_mb']:.0f} MiB, "
                  f"history store {v['history_kb']:.0f} KiB, {v['loss_points']} loss points, {v['samples']} samples")
        print(f"  every={every:<3} 10k/1k: traced x{b['traced_kb'] / a['traced_kb']:.3f}, RSS {b['rss_mb'] - a['rss_mb']:+.1f} MiB")
    pairs = 5
    print(f"== Trainer callbacks vs plain training (process CPU and wall, median of {pairs} interleaved pairs)")
    results["trainers"] = bench_trainers(pairs)
    for k, v in results["trainers"].items():
        print(f"  {k:<52} plain {v['cpu_s']:.2f} CPU s / {v['wall_s']:.2f} s wall; with netdoctor "
              f"CPU {v['cpu_overhead_pct']:+6.1f}% wall {v['wall_overhead_pct']:+6.1f}%")
    print(f"== done in {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
